"""Can this machine train the recipe in reasonable time? Judged at DAG build, without importing torch.

rules/common.smk asks `advice(config, gpu_state(), cpu_gflops(cache))` and prints what it returns:
- an NVIDIA GPU is present but PyTorch cannot use it (typically: the PyPI wheel is built for a newer
  CUDA than the installed driver supports): what was found and how to install a matching wheel;
- no usable GPU and the recipe's estimated time on this CPU is over `LIMIT_H` hours: the estimate
  (from the recipe's FLOPs and a measured matmul rate of this CPU) and the laptop command.
The run goes on either way. The checks are cheap: `nvidia-smi` / /proc/driver/nvidia first, torch
(in a subprocess) only where NVIDIA hardware is present, and the CPU rate measured once in a
subprocess and cached (under .snakemake/ of the working directory).

FLOPs: a training step of the course UNet costs ~6.4 GFLOP per 28x28 image at D=128 (3x the
2.14 GFLOP forward; bench/ measures both), scaling with D^2; a sampling step is one forward
(two with classifier-free guidance). Training convolutions reach about `CPU_EFFICIENCY` of a plain
fp32 matmul's rate on the same cores, twice that in bf16 autocast on AVX512-bf16/AMX CPUs: so the
laptop recipe comes out at ~16 min on the 2-core avx512_bf16 EPYC where it took 19 min (README).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from . import paths, recipes
from .scriptutil import usable_cpus

GFLOP_TRAIN_IMAGE_D128 = 6.4  # forward + backward of one image, D=128 (bench/train.py)
GFLOP_FORWARD_IMAGE_D128 = 2.14
CPU_EFFICIENCY = 0.5  # training and sampling throughput / plain fp32 matmul throughput on the same CPU
BF16_SPEEDUP = 2.0  # bf16 autocast (precision auto or bf16) on a CPU with AVX512-bf16 or AMX
LIMIT_H = 2.0
MNIST_TRAIN = 60_000
LAPTOP_COMMAND = ".venv/bin/snakemake --cores 2 --configfile config/laptop.yaml"
NVIDIA_PROC = Path("/proc/driver/nvidia/version")


# ---------------------------------------------------------------- the recipe's FLOPs


def _scale(hidden: int) -> float:
    return (hidden / 128) ** 2


def recipe_gflop(config: dict) -> dict[str, float]:
    """GFLOP of Part B's training and of its sampling (evaluation sets, animations, step comparison)."""
    train_n = config["data"].get("train_limit") or MNIST_TRAIN
    training = sampling = 0.0
    ev = config.get("evaluation") or {}
    pb = config["part_b"]
    for model in recipes.models(config):
        m = recipes.model_settings(config, model)
        per_epoch = min(m.get("images_per_epoch") or train_n, train_n)
        training += m["epochs"] * per_epoch * GFLOP_TRAIN_IMAGE_D128 * _scale(m["hidden"])
        if model not in recipes.generative_models(config):
            continue
        forward = GFLOP_FORWARD_IMAGE_D128 * _scale(m["hidden"]) * (2 if "guidance" in m else 1)
        steps = recipes.sampling_steps(config, model)
        sets = len(paths.sample_files(config, model))
        sampling += sets * ev.get("num_samples", 1000) * steps * forward
        sampling += pb.get("num_samples", 40) * steps * forward  # the animation
        if "guidance" in m and model.endswith("/class_cond"):
            count = pb.get("step_comparison_samples") or pb.get("num_samples", 40)
            sampling += sum(pb["step_comparison"]) * count * forward
    return {"training": training, "sampling": sampling}


# ---------------------------------------------------------------- the machine


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None


