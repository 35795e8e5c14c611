"""The diffusion core that Part A and Part B share: schedule, forward process, x0 estimate, the
strided reverse step with each variance option, and classifier-free guidance.

Notation (DDPM paper, course Parts A and B):

    T           number of diffusion steps (300 for the MNIST model, 1000 for DeepFloyd)
    beta_t      noise added at step t; beta_1..beta_T = linspace(beta_start, beta_end, T)
    alpha_t     1 - beta_t
    abar_t      alpha_1 * ... * alpha_t, with abar_0 = 1 (clean data)
    x_t         sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,  eps ~ N(0, I)

A strided step goes from t to a less noisy t' < t; then alpha_t = abar_t / abar_t' and
beta_t = 1 - alpha_t (with t' = t - 1 these are the schedule's own values).

Every function here takes abar values (Python floats, or tensors broadcast over the image), so
Part B's 1-based `Schedule` (fundiff.ddpm) and Part A's abar tables (fundiff.samplers) call the
same formulas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .timesteps import strided_timesteps  # noqa: F401  (the one strided list, torch-free)

VARIANCES = ("beta", "posterior")


# ---------------------------------------------------------------- schedule


@dataclass(frozen=True)
class Schedule:
    """Part B's 1-based schedule: every tensor has T + 1 entries, entry 0 the clean state."""

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


# ---------------------------------------------------------------- forward process and estimates


def add_noise(x0: torch.Tensor, abar, noise: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps."""
    return abar**0.5 * x0 + (1.0 - abar) ** 0.5 * noise


def x0_estimate(x_t: torch.Tensor, eps: torch.Tensor, abar) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
    return (x_t - (1.0 - abar) ** 0.5 * eps) / abar**0.5


def stride_coefficients(abar_t: float, abar_prev: float) -> tuple[float, float]:
    """(alpha_t, beta_t) of a step t -> t': alpha_t = abar_t / abar_t', beta_t = 1 - alpha_t."""
    alpha_t = abar_t / abar_prev
    return alpha_t, 1.0 - alpha_t


def posterior_mean(x_t: torch.Tensor, x0_hat: torch.Tensor, abar_t: float, abar_prev: float, alpha_t: float, beta_t: float) -> torch.Tensor:
    """mu = sqrt(abar_t') beta_t / (1 - abar_t) x0_hat + sqrt(alpha_t) (1 - abar_t') / (1 - abar_t) x_t (DDPM eq. 7)."""
    return (abar_prev**0.5 * beta_t / (1.0 - abar_t)) * x0_hat + (alpha_t**0.5 * (1.0 - abar_prev) / (1.0 - abar_t)) * x_t


def step_variance(beta_t: float, abar_t: float, abar_prev: float, variance: str = "beta") -> float:
    """sigma_t^2 = beta_t ("beta": the course, diffusers' fixed_large) or (1 - abar_t')/(1 - abar_t) beta_t ("posterior": fixed_small)."""
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
    return beta_t if variance == "beta" else (1.0 - abar_prev) / (1.0 - abar_t) * beta_t


def learned_range_std(var: torch.Tensor, abar_t: float, abar_prev: float) -> torch.Tensor:
    """sigma = exp(0.5 (f log beta_t + (1 - f) log beta~_t)), f = (var + 1) / 2, beta~ = (1-abar_t')/(1-abar_t) beta_t (diffusers' learned_range)."""
    _, beta_t = stride_coefficients(abar_t, abar_prev)
    beta_tilde = max(step_variance(beta_t, abar_t, abar_prev, "posterior"), 1e-20)
    frac = (var.float() + 1.0) / 2.0
    log_var = frac * torch.log(torch.tensor(beta_t)) + (1.0 - frac) * torch.log(torch.tensor(beta_tilde))
    return torch.exp(0.5 * log_var)


def dynamic_threshold(x0: torch.Tensor, ratio: float = 0.995, max_value: float = 1.0) -> torch.Tensor:
    """s = clamp(quantile_ratio(|x0|), 1, max_value) per image; x0 <- clamp(x0, -s, s) / s (Imagen)."""
    flat = x0.reshape(x0.shape[0], -1).abs().float()
    s = torch.quantile(flat, ratio, dim=1).clamp(min=1.0, max=max_value)[:, None]
    out = torch.clamp(x0.reshape(x0.shape[0], -1), -s, s) / s
    return out.reshape(x0.shape).to(x0.dtype)


# ---------------------------------------------------------------- the reverse step


def strided_step(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    abar_t: float,
    abar_prev: float,
    coefficients: tuple[float, float] | None = None,
    var: torch.Tensor | None = None,
    variance: str = "beta",
    threshold: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x_t' = posterior_mean(x_t, x0_hat) + sigma_t z; returns (x_t', x0_hat).

    Args:
        abar_t, abar_prev: abar at t and at the next, less noisy step t' (1.0 for the clean end).
        coefficients: (alpha_t, beta_t); default `stride_coefficients(abar_t, abar_prev)`
            (a single step of a schedule passes the schedule's own values).
        var: a model's learned-range values (DeepFloyd); None for a fixed variance.
        variance: the fixed sigma_t^2 (`step_variance`); unused with `var`.
        threshold: (ratio, max_value) to threshold x0_hat dynamically; None keeps it.
        noise: injected z (tests); otherwise drawn from `generator`. With a fixed variance and
            abar_t' = 1 (the clean end) no z is drawn and x0_hat itself is returned.
    """
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
    alpha_t, beta_t = coefficients if coefficients is not None else stride_coefficients(abar_t, abar_prev)
    # 1. clean estimate, optionally thresholded
    x0_hat = x0_estimate(x_t, eps, abar_t)
    if threshold is not None:
        x0_hat = dynamic_threshold(x0_hat, *threshold)
    # 2. fixed variance at the clean end: abar_t' = 1 makes the mean x0_hat; return it exactly
    if var is None and abar_prev >= 1.0:
        return x0_hat, x0_hat
    # 3. posterior mean and its noise
    mean = posterior_mean(x_t, x0_hat, abar_t, abar_prev, alpha_t, beta_t)
    std = step_variance(beta_t, abar_t, abar_prev, variance) ** 0.5 if var is None else learned_range_std(var, abar_t, abar_prev).to(x_t.device, x_t.dtype)
    if noise is None:
        noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
    return mean + std * noise, x0_hat


# ---------------------------------------------------------------- guidance


def cfg_combine(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, guidance: float) -> torch.Tensor:
    """eps = eps_uncond + gamma (eps_cond - eps_uncond)."""
    return eps_uncond + guidance * (eps_cond - eps_uncond)


def guided_call(model: Callable, x: torch.Tensor, t_in: torch.Tensor, cond: torch.Tensor | None, guidance: float | None) -> torch.Tensor:
    """One batched model call on [x; x] with [c; 0], then cfg_combine; the model alone when cond or guidance is None."""
    if cond is None or guidance is None:
        return model(x, t_in, cond)
    both = model(torch.cat([x, x]), torch.cat([t_in, t_in]), torch.cat([cond, torch.zeros_like(cond)]))
    out_cond, out_uncond = both.chunk(2)
    return cfg_combine(out_uncond, out_cond, guidance)
