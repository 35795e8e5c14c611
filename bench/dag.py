"""python -m bench dag: the whole workflow from nothing, as a user runs it: `snakemake --cores N
--configfile CONFIG` in a fresh directory (a temporary one unless --directory), timed from start
to end, then every job's benchmark file (each rule declares one) summed up: the span, the sum of
the jobs' wall times, how busy the cores were, the slowest jobs and the time per rule.
--summarize DIR only reads the benchmark files of a finished run. The bar: the smoke DAG within
180 s on 2 cores (--bar; --strict exits 1 when the span exceeds it).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

from fundiff.machine import cpu_flags, cpu_model
from fundiff.paths import job_kind
from fundiff.scriptutil import usable_cpus

from .common import RELEVANT_FLAGS, cpu_path

REPO_ROOT = Path(__file__).resolve().parents[1]  # bench/dag.py -> the checkout with the Snakefile


def read_benchmarks(directory: str | Path) -> list[dict]:
    """Every Snakemake benchmark file under DIR/benchmarks: its path (the job), wall and CPU seconds."""
    rows = []
    for path in sorted(Path(directory, "benchmarks").rglob("*.tsv")):
        lines = path.read_text().splitlines()
        if len(lines) < 2:
            continue
        record = dict(zip(lines[0].split("\t"), lines[1].split("\t")))
        rows.append({"job": str(path.relative_to(Path(directory, "benchmarks")).with_suffix("")), "wall_s": float(record["s"]),
                     "cpu_s": float(record["cpu_time"]) if record.get("cpu_time", "NA") not in ("NA", "") else None})
    return rows


def summarize_dag(rows: list[dict], span_s: float | None, cores: int) -> dict:
    total = sum(r["wall_s"] for r in rows)
    kinds: dict[str, dict] = {}
    for r in rows:
        k = kinds.setdefault(job_kind(r["job"]), {"jobs": 0, "wall_s": 0.0})
        k["jobs"] += 1
        k["wall_s"] += r["wall_s"]
    return {"jobs": len(rows), "span_s": span_s, "cores": cores, "sum_wall_s": total,
            "busy": None if not span_s else total / (span_s * cores),
            "slowest": sorted(rows, key=lambda r: -r["wall_s"])[:10],
            "per_kind": dict(sorted(kinds.items(), key=lambda kv: -kv[1]["wall_s"]))}


def bench_dag(args) -> dict:
    info = {"cpu": cpu_model(), "cpu_flags": [f for f in RELEVANT_FLAGS if f in cpu_flags()], "cpu_path": cpu_path(), "torch": torch.__version__, "usable_cpus": usable_cpus()}
    print(f"cpu: {info['cpu']}; flags: {' '.join(info['cpu_flags']) or '(none of ' + ' '.join(RELEVANT_FLAGS) + ')'}; {info['usable_cpus']} usable CPUs; "
          f"torch {info['torch']}; load average {os.getloadavg()[0]:.1f}", flush=True)
    import shutil
    import subprocess
    import tempfile

    span = cleanup = None
    if args.summarize:
        directory = Path(args.summarize)
        if not (directory / "benchmarks").is_dir():
            sys.exit(f"bench dag: no benchmarks/ folder under {directory}: point --summarize at a finished run's working directory")
    else:
        snakefile = Path(args.snakefile) if args.snakefile else REPO_ROOT / "Snakefile"
        if not snakefile.is_file():
            sys.exit(f"bench dag: no Snakefile at {snakefile}: run from a checkout of the project or pass --snakefile")
        config = Path(args.config).resolve()
        if args.directory:
            directory = Path(args.directory)
            if directory.exists() and any(directory.iterdir()):
                sys.exit(f"bench dag: {directory} is not empty; the DAG is timed from nothing (give a new folder)")
        else:
            cleanup = directory = Path(tempfile.mkdtemp(prefix="fundiff-dag-"))
        exe = Path(sys.executable).with_name("snakemake")
        cmd = [str(exe) if exe.exists() else "snakemake", "-s", str(snakefile), "--directory", str(directory), "--configfile", str(config), "--cores", str(args.cores), "-q"]
        print("running:", " ".join(cmd), flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        span = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-5000:], sep="\n", file=sys.stderr)
            sys.exit(f"bench dag: snakemake failed (exit {proc.returncode}) after {span:.0f} s; the run is kept in {directory}")
    summary = summarize_dag(read_benchmarks(directory), span, args.cores)
    summary.update(machine=info, directory=str(directory), config=args.config)
    if summary["jobs"] == 0:
        sys.exit(f"bench dag: no benchmark files under {directory}/benchmarks")
    span_text = f"span {span:.1f} s on {args.cores} cores, " if span else ""
    busy = f", cores busy {100 * summary['busy']:.0f} % of the span" if summary["busy"] else ""
    print(f"{summary['jobs']} jobs with benchmarks: {span_text}jobs' wall times add up to {summary['sum_wall_s']:.1f} s{busy}")
    print("slowest jobs:")
    for r in summary["slowest"]:
        print(f"  {r['wall_s']:7.2f} s  {r['job']}")
    print("per kind of job (jobs, seconds):")
    for kind, k in summary["per_kind"].items():
        print(f"  {k['wall_s']:7.1f} s  {k['jobs']:3d}  {kind}")
    summary["bar_s"] = args.bar
    summary["bar_pass"] = None
    if args.bar is not None and span is not None:
        summary["bar_pass"] = span <= args.bar
        print(f"bar: span <= {args.bar:g} s: {'PASS' if summary['bar_pass'] else 'FAIL'} ({span:.1f} s)")
    if cleanup is not None and not args.keep:
        shutil.rmtree(cleanup, ignore_errors=True)
    return summary


def add_parser(sub) -> None:
    d = sub.add_parser("dag", help="run the workflow from nothing and sum up its jobs' benchmark files")
    d.add_argument("--config", default="config/smoke.yaml")
    d.add_argument("--cores", type=int, default=2)
    d.add_argument("--directory", help="run here (a new or empty folder) instead of a temporary one, and keep it")
    d.add_argument("--snakefile", help="default: the Snakefile of this checkout")
    d.add_argument("--summarize", metavar="DIR", help="only sum up the benchmark files of a finished run in DIR")
    d.add_argument("--keep", action="store_true", help="keep the temporary run folder")
    d.add_argument("--bar", type=float, default=180.0, help="span bar in seconds (the smoke DAG on 2 cores)")
    d.add_argument("--json")
    d.add_argument("--strict", action="store_true", help="exit 1 when the span exceeds --bar")
