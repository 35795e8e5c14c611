"""What the benchmarks share: timing, the machine they ran on, the device, FLOP counts, JSON."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

from fundiff import train
from fundiff.device import DeviceError, resolve
from fundiff.machine import cpu_flags, cpu_model
from fundiff.scriptutil import usable_cpus


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def clock():
    return time.perf_counter(), time.process_time()


# CPU flags that decide which kernels PyTorch's CPU backend (oneDNN) can use
RELEVANT_FLAGS = ("avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")
CPU_PATHS = {
    "AMX": "AMX (amx_bf16: bf16 matrix tiles, many times fp32's matrix throughput)",
    "AVX512-bf16": "AVX512-bf16 (avx512_bf16, no AMX: bf16 dot products about 2x fp32's)",
    "neither": "neither AMX nor AVX512-bf16 (no bf16 hardware: precision auto runs fp32 here, no autocast)",
}


def cpu_path(flags: set[str] | None = None) -> str:
    """The bf16 path this CPU offers: "AMX", "AVX512-bf16" or "neither"."""
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX512-bf16"
    return "neither"


def machine(runtime) -> dict:
    flags = cpu_flags()
    gpu = runtime.device.type == "cuda"
    return {"cpu": cpu_model(), "cpu_flags": [f for f in RELEVANT_FLAGS if f in flags], "cpu_path": cpu_path(flags),
            "gpu": torch.cuda.get_device_name(runtime.device) if gpu else None, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "usable_cpus": usable_cpus(), "runtime": runtime.describe()}


def print_machine(info: dict) -> None:
    print(f"cpu: {info['cpu']}; flags: {' '.join(info['cpu_flags']) or '(none of ' + ' '.join(RELEVANT_FLAGS) + ')'}")
    print(f"cpu bf16 path judged: {CPU_PATHS[info['cpu_path']]}")
    if info["gpu"]:
        print(f"gpu: {info['gpu']}")
    print(f"torch {info['torch']}, {info['threads']} threads on {info['usable_cpus']} usable CPUs; project runtime: {info['runtime']}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)


def timed(device, fn, *args, **kwargs):
    """(fn's result, (wall s, CPU s)), bracketed by synchronize on CUDA."""
    sync(device)
    t0 = clock()
    out = fn(*args, **kwargs)
    sync(device)
    return out, tuple(b - a for a, b in zip(t0, clock()))


def write_json(path, results: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(results, indent=2) + "\n")


def start(args):
    """Threads, runtime, the config and the machine line every config-driven bench begins with."""
    import yaml

    if args.threads:
        torch.set_num_threads(args.threads)
    runtime = resolve_or_exit(args.device, args.precision)
    config = yaml.safe_load(Path(args.config).read_text())
    info = machine(runtime)
    print_machine(info)
    return runtime, config, info


def resolve_or_exit(device: str, precision: str = "auto"):
    """resolve(), or a clear message and exit status 2 when --device cuda finds no GPU."""
    try:
        return resolve(device, precision)
    except DeviceError:
        print(f"python -m bench: --device cuda, but PyTorch sees no CUDA GPU on this machine (torch {torch.__version__}, "
              "torch.cuda.is_available() is False). Run it on a GPU node, or pass --device cpu (for the recipe, with a small "
              "--scale such as 0.01: the full recipe takes hours on a CPU).", file=sys.stderr)
        raise SystemExit(2)


def forward_flop_per_image(model_cfg) -> float:
    """Forward FLOP of one image through a UNet of this config, counted by FlopCounterMode (batch 2, CPU)."""
    from torch.utils.flop_counter import FlopCounterMode

    from fundiff.unet import UNet

    model = UNet(model_cfg).eval()
    x, t, c = torch.zeros(2, 1, 28, 28), torch.zeros(2), torch.zeros(2, model_cfg.num_classes)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, None if model_cfg.conditioning == "none" else t, c if model_cfg.conditioning == "class" else None)
    return counter.get_total_flops() / 2


def train_flop_per_image(recipe: dict) -> float:
    """FLOP of one training step per image (forward and backward as autograd runs them), counted by
    FlopCounterMode on batch 2 on the CPU in fp32, through fundiff.train.training_loss."""
    from torch.utils.flop_counter import FlopCounterMode

    from fundiff.unet import UNet

    model = UNet(train.model_config(recipe))
    g = torch.Generator().manual_seed(0)
    x, labels = torch.rand(2, 1, 28, 28, generator=g), torch.arange(2)
    with FlopCounterMode(display=False) as counter:
        train.training_loss(model, x, labels, recipe, train.schedule_for(recipe), g).backward()
    return counter.get_total_flops() / 2
