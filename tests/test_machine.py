"""At DAG build on a machine without a usable GPU (fundiff.machine): the CPU estimate of a long
recipe with the laptop command, and an NVIDIA GPU that PyTorch cannot use named with the fix.
The detection results are injected (this machine has no GPU); one dry run per shipped config."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml
from snakemake.utils import validate

from fundiff import machine

from .test_workflow import DEFAULT, LAPTOP, REPO, SMOKE, SNAKEMAKE

NO_GPU = {"nvidia": None, "torch": None}
OLD_DRIVER = {
    "nvidia": {"driver": "470.82.01", "max_cuda": "11.4"},
    "torch": {"available": False, "torch": "2.14.1+cu128", "cuda": "12.8",
              "warning": "CUDA initialization: The NVIDIA driver on your system is too old (found version 11040)."},
}
USABLE = {"nvidia": {"driver": "570.1", "max_cuda": "12.8"}, "torch": {"available": True, "torch": "2.14.1", "cuda": "12.8", "warning": ""}}


def _config(path):
    cfg = yaml.safe_load(path.read_text())
    validate(cfg, str(REPO / "config" / "schema.yaml"))
    return cfg


def test_long_recipe_on_the_cpu_prints_the_estimate_and_the_laptop_command(monkeypatch):
    monkeypatch.setattr(machine, "cpu_has_fast_bf16", lambda: False)
    text = machine.advice(_config(DEFAULT), NO_GPU, 150.0)
    assert text.startswith("No GPU that PyTorch can use: this recipe's Part B is about 11 PFLOP of training and 7 PFLOP of sampling"), text
    flop = machine.recipe_gflop(_config(DEFAULT))
    hours = (flop["training"] + flop["sampling"]) / (150.0 * machine.CPU_EFFICIENCY) / 3600
    assert f"roughly {hours:.0f} hours on this CPU" in text and "150 GFLOP/s measured" in text
    assert "`.venv/bin/snakemake --cores 2 --configfile config/laptop.yaml`" in text and "Going on." in text
    assert "--resources gpu=1` only makes the GPU-declared rules run one at a time" in text
    assert machine.advice(_config(DEFAULT), NO_GPU, 150.0, limit_h=hours + 1) is None
    assert machine.advice(_config(DEFAULT), USABLE, 150.0) is None  # a usable GPU: nothing to say


def test_short_recipes_print_nothing_and_are_not_measured():
    def measure():
        raise AssertionError("the laptop and smoke recipes need no CPU measurement")

    for path in (LAPTOP, SMOKE):
        assert machine.advice(_config(path), NO_GPU, measure) is None, path
        assert machine.advice(_config(path), NO_GPU, 30.0) is None, path  # even on a slow 2-core machine


def test_a_gpu_pytorch_cannot_use_is_named_with_the_wheel_to_install(monkeypatch):
    monkeypatch.setattr(machine, "cpu_has_fast_bf16", lambda: False)
    text = machine.advice(_config(DEFAULT), OLD_DRIVER, 150.0)
    first, said, fix = text.split("\n")[:3]
    assert first == "An NVIDIA GPU is present (driver 470.82.01, which supports CUDA up to 11.4), but PyTorch 2.14.1+cu128 cannot use it: it is built for CUDA 12.8."
    assert said.startswith("PyTorch says: CUDA initialization: The NVIDIA driver on your system is too old")
    assert "Every job would train on the CPU instead" in fix and "--index-url https://download.pytorch.org/whl/cu118" in fix and "'torch==2.14.1'" in fix
    assert "roughly" in text and "laptop.yaml" in text  # and the CPU estimate, since the jobs will run there
    # the small recipes still get the GPU message (it is about the machine, not the recipe)
    assert machine.advice(_config(SMOKE), OLD_DRIVER, 150.0).startswith("An NVIDIA GPU is present")


def test_nvidia_driver_is_read_without_torch(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho '| NVIDIA-SMI 470.82.01    Driver Version: 470.82.01    CUDA Version: 11.4     |'\n")
    fake.chmod(0o755)
    monkeypatch.setattr(machine, "NVIDIA_PROC", tmp_path / "absent")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert machine.nvidia_driver() == {"driver": "470.82.01", "max_cuda": "11.4"}
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert machine.nvidia_driver() is None
    assert machine.gpu_state() == NO_GPU  # no NVIDIA hardware: torch is not even asked


def test_cpu_rate_is_measured_once_and_cached(tmp_path):
    cache = tmp_path / "cpu_rate.json"
    rate = machine.cpu_gflops(cache)
    assert rate and rate > 1 and json.loads(cache.read_text())["gflops"] == rate
    cache.write_text(json.dumps({**json.loads(cache.read_text()), "gflops": 12.5}))
    assert machine.cpu_gflops(cache, python="/bin/false") == 12.5  # read back, not measured again
    cache.write_text(json.dumps({"key": "another CPU", "gflops": 12.5}))
    assert machine.cpu_gflops(cache, python="/bin/false") is None  # stale: measured again, which fails here


@pytest.mark.parametrize("config, prints", [(DEFAULT, True), (LAPTOP, False), (SMOKE, False)])
def test_dag_build_prints_the_estimate_only_for_the_course_recipe(tmp_path, config, prints):
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path / "run"), "--configfile", str(config), "-n", "part_b"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HOME": str(tmp_path / "hf")})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert ("No GPU that PyTorch can use" in out) == prints, out[-3000:]
    if prints:
        assert "hours on this CPU" in out and "config/laptop.yaml" in out
