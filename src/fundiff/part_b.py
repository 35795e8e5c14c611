"""Part B experiments on trained checkpoints: denoising tests, test-set metrics, sampling."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from . import ddpm, flow
from .diffusion import cfg_combine
from .device import Runtime
from .metrics import image_quality
from .seeds import stream_seed
from .train import build_model, load_checkpoint, schedule_for


def add_noise(x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """z = x + sigma eps (course Part B 1.1; x in [0, 1], z not clipped)."""
    return x + sigma * torch.randn(x.shape, generator=generator).to(x.device)


def _prepare(x: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    x = x.to(runtime.device)
    return x.contiguous(memory_format=torch.channels_last) if runtime.channels_last else x


@torch.no_grad()
def denoise(model, z: torch.Tensor, runtime: Runtime, batch: int = 100) -> torch.Tensor:
    """The denoiser on z in batches (100: small enough for the activations to stay in cache, ~1.5x
    faster per image on a 2-core CPU than 1,000)."""
    out = []
    for start in range(0, z.shape[0], batch):
        with runtime.autocast():
            out.append(model(_prepare(z[start : start + batch], runtime)).float().cpu())
    return torch.cat(out)


def noising_rows(digits: torch.Tensor, sigmas: list[float], generator: torch.Generator) -> list[torch.Tensor]:
    """One row per digit, one column per sigma: x + sigma eps."""
    return [torch.stack([add_noise(d[None], s, generator)[0] for s in sigmas]) for d in digits]


def ood_rows(model, digits: torch.Tensor, sigmas: list[float], runtime: Runtime, generator: torch.Generator) -> list[torch.Tensor]:
    """For each digit, the noisy row at every sigma and the denoiser's output row under it."""
    rows = []
    for noisy in noising_rows(digits, sigmas, generator):
        rows += [noisy, denoise(model, noisy, runtime)]
    return rows


def test_metrics(model, images: torch.Tensor, sigmas: list[float], runtime: Runtime, generator: torch.Generator, full_sigma: float | None = None, other_limit: int | None = None):
    """MSE, PSNR and SSIM of the denoiser's output against the clean test images, per sigma,
    beside the same numbers for the noisy input (what doing nothing scores). Both are clipped to
    [0, 1], as the figures show them, and all three metrics of a row are of that same image (so
    PSNR = 10 log10(1 / MSE) on every row).

    With `other_limit`, sigmas other than `full_sigma` score only the first `other_limit` images;
    each row states its image count."""
    import pandas as pd

    rows = []
    for sigma in sigmas:
        clean = images if other_limit is None or sigma == full_sigma else images[:other_limit]
        z = add_noise(clean, sigma, generator)
        out = denoise(model, z, runtime)
        for name, pred in (("noisy input", z), ("denoised", out)):
            pred = pred.clamp(0, 1)
            rows.append({"sigma": sigma, "image": name, "num_images": clean.shape[0], "mse": F.mse_loss(pred, clean).item(), **image_quality(pred, clean)})
    return pd.DataFrame(rows)


def sample_labels(n: int, num_classes: int = 10) -> torch.Tensor:
    """0, 1, ..., 9, 0, 1, ...: a grid with 10 columns then shows one digit per column."""
    return torch.arange(n) % num_classes