def nvidia_driver() -> dict | None:
    """The NVIDIA driver, if this machine has one: {"driver": version, "max_cuda": the newest CUDA
    it supports, per nvidia-smi}; None without NVIDIA hardware. No torch involved."""
    smi = shutil.which("nvidia-smi")
    if not smi and not NVIDIA_PROC.exists():
        return None
    found = {"driver": None, "max_cuda": None}
    if NVIDIA_PROC.exists():
        m = re.search(r"Kernel Module\s+(?:for \S+\s+)?([\d.]+)", NVIDIA_PROC.read_text(errors="replace"))
        found["driver"] = m and m.group(1)
    if smi and (proc := _run([smi], 30)) is not None and proc.returncode == 0:
        if m := re.search(r"Driver Version:\s*([\d.]+)", proc.stdout):
            found["driver"] = m.group(1)
        if m := re.search(r"CUDA Version:\s*([\d.]+)", proc.stdout):
            found["max_cuda"] = m.group(1)
    return found


TORCH_PROBE = """
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import torch
    ok = torch.cuda.is_available()
print(json.dumps({"available": ok, "torch": torch.__version__, "cuda": torch.version.cuda,
                  "warning": " ".join(str(w.message) for w in caught if "cuda" in str(w.message).lower())}))
"""


def gpu_state(python: str = sys.executable) -> dict:
    """{"nvidia": nvidia_driver(), "torch": what torch says about CUDA, or None where there is
    no NVIDIA hardware (torch is not imported then)}."""
    driver = nvidia_driver()
    if driver is None:
        return {"nvidia": None, "torch": None}
    proc = _run([python, "-c", TORCH_PROBE], 120)
    try:
        probe = json.loads(proc.stdout.strip().splitlines()[-1])
    except (AttributeError, IndexError, ValueError):
        probe = {"available": False, "torch": "?", "cuda": None, "warning": (proc.stderr[-500:] if proc else "the torch probe did not run")}
    return {"nvidia": driver, "torch": probe}


# one thread, timed in CPU seconds (time.process_time): the rate of one core however busy the
# machine is with other work; times the usable cores, the machine's rate when it is free
CPU_PROBE = """
import json, time, torch
torch.set_num_threads(1)
a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
for _ in range(2):
    a @ b
n, start = 0, time.process_time()
while time.process_time() - start < 1.0:
    a @ b
    n += 1
print(json.dumps({"gflops": 2 * 1024 ** 3 * n / (time.process_time() - start) / 1e9}))
"""


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX-bf16 or AVX512-bf16, where bf16 autocast pays off."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def cpu_gflops(cache: Path | None, python: str = sys.executable) -> float | None:
    """fp32 matmul GFLOP/s of this machine on all its usable cores (one core's rate in CPU time
    times the cores), measured once (~1 s of work in a subprocess) and cached in `cache` per CPU model, core count and torch version; None when
    it cannot be measured."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        return None
    key = f"{cpu_model()} | {usable_cpus()} cores | torch {torch_version}"
    if cache is not None and cache.is_file():
        try:
            known = json.loads(cache.read_text())
            if known.get("key") == key:
                return float(known["gflops"])
        except (ValueError, KeyError, TypeError):
            pass
    proc = _run([python, "-c", CPU_PROBE], 120)
    try:
        gflops = usable_cpus() * float(json.loads(proc.stdout.strip().splitlines()[-1])["gflops"])
    except (AttributeError, IndexError, ValueError, KeyError):
        return None
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"key": key, "gflops": gflops}) + "\n")
        except OSError:
            pass
    return gflops


# ---------------------------------------------------------------- the advice


def _hours(h: float) -> str:
    return f"{h:.0f} hours" if h >= 10 else f"{h:.1f} hours"


def wheel_advice(nvidia: dict, probe: dict) -> str:
    driver = nvidia.get("driver") or "unknown"
    max_cuda = nvidia.get("max_cuda")
    built = probe.get("cuda")
    lines = [
        f"An NVIDIA GPU is present (driver {driver}" + (f", which supports CUDA up to {max_cuda}" if max_cuda else "") + "), "
        f"but PyTorch {probe.get('torch')} cannot use it" + (f": it is built for CUDA {built}" if built else " (a CPU-only build)") + ".",
    ]
    if probe.get("warning"):
        lines.append(f"PyTorch says: {probe['warning'].strip()}")
    tag = None
    if max_cuda:
        major, minor = (int(x) for x in max_cuda.split(".")[:2])
        tag = "cu118" if (major, minor) < (12, 0) else ("cu121" if (major, minor) < (12, 4) else ("cu124" if (major, minor) < (12, 6) else "cu126"))
    torch_version = (probe.get("torch") or "").split("+")[0]
    lines.append(
        "Every job would train on the CPU instead. Install a torch wheel built for a CUDA your driver supports, "
        + (f"e.g. `.venv/bin/pip install --force-reinstall 'torch=={torch_version}' 'torchvision' --index-url https://download.pytorch.org/whl/{tag}` "
           if tag else "from https://download.pytorch.org/whl/ (cu118, cu121, ...) ")
        + "(the wheels of each release: https://pytorch.org/get-started/previous-versions/; if that release has none for your CUDA, "
        "pick the newest release that has one), or update the NVIDIA driver. Check with "
        "`.venv/bin/python -c 'import torch; print(torch.cuda.is_available())'`."
    )
    return "\n".join(lines)


FAST_CORE_GFLOPS = 100.0  # fp32 matmul of a fast core: a recipe under the limit even at this rate is not measured


def cpu_cache() -> Path:
    """Where cpu_gflops keeps its measurement: $XDG_CACHE_HOME/fundiff (~/.cache/fundiff)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fundiff" / "cpu_rate.json"


