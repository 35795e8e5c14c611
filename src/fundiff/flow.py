"""Flow matching for Part B, 2025 edition: interpolation, velocity target and the Euler sampler.

Notation (course Part B 2025, rectified flow / flow matching):

    x0      Gaussian noise, N(0, I)
    x1      a data image in [0, 1]
    t       uniform in [0, 1]; t = 0 is noise, t = 1 is data
    x_t     (1 - t) x0 + t x1
    u       the velocity x1 - x0 that the UNet u_theta(x_t, t, c) learns to predict

Sampling integrates dx/dt = u_theta(x, t) with T Euler steps from t = 0 to t = 1:
x <- x + (1/T) u_theta(x, t_i), t_i = i / T for i = 0, ..., T-1.
"""

from __future__ import annotations

from typing import Callable

import torch

from .diffusion import guided_call

VelocityModel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t x1, with t [N] broadcast over the image dimensions."""
    t = t.reshape(-1, *([1] * (x1.ndim - 1))).to(x1.dtype)
    return (1.0 - t) * x0 + t * x1


def velocity_target(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """u = x1 - x0, the constant velocity of the straight path from noise to data."""
    return x1 - x0


def draw_t(n: int, generator: torch.Generator, kind: str = "uniform", param: float = 1.0) -> torch.Tensor:
    """n training times in [0, 1]: uniform (the course), or "logit_normal" t = sigmoid(s z),
    z ~ N(0, 1), s = param (Esser et al. 2024), which trains the middle of the path more than its ends."""
    dev = generator.device
    if kind == "uniform":
        return torch.rand(n, generator=generator, device=dev)
    if kind == "logit_normal":
        return torch.sigmoid(param * torch.randn(n, generator=generator, device=dev))
    raise ValueError(f"flow-matching time sampling must be uniform or logit_normal, got {kind!r}")


def euler_step(x: torch.Tensor, velocity: torch.Tensor, dt: float) -> torch.Tensor:
    """x_{t+dt} = x_t + dt u(x_t, t)."""
    return x + dt * velocity


def guided_velocity(model: VelocityModel, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None, guidance: float | None) -> torch.Tensor:
    """The guided velocity u = u_uncond + gamma (u_cond - u_uncond): `diffusion.guided_call` (one batched call)."""
    return guided_call(model, x, t, cond, guidance)


@torch.no_grad()
def sample(
    model: VelocityModel,
    shape: tuple[int, ...],
    num_steps: int,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    cond: torch.Tensor | None = None,
    guidance: float | None = None,
    record: int = 0,
    progress: Callable | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Euler integration of u_theta from x0 ~ N(0, I) at t = 0 to t = 1 in `num_steps` steps.

    Args mirror `fundiff.ddpm.sample`; `record` evenly spaced intermediate states are returned
    as frames.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    x = torch.randn(shape, generator=generator, device=device)
    keep = set(torch.linspace(1, num_steps, record).round().long().tolist()) if record else set()
    frames = []
    steps = range(num_steps)
    for i in progress(steps) if progress else steps:
        t = torch.full((shape[0],), i / num_steps, device=device)
        u = guided_velocity(model, x, t, cond, guidance).float()
        x = euler_step(x, u, 1.0 / num_steps)
        if i + 1 in keep:
            frames.append(x.detach().cpu().clone())
    return x, frames