@torch.no_grad()
def sample_checkpoint(
    state: dict,
    runtime: Runtime,
    num_samples: int,
    seed: int,
    guidance: float | None = None,
    record: int = 0,
    progress: Callable | None = None,
    num_steps: int | None = None,
    variance: str = "beta",
    guide: tuple[dict, float] | None = None,
) -> dict:
    """Draw `num_samples` images from a DDPM or flow-matching checkpoint in one batched run.

    Class-conditioned models get labels 0..9 repeated, with CFG at scale `guidance`; models
    trained with an EMA sample from the averaged weights. `num_steps` overrides the number of
    sampling steps (DDPM: strided timesteps, None = all T; flow: Euler steps, required);
    `variance` is the DDPM step's sigma_t^2 (ddpm.ddpm_step; flow sampling has no noise).
    `guide` = (an earlier checkpoint of the same run, weight w) autoguides a time-conditioned model
    (Karras et al. 2024): every model call becomes out_guide + w (out - out_guide), the CFG formula
    with the weaker checkpoint in place of the unconditional branch.
    Returns {"samples": [N,1,28,28] float in the model's range, "labels": [N] or None, "frames": [...]}.
    """
    recipe = state["recipe"]
    if recipe["objective"] not in ("ddpm", "flow"):
        raise ValueError(f"{state['name']} is a {recipe['objective']} model, not a generative one")
    model = build_model(state, runtime, use_ema=True).eval()
    labels = cond = None
    if recipe["conditioning"] == "class":
        labels = sample_labels(num_samples)
        cond = F.one_hot(labels, 10).float().to(runtime.device)
    elif guidance is not None:
        raise ValueError("classifier-free guidance needs a class-conditioned model")
    if guide is not None:
        if recipe["conditioning"] != "time":
            raise ValueError("autoguidance (guide) is for time-conditioned models; class-conditioned ones use guidance")
        if guide[0]["recipe"] != recipe or guide[0]["epoch"] >= state["epoch"]:
            raise ValueError(f"the autoguidance checkpoint must be an earlier epoch of the same run (got epoch {guide[0]['epoch']} for epoch {state['epoch']})")
        guide_model, weight = build_model(guide[0], runtime, use_ema=True).eval(), guide[1]

    def call(m, x, t, c):
        with runtime.autocast():
            return m(x.contiguous(memory_format=torch.channels_last) if runtime.channels_last else x, t, c).float()

    def net(x, t, c):
        out = call(model, x, t, c)
        return out if guide is None else cfg_combine(call(guide_model, x, t, c), out, weight)

    generator = torch.Generator(device=runtime.device).manual_seed(seed)
    shape = (num_samples, 1, 28, 28)
    common = dict(device=runtime.device, cond=cond, guidance=guidance, record=record, progress=progress)
    if recipe["objective"] == "ddpm":
        x, frames = ddpm.sample(net, shape, schedule_for(recipe), generator, num_inference_steps=num_steps, variance=variance, **common)
    else:
        if num_steps is None:
            raise ValueError("flow-matching sampling needs num_steps (the config's part_b.flow.num_steps)")
        x, frames = flow.sample(net, shape, num_steps, generator, **common)
    return {"samples": x.cpu(), "labels": labels, "guidance": guidance, "epoch": state["epoch"], "frames": frames}


def mean_image(images: torch.Tensor) -> torch.Tensor:
    """The average training image [1, 1, 28, 28]: the L2-optimal output for a pure-noise input."""
    return images.mean(dim=0, keepdim=True)


def load_guide(path, weight: float | None) -> tuple[dict, float] | None:
    """The `guide` argument of the samplers below: (the checkpoint at `path`, weight), or None when
    `weight` is None (recipes.autoguide decides which samples are guided)."""
    return None if weight is None else (load_checkpoint(path), weight)


def eval_seed(seed: int, model: str) -> int:
    """The evaluation samples' seed of a Part B model: the same noise for every epoch and gamma."""
    return stream_seed(seed, f"part_b/{model}/eval")


def draw_eval_samples(
    state: dict,
    runtime: Runtime,
    num_samples: int,
    batch_size: int,
    seed: int,
    guidance: float | None = None,
    num_steps: int | None = None,
    progress: Callable[[str], Callable] | None = None,
    variance: str = "beta",
    guide: tuple[dict, float] | None = None,
) -> dict:
    """`num_samples` samples of one checkpoint in batches of `batch_size` (batch b seeded with
    seed + b). Class-conditioned models get the labels 0, 1, ..., 9, 0, ... (sample_labels),
    which needs a `batch_size` that is a multiple of 10; `guide` autoguides (sample_checkpoint). `progress(desc)` returns a tqdm-like wrapper.
    Returns {"samples": [N, 1, 28, 28] float32 in the model's range, "labels": [N] or None, ...}."""
    if state["recipe"].get("conditioning") == "class" and batch_size % 10:
        raise ValueError(f"evaluation.batch_size must be a multiple of 10 for class-conditioned models (got {batch_size}), so the labels stay balanced")
    samples, labels = [], []
    starts = list(range(0, num_samples, batch_size))
    for b, start in enumerate(starts):
        n = min(batch_size, num_samples - start)
        wrap = progress(f"batch {b + 1}/{len(starts)}") if progress else None
        out = sample_checkpoint(state, runtime, n, (seed + b) % 2**63, guidance=guidance, num_steps=num_steps, progress=wrap, variance=variance, guide=guide)
        samples.append(out["samples"].float())
        labels.append(out["labels"])
    labels = None if labels[0] is None else torch.cat(labels)
    if labels is not None and not torch.equal(labels, sample_labels(num_samples)):
        raise AssertionError("evaluation sample labels are not the balanced 0..9 sequence")
    return {"samples": torch.cat(samples), "labels": labels, "guidance": guidance, "epoch": state["epoch"], "seed": seed, "num_steps": num_steps,
            "guide_epoch": None if guide is None else guide[0]["epoch"], "guide_weight": None if guide is None else guide[1]}
