"""Faults: a training job killed mid-epoch resumes bit-identically; two runs give identical files."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .test_workflow import REPO, SMOKE, SNAKEMAKE

TARGET = "results/part_b/single_step/checkpoints/epoch_002.pt"
# a bigger slice of MNIST than the smoke run, so that an epoch lasts seconds
SLOW = "data: {root: data/mnist, try_torchvision: false, train_limit: 6000, test_limit: 256}\n"


def _cmd(workdir: Path, *extra: str) -> list[str]:
    override = workdir / "slow.yaml"
    override.write_text(SLOW)
    return [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile", str(SMOKE), str(override), "--cores", "1", *extra]


def _seed_mnist(workdir: Path, mnist_root: Path) -> None:
    """Reuse the session's verified MNIST copy instead of downloading it again."""
    (workdir / "data").mkdir(parents=True)
    os.symlink(mnist_root, workdir / "data" / "mnist")
    (mnist_root / "mnist_manifest.json").write_text((mnist_root.parent / "manifest.json").read_text())


def _train_epoch_pids(workdir: Path) -> list[int]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "train_epoch.py" in line and str(workdir) in line]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_killed_training_job_resumes_bit_identically(tmp_path, mnist_root):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for workdir in (straight, killed):
        _seed_mnist(workdir, mnist_root)
    subprocess.run(_cmd(straight, TARGET), check=True, capture_output=True, timeout=600)

    proc = subprocess.Popen(_cmd(killed, TARGET), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = killed / "results/part_b/single_step/checkpoints/epoch_001.pt"
    log2 = killed / "logs/part_b/single_step/train_epoch_002.log"
    deadline, victims = time.time() + 300, []
    while time.time() < deadline and proc.poll() is None and not victims:
        if log2.exists() and "epoch 2/2" in log2.read_text():  # epoch 2 is iterating over batches
            time.sleep(1.0)
            victims = _train_epoch_pids(killed)
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    output = proc.communicate(timeout=300)[0]
    assert victims, f"never saw epoch 2 running:\n{output[-2000:]}"
    assert proc.returncode != 0, "the killed job should fail the run"
    final = killed / TARGET
    assert not final.exists(), "a killed epoch must leave no checkpoint under the final name"
    assert first.exists(), "the finished epoch survives"
    mtime = first.stat().st_mtime_ns

    subprocess.run(_cmd(killed, TARGET), check=True, capture_output=True, timeout=600)
    assert first.stat().st_mtime_ns == mtime, "the finished epoch is not retrained"
    assert _sha(final) == _sha(straight / TARGET)


@pytest.mark.slow
def test_two_runs_give_identical_outputs(tmp_path, smoke_dir):
    """Every output of the smoke DAG (all but the report and the step comparison, which record timings) is byte-identical."""
    second = tmp_path / "second"
    subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(second), "--configfile", str(SMOKE), "--cores", "2", "--max-threads", "1"],
        check=True, capture_output=True, timeout=900,
    )
    first = smoke_dir

    def hashes(root: Path) -> dict[str, str]:
        # the report and the step comparison record wall times by design; everything else must match
        files = [p for p in (root / "results").rglob("*") if p.is_file() and "report" not in p.parts and not p.name.startswith("step_comparison")]
        return {str(p.relative_to(root)): _sha(p) for p in files}

    a, b = hashes(first), hashes(second)
    assert len(a) > 50 and a.keys() == b.keys()
    differ = sorted(k for k in a if a[k] != b[k])
    assert not differ, differ


@pytest.mark.slow
def test_killed_sampling_run_leaves_nothing_taken_as_done(tmp_path, smoke_dir):
    """kill -9 Snakemake and its sampling job together (no cleanup possible): no output under a
    final name survives, and a plain rerun rebuilds the file identical to the first run's."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(smoke_dir, work, symlinks=True, ignore=shutil.ignore_patterns("snakemake_report.zip", "templates_copy"))
    target = "results/part_a/samples_cfg7.pt"
    before = _sha(work / target)
    for suffix in (".pt", ".png"):
        (work / target).with_suffix(suffix).unlink()
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(work), "--configfile", str(SMOKE), "--cores", "1", target]
    log = work / "logs/part_a/samples_cfg7.log"
    log.unlink()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline, killed = time.time() + 120, False
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and "runtime:" in log.read_text():  # the job is up and sampling
            time.sleep(0.5)
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    output = proc.communicate(timeout=60)[0]
    assert killed, f"never saw the sampling job start:\n{output[-2000:]}"
    for suffix in (".pt", ".png"):
        assert not (work / target).with_suffix(suffix).exists(), suffix
    # Snakemake itself was killed: its lock stays, and it says to run --unlock; then the same command
    locked = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    subprocess.run([*cmd, "--unlock"], check=True, capture_output=True, timeout=300)
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    assert _sha(work / target) == before
