"""Part A samplers: pure functions over tensors, for any noise-predicting model, on the formulas
of `fundiff.diffusion` (integer timesteps into an abar table).

Notation (course Part A, DDPM/DeepFloyd):

    alphas_cumprod  abar_t for every timestep index t the sampler visits (a 1-D tensor indexed
                    by t); abar close to 1 is clean, close to 0 is pure noise
    timesteps       a decreasing list t_0 > t_1 > ... > t_last; step i goes from t_i to t_{i+1}
    x_t             sqrt(abar_t) x0 + sqrt(1 - abar_t) eps
    alpha_t         abar_t / abar_t'  (t' = the next, less noisy timestep), beta_t = 1 - alpha_t

A model is a callable `model(x [B,C,H,W], t int, cond [B,...]) -> (eps, var)` where `var` is
either None (fixed variance: sigma^2 = beta_t, or the posterior variance with variance="posterior",
diffusion.step_variance) or DeepFloyd's learned-range values in [-1, 1]
with eps's shape. Conditions are whatever the model takes (T5 embeddings for DeepFloyd,
one-hot digits for the MNIST model); `uncond` is the model's null condition. Every guided
sampler puts all its branches into ONE batched model call per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from . import diffusion
from .diffusion import add_noise, cfg_combine, dynamic_threshold, strided_step, x0_estimate  # noqa: F401
from .timesteps import course_timesteps  # noqa: F401  (the course's strided list, torch-free)

Model = Callable[[torch.Tensor, int, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]


def _abar(alphas_cumprod: torch.Tensor, t: int) -> float:
    """abar_t from the table; t < 0 stands for the clean end, abar = 1."""
    return alphas_cumprod[t].item() if t >= 0 else 1.0


def forward(x0: torch.Tensor, t: int, alphas_cumprod: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """`diffusion.add_noise` at integer timestep t of the table."""
    return add_noise(x0, _abar(alphas_cumprod, t), noise)


def estimate_x0(x_t: torch.Tensor, t: int, eps: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """`diffusion.x0_estimate` at integer timestep t of the table."""
    return x0_estimate(x_t, eps, _abar(alphas_cumprod, t))


def learned_range_std(var: torch.Tensor, t: int, t_prev: int, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """`diffusion.learned_range_std` for the step t -> t_prev of the table (diffusers' DDPMScheduler learned_range)."""
    return diffusion.learned_range_std(var, _abar(alphas_cumprod, t), _abar(alphas_cumprod, t_prev))


def step(
    x_t: torch.Tensor,
    t: int,
    t_prev: int,
    eps: torch.Tensor,
    var: torch.Tensor | None,
    alphas_cumprod: torch.Tensor,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    threshold: tuple[float, float] | None = None,
    variance: str = "beta",
) -> tuple[torch.Tensor, torch.Tensor]:
    """`diffusion.strided_step` from t to t_prev < t of the table; returns (x_t', x0_hat).

    Args:
        eps, var: the model's outputs at (x_t, t); var None means a fixed variance (no noise
            when abar_t' = 1, the clean end), else learned-range values.
        variance: the fixed variance (`diffusion.step_variance`): "beta" (sigma^2 = beta_t, the
            course) or "posterior"; unused with `var`.
        noise: injected z (tests); otherwise drawn from `generator`.
        threshold: (ratio, max_value) to threshold x0_hat dynamically; None (the course) keeps it.
    """
    if not t_prev < t:
        raise ValueError(f"t_prev must be below t, got t={t}, t_prev={t_prev}")
    return strided_step(x_t, eps, _abar(alphas_cumprod, t), _abar(alphas_cumprod, t_prev), var=var, variance=variance,
                        threshold=threshold, generator=generator, noise=noise)


# ---------------------------------------------------------------- guidance and combinations


def cfg_call(model: Model, x: torch.Tensor, t: int, cond: torch.Tensor, uncond: torch.Tensor, guidance: float):
    """One call on [x; x] with [cond; uncond], then `diffusion.cfg_combine`; var from the conditional branch."""
    eps, var = model(torch.cat([x, x]), t, torch.cat([cond, uncond]))
    eps_c, eps_u = eps.chunk(2)
    return cfg_combine(eps_u, eps_c, guidance), (None if var is None else var.chunk(2)[0])


def flip(x: torch.Tensor) -> torch.Tensor:
    """Upside down (vertical flip of NCHW)."""
    return torch.flip(x, dims=[2])


def rotate180(x: torch.Tensor) -> torch.Tensor:
    """A half turn (upside down and mirrored: both spatial axes of NCHW reversed)."""
    return torch.flip(x, dims=[2, 3])


# the second view of a visual anagram, by config name; each is its own inverse, as anagram_call needs
ANAGRAM_VIEWS = {"flip": flip, "rotate": rotate180}


def anagram_call(model: Model, x, t, cond1, cond2, uncond, guidance, view=flip):
    """eps = (eps~(x, p1) + view(eps~(view(x), p2))) / 2, eps~ = cfg_combine, view an involution; all four branches in one call."""
    xs = torch.cat([x, view(x), x, view(x)])
    conds = torch.cat([cond1, cond2, uncond, uncond])
    eps, var = model(xs, t, conds)
    e1c, e2c, e1u, e2u = eps.chunk(4)
    e1 = cfg_combine(e1u, e1c, guidance)
    e2 = cfg_combine(e2u, e2c, guidance)
    v = None if var is None else (var.chunk(4)[0] + view(var.chunk(4)[1])) / 2
    return (e1 + view(e2)) / 2, v


def gaussian_lowpass(x: torch.Tensor, kernel_size: int, sigma: float) -> torch.Tensor:
    """y = (g g^T) * reflect_pad(x), g_i = exp(-i^2 / 2 sigma^2) / sum, i = -(k-1)/2 .. (k-1)/2.

    torchvision's `gaussian_blur` (same kernel, same reflect padding; tested equal), computed as
    two 1-D depthwise convolutions instead of one k x k one: the hybrids' 129-tap kernel at
    256 px costs 2k instead of k^2 multiply-adds per pixel, and no torchvision import.
    """
    if kernel_size < 1 or kernel_size % 2 == 0 or sigma <= 0:
        raise ValueError(f"a Gaussian blur needs an odd kernel_size >= 1 and sigma > 0, got {kernel_size}, {sigma}")
    half = kernel_size // 2
    if half >= min(x.shape[-2:]):
        raise ValueError(f"a {kernel_size}-tap blur needs images wider than {half} px (reflect padding), got {tuple(x.shape[-2:])}")
    dtype = x.dtype if x.is_floating_point() else torch.float32
    taps = torch.linspace(-half, half, kernel_size, device=x.device, dtype=dtype)
    g = torch.exp(-0.5 * (taps / sigma) ** 2)
    g = g / g.sum()
    lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
    y = F.pad(x.reshape(-1, c, h, w).to(dtype), (half, half, half, half), mode="reflect")
    y = F.conv2d(y, g.view(1, 1, 1, -1).expand(c, 1, 1, kernel_size), groups=c)
    y = F.conv2d(y, g.view(1, 1, -1, 1).expand(c, 1, kernel_size, 1), groups=c)
    return y.reshape(*lead, c, h, w)


def hybrid_call(model: Model, x, t, cond_low, cond_high, uncond, guidance, kernel_size: int, sigma: float):
    """eps = lowpass(eps~(x, p1)) + highpass(eps~(x, p2)), highpass = identity - lowpass; one call."""
    eps, var = model(torch.cat([x, x, x, x]), t, torch.cat([cond_low, cond_high, uncond, uncond]))
    e1c, e2c, e1u, e2u = eps.chunk(4)
    e1 = cfg_combine(e1u, e1c, guidance)
    e2 = cfg_combine(e2u, e2c, guidance)
    low = gaussian_lowpass(e1, kernel_size, sigma)
    high = e2 - gaussian_lowpass(e2, kernel_size, sigma)
    v = None if var is None else (var.chunk(4)[0] + var.chunk(4)[1]) / 2
    return low + high, v


# ---------------------------------------------------------------- the loops


@dataclass
class Trace:
    """What a loop saw: x_t after the steps listed in `kept` (by index into timesteps), and the model-call count."""

    kept: list[tuple[int, torch.Tensor]]
    calls: int = 0


def iterative_denoise(
    eps_fn: Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor | None]],
    x: torch.Tensor,
    timesteps: Sequence[int],
    i_start: int,
    alphas_cumprod: torch.Tensor,
    generator: torch.Generator | None = None,
    keep_every: int = 0,
    after_step: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
    threshold: tuple[float, float] | None = None,
    variance: str = "beta",
) -> tuple[torch.Tensor, Trace]:
    """Walk timesteps[i_start] -> ... -> timesteps[-1] with `step`; eps_fn(x, t) -> (eps, var).

    `after_step(x, t_prev)` may rewrite x after each step (inpainting). With keep_every = k the
    trace keeps x after every k-th step, counting from i_start (the course's every 5th step).
    `threshold` and `variance` go to every `step`.
    """
    if not 0 <= i_start < len(timesteps) - 1:
        raise ValueError(f"i_start must be in 0..{len(timesteps) - 2}, got {i_start}")
    trace = Trace(kept=[])
    for i in range(i_start, len(timesteps) - 1):
        t, t_prev = timesteps[i], timesteps[i + 1]
        eps, var = eps_fn(x, t)
        trace.calls += 1
        x, _ = step(x, t, t_prev, eps, var, alphas_cumprod, generator=generator, threshold=threshold, variance=variance)
        if after_step is not None:
            x = after_step(x, t_prev)
        if keep_every and (i - i_start) % keep_every == keep_every - 1:
            trace.kept.append((i + 1, x.detach().clone()))
    return x, trace