def advice(config: dict, gpu: dict, gflops, limit_h: float = LIMIT_H) -> str | None:
    """What to print at DAG build (None: nothing to say). `gpu` is gpu_state()'s answer; `gflops`
    cpu_gflops()'s, or a function returning it, called only for a recipe that might take longer
    than `limit_h` even on fast cores. Both are injected so that the messages are tested without
    the hardware."""
    parts = []
    probe = gpu.get("torch")
    if probe and probe.get("available"):
        return None  # a usable GPU
    if gpu.get("nvidia") is not None:
        parts.append(wheel_advice(gpu["nvidia"], probe or {}))
    if config.get("device") == "cuda":
        return "\n".join(parts) or None  # the jobs fail with their own message (device: cuda, no GPU)
    flop = recipe_gflop(config)
    fastest = usable_cpus() * FAST_CORE_GFLOPS * CPU_EFFICIENCY * BF16_SPEEDUP
    if callable(gflops):
        gflops = gflops() if (flop["training"] + flop["sampling"]) / fastest / 3600 > limit_h else None
    if gflops:
        bf16 = config.get("precision", "auto") in ("auto", "bf16") and cpu_has_fast_bf16()
        rate = gflops * CPU_EFFICIENCY * (BF16_SPEEDUP if bf16 else 1)
        hours = (flop["training"] + flop["sampling"]) / rate / 3600
        if hours > limit_h:
            parts.append(
                f"No GPU that PyTorch can use: this recipe's Part B is about {flop['training'] / 1e6:,.0f} PFLOP of training and "
                f"{flop['sampling'] / 1e6:,.0f} PFLOP of sampling, roughly {_hours(hours)} on this CPU ({cpu_model()}, {usable_cpus()} cores, "
                f"{gflops:,.0f} GFLOP/s measured in an fp32 matmul, about {CPU_EFFICIENCY:.0%} of which training reaches"
                f"{', x2 in bf16 autocast' if bf16 else ''}), "
                f"plus Part A and the evaluation. Every experiment at laptop sizes, within the hour on 2 cores: `{LAPTOP_COMMAND}`. "
                "Without a GPU, `--resources gpu=1` only makes the GPU-declared rules run one at a time: leave it out. Going on."
            )
    return "\n\n".join(parts) or None
