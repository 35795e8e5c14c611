"""DDPM for Part B: the 1-based schedule, forward noising, the reverse step and the full sampler,
all on the formulas of `fundiff.diffusion` (notation there).

Indexing convention of this project: t is 1-based, t in {1, ..., T}. Every schedule tensor has
T + 1 entries and is indexed by t directly; entry 0 is the clean state (beta_0 = 0, abar_0 = 1).
Training draws t from {1, ..., T} (uniformly, or by `draw_timesteps`); the UNet sees t / T in (0, 1]. Sampling walks
t = T, T-1, ..., 1 and the step from t = 1 lands on x_0 with no added noise.
"""

from __future__ import annotations

from typing import Callable

import torch

from .diffusion import (  # noqa: F401  (the core's names, as Part B uses them)
    VARIANCES,
    Schedule,
    add_noise,
    cfg_combine,
    guided_call,
    make_schedule,
    step_variance,
    strided_step,
    strided_timesteps,
    x0_estimate,
)

# eps = model(x_t, t / T, c); c may be None for time-only models.
NoiseModel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def _per_sample(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(like.device)[t].reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


def forward_noise(x0: torch.Tensor, t: torch.Tensor, schedule: Schedule, noise: torch.Tensor) -> torch.Tensor:
    """`diffusion.add_noise` with abar_t looked up per sample for a tensor of 1-based t."""
    return add_noise(x0, _per_sample(schedule.alphas_cumprod, t, x0), noise)


def p2_probabilities(schedule: Schedule, gamma: float) -> torch.Tensor:
    """P(t) proportional to (1 + SNR_t)^-gamma, SNR_t = abar_t / (1 - abar_t), for t = 1..T: [T]."""
    abar = schedule.alphas_cumprod[1:].double()
    weights = (1.0 + abar / (1.0 - abar)) ** -gamma
    return (weights / weights.sum()).float()


def draw_timesteps(n: int, schedule: Schedule, generator: torch.Generator, kind: str = "uniform", param: float = 1.0) -> torch.Tensor:
    """n training timesteps in 1..T: uniform (the course), or "p2" drawn from `p2_probabilities`
    with gamma = param: the P2 loss weighting of Choi et al. (2022) as a sampling distribution, so
    that the noisy steps that decide a digit's shape get the training instead of the nearly clean ones."""
    dev = generator.device
    if kind == "uniform":
        return torch.randint(1, schedule.num_steps + 1, (n,), generator=generator, device=dev)
    if kind == "p2":
        probs = p2_probabilities(schedule, param).to(dev)
        return torch.multinomial(probs, n, replacement=True, generator=generator) + 1
    raise ValueError(f"DDPM timestep sampling must be uniform or p2, got {kind!r}")


def predict_x0(x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """`diffusion.x0_estimate` with abar_t looked up per sample for a tensor of 1-based t."""
    return x0_estimate(x_t, eps, _per_sample(schedule.alphas_cumprod, t, x_t))


def ddpm_step(
    x_t: torch.Tensor,
    t: int,
    eps: torch.Tensor,
    schedule: Schedule,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    t_prev: int | None = None,
    variance: str = "beta",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Part B's reverse step t -> t' = t_prev on the 1-based schedule: `diffusion.strided_step`.

    With t' = t - 1 (the default) this is DDPM's Algorithm 2 with the schedule's alpha_t and
    beta_t; with a stride, alpha_t = abar_t / abar_t' (the course's strided step, Part A 1.4).
    `variance` picks sigma_t^2 (`diffusion.step_variance`): "beta" (the course) or "posterior";
    with a coarse stride the first leaves visible noise in the last steps' samples.

    Args:
        x_t: [N, C, H, W] current sample.
        t: current step, 1 <= t <= T (1-based, see module docstring).
        eps: [N, C, H, W] the model's noise estimate at (x_t, t).
        schedule: from `make_schedule`.
        generator: draws z when `noise` is not given.
        noise: optional z, injected for tests; ignored when t' = 0, where z = 0.
        t_prev: the step to land on, 0 <= t_prev < t; default t - 1.

    Returns:
        (x_t', x0_hat)
    """
    T = schedule.num_steps
    if not 1 <= t <= T:
        raise ValueError(f"t must be in 1..{T}, got {t}")
    t_prev = t - 1 if t_prev is None else t_prev
    if not 0 <= t_prev < t:
        raise ValueError(f"t_prev must be in 0..{t - 1}, got {t_prev}")
    abar_t = schedule.alphas_cumprod[t].item()
    abar_prev = schedule.alphas_cumprod[t_prev].item()
    # a single step uses the schedule's own alpha_t and beta_t; a stride, abar_t / abar_t'
    coefficients = (schedule.alphas[t].item(), schedule.betas[t].item()) if t_prev == t - 1 else None
    return strided_step(x_t, eps, abar_t, abar_prev, coefficients, variance=variance, generator=generator, noise=noise)


def guided_eps(model: NoiseModel, x: torch.Tensor, t_in: torch.Tensor, cond: torch.Tensor | None, guidance: float | None):
    """Part B's guided noise estimate: `diffusion.guided_call` (one batched call, [c; 0])."""
    return guided_call(model, x, t_in, cond, guidance)


@torch.no_grad()
def sample(
    model: NoiseModel,
    shape: tuple[int, ...],
    schedule: Schedule,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    cond: torch.Tensor | None = None,
    guidance: float | None = None,
    record: int = 0,
    progress: Callable | None = None,
    num_inference_steps: int | None = None,
    variance: str = "beta",
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Algorithm B.2: x_T ~ N(0, I), then ddpm_step for t = T..1; returns (x_0, frames).

    With `num_inference_steps` = k < T the walk visits k evenly strided steps from T down to 1
    (see `strided_timesteps`) and each step jumps to the next one.

    Args:
        model: eps = model(x_t, t / T, c).
        shape: [N, C, H, W].
        cond: [N, K] one-hot classes, or None.
        guidance: CFG scale gamma (needs cond); None samples the conditional model directly.
        record: number of evenly spaced intermediate x_t to return as frames (0 for none).
        progress: optional wrapper around the step iterator (e.g. tqdm).
    """
    T = schedule.num_steps
    k = num_inference_steps or T
    if not 1 <= k <= T:
        raise ValueError(f"num_inference_steps must be in 1..{T}, got {k}")
    timesteps = strided_timesteps(T, k)
    x = torch.randn(shape, generator=generator, device=device)
    keep = set(torch.linspace(0, len(timesteps) - 1, record).round().long().tolist()) if record else set()
    frames = []
    steps = range(len(timesteps))
    for i in progress(steps) if progress else steps:
        t, t_prev = timesteps[i], (timesteps[i + 1] if i + 1 < len(timesteps) else 0)
        t_in = torch.full((shape[0],), t / T, device=device)
        eps = guided_eps(model, x, t_in, cond, guidance).float()
        x, _ = ddpm_step(x, t, eps, schedule, generator=generator, t_prev=t_prev, variance=variance)
        if i in keep:
            frames.append(x.detach().cpu().clone())
    return x, frames