def sdedit(eps_fn, x_orig, timesteps, i_start, alphas_cumprod, generator, **kw):
    """Noise x_orig to timesteps[i_start] (forward), then denoise from there."""
    noise = torch.randn(x_orig.shape, generator=generator, device=x_orig.device, dtype=x_orig.dtype)
    x_t = forward(x_orig, timesteps[i_start], alphas_cumprod, noise)
    return iterative_denoise(eps_fn, x_t, timesteps, i_start, alphas_cumprod, generator=generator, **kw)


def inpaint(eps_fn, x_orig, mask, timesteps, alphas_cumprod, generator, **kw):
    """RePaint: from pure noise, after every step x <- m x + (1 - m) forward(x_orig, t'); m = 1 marks the hole."""

    def keep_known(x, t_prev):
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return mask * x + (1.0 - mask) * forward(x_orig, t_prev, alphas_cumprod, noise)

    x = torch.randn(x_orig.shape, generator=generator, device=x_orig.device, dtype=x_orig.dtype)
    return iterative_denoise(eps_fn, x, timesteps, 0, alphas_cumprod, generator=generator, after_step=keep_known, **kw)


def one_step(eps_fn, x_t: torch.Tensor, t: int, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x0_hat from a single model call at t."""
    eps, _ = eps_fn(x_t, t)
    return estimate_x0(x_t, t, eps, alphas_cumprod)


def guided(model: Model, cond, uncond, guidance):
    """eps_fn for CFG with a fixed condition (guidance None: the conditional model alone)."""
    if guidance is None:
        return lambda x, t: model(x, t, cond.expand(x.shape[0], *cond.shape[1:]))
    return lambda x, t: cfg_call(model, x, t, cond.expand(x.shape[0], *cond.shape[1:]), uncond.expand(x.shape[0], *uncond.shape[1:]), guidance)


def blur(x: torch.Tensor, kernel_size: int, sigma: float) -> torch.Tensor:
    """The classical baseline: a Gaussian blur of the noisy image."""
    return gaussian_lowpass(x, kernel_size, sigma)


def resize_mask(mask: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(mask, size=(size, size), mode="nearest")
