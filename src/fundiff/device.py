"""Device and numeric precision: CUDA when present, bf16 autocast where the hardware has it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import torch

from .machine import cpu_has_fast_bf16, cpu_model

DEVICES = ("auto", "cuda", "cpu")
PRECISIONS = ("auto", "fp32", "bf16")


class DeviceError(RuntimeError):
    pass


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    bf16: bool  # autocast the model to bfloat16
    channels_last: bool

    def autocast(self, cache: bool = True):
        """bf16 autocast where the runtime asks for it; cache=False inside CUDA graph capture,
        where autocast's cache of cast weights would outlive the captured step."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, cache_enabled=cache)

    def describe(self) -> str:
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else cpu_model()
        mode = "bf16 autocast" if self.bf16 else "fp32"
        layout = " + channels_last" if self.channels_last else ""
        return f"{self.device.type} ({name}), {mode}{layout}"


def resolve(device: str = "auto", precision: str = "auto") -> Runtime:
    """Turn the config's `device` and `precision` into a Runtime, or fail with what to change."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise DeviceError(
            "The config asks for `device: cuda`, but PyTorch sees no CUDA GPU on this machine "
            f"(torch {torch.__version__}, torch.cuda.is_available() is False). Run on a GPU node, "
            "or set `device: auto` (uses the GPU when there is one) or `device: cpu` in the config "
            "or on the command line (--config device=cpu)."
        )
    dev = torch.device("cuda" if (device == "cuda" or (device == "auto" and has_cuda)) else "cpu")
    if precision == "auto":
        bf16 = dev.type == "cuda" or cpu_has_fast_bf16()
    else:
        bf16 = precision == "bf16"
    return Runtime(device=dev, bf16=bf16, channels_last=precision == "auto" or bf16)


class CudaGraphStep:
    """A training step (forward, loss, backward, optimizer step) captured once as a CUDA graph and
    replayed: the small UNets' steps are a few hundred short kernels, and launching them one by one
    from Python costs more than running them. The first `eager` full-size steps run normally (on a
    side stream, as capture requires); every step, these included, is a real training step on
    its batch. A batch of another size (an epoch's last) runs eagerly."""

    def __init__(self, body: Callable, eager: int = 2, eager_cache: bool = True):
        self.body, self.eager_left, self.eager_cache = body, eager, eager_cache
        self.graph = self.static = self.loss = None

    def __call__(self, x: torch.Tensor, labels: torch.Tensor, draws: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.static is None:
            self.static = (x.clone(), labels.clone(), {k: v.clone() for k, v in draws.items()})
        sx, sy, sd = self.static
        if x.shape != sx.shape:
            return self.body(x, labels, draws)
        sx.copy_(x)
        sy.copy_(labels)
        for k, v in sd.items():
            v.copy_(draws[k])
        if self.graph is None:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            if self.eager_left > 0:
                self.eager_left -= 1
                with torch.cuda.stream(side):
                    loss = self.body(sx, sy, sd, cache=self.eager_cache)
                torch.cuda.current_stream().wait_stream(side)
                return loss
            torch.cuda.synchronize()
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.loss = self.body(sx, sy, sd, cache=False)
        self.graph.replay()
        return self.loss.clone()
