"""DDPM for Part B: the noise schedule, forward noising, the reverse step and the full sampler.

Notation (course Part B, DDPM paper):

    T           number of diffusion steps (300 in the course)
    beta_t      noise added at step t; beta_1..beta_T = linspace(beta_start, beta_end, T)
    alpha_t     1 - beta_t
    abar_t      alpha_1 * ... * alpha_t, with abar_0 = 1 (clean data)
    x_t         sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,  eps ~ N(0, I)

Indexing convention of this project: t is 1-based, t in {1, ..., T}. Every schedule tensor has
T + 1 entries and is indexed by t directly; entry 0 is the clean state (beta_0 = 0, abar_0 = 1).
Training draws t uniformly from {1, ..., T}; the UNet sees t / T in (0, 1]. Sampling walks
t = T, T-1, ..., 1 and the step from t = 1 lands on x_0 with no added noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

# eps = model(x_t, t / T, c); c may be None for time-only models.
NoiseModel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


@dataclass(frozen=True)
class Schedule:
    betas: torch.Tensor  # [T + 1], betas[0] = 0
    alphas: torch.Tensor  # [T + 1]
    alphas_cumprod: torch.Tensor  # [T + 1], alphas_cumprod[0] = 1

    @property
    def num_steps(self) -> int:
        return self.betas.shape[0] - 1


def make_schedule(num_steps: int = 300, beta_start: float = 1e-4, beta_end: float = 0.02) -> Schedule:
    """beta_1..beta_T = linspace(beta_start, beta_end, T), abar_t = prod_{s<=t} (1 - beta_s), 1-based."""
    if num_steps < 1:
        raise ValueError(f"num_steps (T) must be >= 1, got {num_steps}")
    if not 0.0 < beta_start <= beta_end < 1.0:
        raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}")
    betas = torch.cat([torch.zeros(1, dtype=torch.float64), torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)])
    alphas = 1.0 - betas
    alphas_cumprod = torch.cumprod(alphas, dim=0)
    return Schedule(betas.float(), alphas.float(), alphas_cumprod.float())


def _per_sample(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(like.device)[t].reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


def forward_noise(x0: torch.Tensor, t: torch.Tensor, schedule: Schedule, noise: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
    abar = _per_sample(schedule.alphas_cumprod, t, x0)
    return abar.sqrt() * x0 + (1.0 - abar).sqrt() * noise


def predict_x0(x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
    abar = _per_sample(schedule.alphas_cumprod, t, x_t)
    return (x_t - (1.0 - abar).sqrt() * eps) / abar.sqrt()


VARIANCES = ("beta", "posterior")


def step_variance(beta_t: float, abar_t: float, abar_prev: float, variance: str = "beta") -> float:
    """sigma_t^2 of a step t -> t' with beta_t = 1 - abar_t / abar_t' (strided) or the schedule's:
    "beta" = beta_t (the course; diffusers' fixed_large) or "posterior" = (1 - abar_t')/(1 - abar_t) beta_t,
    the variance of q(x_t' | x_t, x_0) (diffusers' fixed_small). Part A's sampler (samplers.step)
    uses the same formula for models without a learned variance."""
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
    return beta_t if variance == "beta" else (1.0 - abar_prev) / (1.0 - abar_t) * beta_t


def cfg_combine(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, guidance: float) -> torch.Tensor:
    """eps = eps_uncond + gamma (eps_cond - eps_uncond)."""
    return eps_uncond + guidance * (eps_cond - eps_uncond)


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
    """x_t' = sqrt(abar_t') beta_t/(1-abar_t) x0_hat + sqrt(alpha_t)(1-abar_t')/(1-abar_t) x_t + sigma_t z, t' = t_prev.

    With t' = t - 1 (the default) this is DDPM's Algorithm 2; with a stride, alpha_t is
    abar_t / abar_t' and beta_t = 1 - alpha_t (the course's strided step, Part A 1.4).
    `variance` picks sigma_t^2: "beta" = beta_t (the course; diffusers' fixed_large) or
    "posterior" = (1 - abar_t')/(1 - abar_t) beta_t, the variance of q(x_t' | x_t, x_0)
    (diffusers' fixed_small). The two agree closely for single steps at large t; with a coarse
    stride the first leaves visible noise in the last steps' samples.

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
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
    t_prev = t - 1 if t_prev is None else t_prev
    if not 0 <= t_prev < t:
        raise ValueError(f"t_prev must be in 0..{t - 1}, got {t_prev}")
    # 1. schedule values at t and t'
    abar_t = schedule.alphas_cumprod[t].item()
    abar_prev = schedule.alphas_cumprod[t_prev].item()
    if t_prev == t - 1:
        alpha_t, beta_t = schedule.alphas[t].item(), schedule.betas[t].item()
    else:
        alpha_t = abar_t / abar_prev
        beta_t = 1.0 - alpha_t
    # 2. clean-image estimate from the noise estimate
    x0_hat = (x_t - (1.0 - abar_t) ** 0.5 * eps) / abar_t**0.5
    # 3. posterior mean (DDPM eq. 7)
    mean = (abar_prev**0.5 * beta_t / (1.0 - abar_t)) * x0_hat + (alpha_t**0.5 * (1.0 - abar_prev) / (1.0 - abar_t)) * x_t
    # 4. fixed variance (sigma_t^2 = beta_t, or the posterior's), no noise on the last step
    if t_prev == 0:  # abar_0 = 1 makes the mean x0_hat; return it exactly, not up to float32 rounding of beta_1 vs 1 - abar_1
        return x0_hat, x0_hat
    if noise is None:
        noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
    var = step_variance(beta_t, abar_t, abar_prev, variance)
    return mean + var**0.5 * noise, x0_hat


def guided_eps(model: NoiseModel, x: torch.Tensor, t_in: torch.Tensor, cond: torch.Tensor | None, guidance: float | None):
    """One batched model call: [x; x] with [c; 0], split, eps_u + gamma (eps_c - eps_u). No CFG when guidance is None."""
    if cond is None or guidance is None:
        return model(x, t_in, cond)
    both = model(torch.cat([x, x]), torch.cat([t_in, t_in]), torch.cat([cond, torch.zeros_like(cond)]))
    eps_cond, eps_uncond = both.chunk(2)
    return cfg_combine(eps_uncond, eps_cond, guidance)


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
    timesteps = strided_timesteps(T, num_inference_steps or T)
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


def strided_timesteps(num_steps: int, num_inference_steps: int) -> list[int]:
    """k distinct steps from T down to 1, evenly spaced: [T, ..., 1] (all of them when k = T)."""
    if not 1 <= num_inference_steps <= num_steps:
        raise ValueError(f"num_inference_steps must be in 1..{num_steps}, got {num_inference_steps}")
    if num_inference_steps == 1:
        return [num_steps]
    return torch.linspace(num_steps, 1, num_inference_steps).round().long().tolist()
