"""The static HTML writeup: figures and tables of a run rendered through Jinja templates.

The report folder is self-contained: every figure is copied under `assets/` and referenced by a
relative path, so the folder opens from file://, can be zipped, and holds no absolute path.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from .io import atomic_path

PACKAGES = ("torch", "torchvision", "snakemake", "diffusers", "transformers", "numpy", "pandas", "matplotlib", "scikit-image")


def provenance(config: dict, repo: Path) -> dict:
    text = yaml.safe_dump(config, sort_keys=False)
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown (not a git checkout)", False
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "config_text": text,
        "config_sha256": hashlib.sha256(text.encode()).hexdigest()[:16],
        "versions": versions,
        "python": platform.python_version(),
        "seed": config["seed"],
    }


def benchmark_table(files: list[str | Path], bench_dir: str | Path = "benchmarks") -> pd.DataFrame:
    """One row per job from Snakemake's `benchmark:` TSVs (paths under `bench_dir`): wall time and peak memory."""
    rows = []
    for tsv in sorted(Path(f) for f in files):
        frame = pd.read_csv(tsv, sep="\t")
        if frame.empty:
            continue
        rows.append({"job": str(tsv.relative_to(bench_dir).with_suffix("")), "wall time (s)": float(frame["s"].iloc[0]), "max RSS (MB)": float(frame["max_rss"].iloc[0])})
    return pd.DataFrame(rows, columns=["job", "wall time (s)", "max RSS (MB)"])


def html_table(frame: pd.DataFrame, float_format: str = "{:.4g}") -> str:
    return frame.to_html(index=False, border=0, classes="data", float_format=float_format.format, na_rep="")


class Assets:
    """Copies result files beside the report and hands out relative paths."""

    def __init__(self, report_dir: Path, results_root: Path):
        self.report_dir, self.results_root = report_dir, results_root
        self.copied: list[Path] = []

    def __call__(self, path: str | Path) -> str:
        path = Path(path)
        rel = path.relative_to(self.results_root) if path.is_relative_to(self.results_root) else Path(path.name)
        dest = self.report_dir / "assets" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        self.copied.append(dest)
        return (Path("assets") / rel).as_posix()


def render(template_dir: str | Path, template: str, context: dict, out_html: str | Path) -> None:
    env = Environment(loader=FileSystemLoader(str(template_dir)), undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)
    html = env.get_template(template).render(**context)
    with atomic_path(out_html) as tmp:
        tmp.write_text(html)


def to_json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
