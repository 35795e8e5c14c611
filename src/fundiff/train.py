"""Training of the Part B UNets, one epoch at a time, from checkpoint to checkpoint.

A checkpoint holds everything the next epoch needs: the recipe, the model config and weights,
the optimizer, the LR scheduler, the data generator's state (shuffling, noise, t, class
dropout) and torch's global RNG state, plus the loss of every step so far. Epoch e therefore
depends only on the epoch e-1 checkpoint, and training two epochs in one go or one epoch,
stopping and resuming give bit-identical results on the CPU.

Objectives (the `objective` key of a recipe):

    denoise   z = x + sigma eps (or z = eps with `pure_noise`), loss ||D(z) - x||^2
    ddpm      x_t = sqrt(abar_t) x + sqrt(1 - abar_t) eps, t ~ U{1..T}, loss ||eps_theta(x_t, t/T, c) - eps||^2
    flow      x_t = (1 - t) eps + t x, t ~ U[0, 1], loss ||u_theta(x_t, t, c) - (x - eps)||^2

With `images_per_epoch` set, an epoch is that many images drawn without replacement from the
whole training split (a fresh random subset each epoch) instead of a full pass: a shorter epoch
for quick recipes, with the per-epoch jobs, LR schedule and shown epochs unchanged. With
`warmup_steps` set, the learning rate ramps linearly from lr / warmup_steps to lr over the first
that many optimiser steps (on top of the per-epoch ExponentialLR).

With `ema_decay` set, an exponential moving average of the weights (and BatchNorm buffers) is
kept beside them and is what sampling uses.

Class-conditioned models get a one-hot c that is zeroed with probability p_uncond per image.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from . import ddpm, flow
from .device import CudaGraphStep, Runtime
from .io import save_torch
from .seeds import stream_seed
from .unet import UNet, UNetConfig

log = logging.getLogger(__name__)

OBJECTIVES = ("denoise", "ddpm", "flow")


class CheckpointError(RuntimeError):
    pass


def model_config(recipe: dict) -> UNetConfig:
    return UNetConfig(
        hidden=recipe["hidden"],
        conditioning=recipe.get("conditioning", "none"),
        time_combine=recipe.get("time_combine", "add"),
    )


def init_checkpoint(recipe: dict, name: str, seed: int) -> dict:
    """Epoch 0: freshly initialised weights and seeded generators, no steps taken."""
    if recipe["objective"] not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {recipe['objective']!r}")
    base = stream_seed(seed, name)
    torch.manual_seed(base)
    model = UNet(model_config(recipe))
    generator = torch.Generator().manual_seed(base + 1)
    ema = make_ema(model, recipe)
    return {
        "ema": None if ema is None else ema.state_dict(),
        "name": name,
        "recipe": dict(recipe),
        "model_config": model_config(recipe).to_dict(),
        "epoch": 0,
        "model": model.state_dict(),
        # Adam and its LR schedule start fresh in epoch 1; building them here, only to save their
        # initial state, made every init job import torch._dynamo (~2 s of a 4 s job)
        "optimizer": None,
        "lr_scheduler": None,
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "losses": torch.zeros(0),
        "epoch_ends": [],  # number of steps done at the end of each epoch
    }


def make_lr_scheduler(optimizer, recipe: dict):
    """ExponentialLR with gamma = lr_decay^(1/epochs) per epoch (the course: 0.1^(1/epochs)); none if lr_decay is null."""
    decay = recipe.get("lr_decay")
    gamma = 1.0 if decay is None else decay ** (1.0 / recipe["epochs"])
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)


def make_ema(model, recipe: dict):
    """AveragedModel with w_ema <- d w_ema + (1 - d) w after every step, or None.

    d = ema_decay; with `ema_warmup` d = min(ema_decay, (1 + n) / (10 + n)) after n updates, so
    a short run's average does not keep the random initial weights (the 0.999 of a long run
    would still hold 0.999^1000 = 37 % of them after 1,000 steps)."""
    decay = recipe.get("ema_decay")
    if decay is None:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    if not recipe.get("ema_warmup"):
        return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

    def ramped(averaged: list, current: list, num_averaged):
        # one read of the count per update (a per-tensor float() would wait on the GPU ~100 times a step)
        n = float(num_averaged)
        d = min(decay, (1.0 + n) / (10.0 + n))
        if averaged[0].is_floating_point():
            torch._foreach_mul_(averaged, d)
            torch._foreach_add_(averaged, torch._foreach_mul(current, 1.0 - d))
        else:  # BatchNorm's integer batch counters: averaged in float, stored back as integers
            for a, c in zip(averaged, current):
                a.copy_(a * d + c * (1.0 - d))

    return AveragedModel(model, multi_avg_fn=ramped, use_buffers=True)


def save_checkpoint(state: dict, path: str | Path) -> None:
    save_torch(state, path)


def load_checkpoint(path: str | Path, expect_recipe: dict | None = None) -> dict:
    """Load a checkpoint safely (weights_only) and check it was made with `expect_recipe`."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"Checkpoint {path} does not exist. Rerun the workflow; it rebuilds the missing epochs from the last one it has.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"Checkpoint {path} cannot be read ({type(err).__name__}: {str(err)[:200]}). It is "
            "corrupt or truncated: delete it and rerun, and the workflow retrains that epoch."
        ) from err
    if not isinstance(state, dict) or "model" not in state or "recipe" not in state:
        raise CheckpointError(f"{path} is not a fun-with-diffusion checkpoint (no model/recipe entries). Delete it and rerun.")
    if expect_recipe is not None:
        diffs = {k: (state["recipe"].get(k), v) for k, v in expect_recipe.items() if state["recipe"].get(k) != v}
        if diffs:
            described = ", ".join(f"{k}: checkpoint {a!r} vs config {b!r}" for k, (a, b) in diffs.items())
            raise CheckpointError(
                f"Checkpoint {path} was trained with different settings ({described}). Delete the "
                "model's checkpoint folder (or use a different results folder) and rerun to train it "
                "with the current config."
            )
    return state


def build_model(state: dict, runtime: Runtime | None = None, use_ema: bool = False) -> UNet:
    """The checkpoint's UNet (its EMA weights when `use_ema` and the recipe keeps an EMA)."""
    model = UNet(UNetConfig(**state["model_config"]))
    if use_ema and state.get("ema") is not None:
        prefix = "module."
        model.load_state_dict({k[len(prefix):]: v for k, v in state["ema"].items() if k.startswith(prefix)})
    else:
        model.load_state_dict(state["model"])
    if runtime is not None:
        model = model.to(runtime.device)
        if runtime.channels_last:
            model = model.to(memory_format=torch.channels_last)
    return model


def export_final(state: dict, path: str | Path) -> None:
    """A final checkpoint as reusable weights: the UNet the samples come from (the EMA where the
    recipe keeps one) to `path` (safetensors) plus its architecture and recipe to the .json
    beside it (unet.save_final; unet.load_final reads it back), without optimizer or RNG state."""
    from .unet import save_final

    ema = state.get("ema") is not None
    info = {"model": state["name"], "epoch": state["epoch"], "objective": state["recipe"]["objective"], "ema_weights": ema, "recipe": state["recipe"]}
    save_final(build_model(state, use_ema=True), path, info)


def one_hot_with_dropout(labels: torch.Tensor, p_uncond: float, generator: torch.Generator, num_classes: int = 10) -> torch.Tensor:
    """One-hot [N, K] of `labels`, each row zeroed with probability p_uncond."""
    keep = torch.rand(labels.shape[0], generator=generator, device=generator.device) >= p_uncond
    return one_hot_kept(labels, keep, num_classes)


def one_hot_kept(labels: torch.Tensor, keep: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """One-hot [N, K] of `labels` with the rows where `keep` is False zeroed (the unconditional ones)."""
    c = F.one_hot(labels, num_classes).float()
    return c * keep.to(c.device, c.dtype)[:, None]


def draw_batch(recipe: dict, n: int, generator: torch.Generator, schedule=None) -> dict[str, torch.Tensor]:
    """Every random draw of one batch of n images, in a fixed order on `generator`: the noise
    [n, 1, 28, 28], then the class-dropout keep mask (class models), then t (flow: `flow.draw_t`, U[0, 1] by default;
    ddpm: `ddpm.draw_timesteps`, U{1..T} by default). Drawing an epoch's batches one after another gives the same numbers whether
    they are drawn step by step or all up front (train_epoch does the latter, so that on a GPU
    one transfer replaces a host-to-device copy, and its wait, per step)."""
    dev = generator.device
    draws = {"noise": torch.randn((n, 1, 28, 28), generator=generator, device=dev)}
    if recipe["objective"] == "denoise":
        return draws
    if recipe.get("conditioning") == "class":
        draws["keep"] = torch.rand(n, generator=generator, device=dev) >= recipe["p_uncond"]
    kind, param = recipe.get("t_sampling", "uniform"), recipe.get("t_sampling_param", 1.0)
    if recipe["objective"] == "flow":
        draws["t"] = flow.draw_t(n, generator, kind, param)
    else:
        draws["t"] = ddpm.draw_timesteps(n, schedule, generator, kind, param)
    return draws


def training_loss(model, x: torch.Tensor, labels: torch.Tensor, recipe: dict, schedule, generator: torch.Generator | None = None,
                  draws: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The per-batch loss of the recipe's objective; every random draw comes from `draws`, or,
    when not given, from draw_batch on `generator`."""
    if draws is None:
        draws = draw_batch(recipe, x.shape[0], generator, schedule)
    draws = {k: v.to(x.device) for k, v in draws.items()}
    noise = draws["noise"].to(x.dtype).view(x.shape)
    if recipe["objective"] == "denoise":
        z = noise if recipe.get("pure_noise") else x + recipe["sigma"] * noise
        return F.mse_loss(model(z).float(), x)
    c = None
    if recipe.get("conditioning") == "class":
        c = one_hot_kept(labels, draws["keep"])
    if recipe["objective"] == "flow":
        x_t = flow.interpolate(noise, x, draws["t"])
        return F.mse_loss(model(x_t, draws["t"], c).float(), flow.velocity_target(noise, x))
    # ddpm
    t = draws["t"]
    x_t = ddpm.forward_noise(x, t, schedule, noise)
    eps = model(x_t, t.float() / schedule.num_steps, c)
    return F.mse_loss(eps.float(), noise)


def epoch_draws(recipe: dict, sizes: list[int], generator: torch.Generator, schedule, device: torch.device) -> list[dict[str, torch.Tensor]]:
    """draw_batch for each batch size in turn, moved to `device` in one (pinned, asynchronous)
    copy per kind of draw; returns one dict of views per batch."""
    per_batch = [draw_batch(recipe, n, generator, schedule) for n in sizes]
    out = [{} for _ in sizes]
    for key in per_batch[0] if per_batch else ():
        whole = torch.cat([d[key] for d in per_batch])
        if device.type == "cuda":
            whole = whole.pin_memory().to(device, non_blocking=True)
        for i, part in enumerate(whole.split(sizes)):
            out[i][key] = part
    return out


def epoch_images(recipe: dict, n: int) -> int:
    """Images one epoch trains on: `images_per_epoch` (at most the split), or the whole split."""
    limit = recipe.get("images_per_epoch")
    return n if limit is None else min(int(limit), n)


def schedule_for(recipe: dict):
    if recipe["objective"] == "ddpm":
        return ddpm.make_schedule(recipe["num_steps"], recipe["beta_start"], recipe["beta_end"])
    return None


def train_epoch(
    state: dict,
    images: torch.Tensor,
    labels: torch.Tensor,
    runtime: Runtime,
    progress: Callable | None = None,
    *,
    cuda_graphs: bool = True,
    compile_unet: bool = False,
) -> dict:
    """Run one epoch from `state` (a loaded checkpoint) and return the next checkpoint.

    Args:
        images: float [N, 1, 28, 28] in [0, 1], already on the runtime's device.
        labels: int64 [N] on the same device.
        progress: optional wrapper around the batch iterator (e.g. tqdm).
        cuda_graphs: on CUDA, replay the training step as a captured CUDA graph (see
            CudaGraphStep); False launches its kernels one by one. No effect on a CPU.
        compile_unet: run the UNet through torch.compile (inductor). Off in the pipeline, whose
            per-epoch jobs would pay the compilation (tens of seconds) once per epoch.
    """
    run = EpochRun(state, images, labels, runtime, progress, cuda_graphs=cuda_graphs, compile_unet=compile_unet)
    while run.step():
        pass
    return run.finish()


class EpochRun:
    """One epoch of training, a step at a time: train_epoch drives it to the end; the recipe
    benchmark's --concurrent mode interleaves the steps of several models, each on its own CUDA
    stream. cuda_graphs and compile_unet as in train_epoch."""

    def __init__(self, state: dict, images: torch.Tensor, labels: torch.Tensor, runtime: Runtime, progress: Callable | None = None,
                 *, cuda_graphs: bool = True, compile_unet: bool = False):
        recipe = state["recipe"]
        if state["epoch"] >= recipe["epochs"]:
            raise ValueError(f"{state['name']} already has {state['epoch']} of {recipe['epochs']} epochs")
        self.state, self.images, self.labels, self.runtime = state, images, labels, runtime
        torch.set_rng_state(state["torch_rng"])
        generator = self.generator = torch.Generator().manual_seed(0)
        generator.set_state(state["generator"])
        model = self.model = build_model(state, runtime)
        graphed = cuda_graphs and runtime.device.type == "cuda"
        # CUDA: Adam's fused kernel (one launch for every parameter), capturable for the CUDA graph;
        # the CPU keeps torch's default (a loop over the parameters; foreach and a leaner EMA update each
        # measured within 2 % of it on the laptop recipe's DDPM). The saved groups carry these flags, so they are set there.
        optimizer = self.optimizer = torch.optim.Adam(model.parameters(), lr=recipe["lr"], fused=runtime.device.type == "cuda" or None, capturable=graphed)
        if state["optimizer"] is not None:  # None: epoch 0, nothing to restore
            saved = copy.deepcopy(state["optimizer"])  # Adam would update the caller's tensors in place
            for group in saved["param_groups"]:
                group.update(fused=True if runtime.device.type == "cuda" else None, capturable=graphed)
            optimizer.load_state_dict(saved)
        self.scheduler = make_lr_scheduler(optimizer, recipe)
        if state["lr_scheduler"] is not None:
            self.scheduler.load_state_dict(state["lr_scheduler"])
        self.ema = make_ema(model, recipe)
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        schedule = schedule_for(recipe)
        if schedule is not None and runtime.device.type != "cpu":  # once, not a copy per step (and none inside a CUDA graph)
            schedule = type(schedule)(*(v.to(runtime.device) for v in (schedule.betas, schedule.alphas, schedule.alphas_cumprod)))

        model.train()
        n, batch = images.shape[0], recipe["batch_size"]
        self.order = torch.randperm(n, generator=generator)[: epoch_images(recipe, n)].to(images.device)
        self.warmup = recipe.get("warmup_steps") or 0
        self.global_step = int(state["losses"].shape[0])  # optimiser steps taken before this epoch
        self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]  # this epoch's scheduled rate
        if graphed:  # a captured step reads the rate from device memory, so the warm-up can change it
            for group in optimizer.param_groups:
                group["lr"] = torch.tensor(group["lr"], dtype=torch.float32, device=runtime.device)
        batches = range(0, self.order.shape[0], batch)
        self.draws = epoch_draws(recipe, [min(batch, self.order.shape[0] - b) for b in batches], generator, schedule, images.device)
        self.batch, self.num_steps = batch, len(batches)
        self.batches = enumerate(progress(batches) if progress else batches)
        # compile_unet: the forward (and, through AOTAutograd, the backward) as inductor kernels, BatchNorm,
        # GELU and the bf16 casts fused; compiled on the first call of each batch shape
        net = torch.compile(model, dynamic=False) if compile_unet else model

        def body(x, y, d, cache=True):
            with runtime.autocast(cache=cache):
                loss = training_loss(net, x, y, recipe, schedule, draws=d)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return loss.detach()

        # a compiled step is traced with the autocast cache off from the start: a change of that
        # setting at capture time would recompile inside the capture, which CUDA forbids
        self.run_step = CudaGraphStep(body, eager_cache=not compile_unet) if graphed else body
        self.losses: list[torch.Tensor] = []

    def step(self) -> bool:
        """One optimiser step on the next batch; False (and nothing done) once the epoch is over."""
        try:
            i, start = next(self.batches)
        except StopIteration:
            return False
        if self.warmup:
            for group, lr in zip(self.optimizer.param_groups, self.base_lrs):
                set_lr(group, lr * min(1.0, (self.global_step + 1) / self.warmup))
        self.global_step += 1
        idx = self.order[start : start + self.batch]
        x = self.images[idx]
        if self.runtime.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.losses.append(self.run_step(x, self.labels[idx], self.draws[i]))
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return True

    def finish(self) -> dict:
        """The next checkpoint (weights, optimiser, scheduler and random states, losses)."""
        state, optimizer, scheduler = self.state, self.optimizer, self.scheduler
        for group, lr in zip(optimizer.param_groups, self.base_lrs):
            group["lr"] = lr  # the ExponentialLR chain continues from the scheduled rate, not the warm-up one
        scheduler.step()
        losses = torch.stack(self.losses).float().cpu()
        log.info("%s epoch %d: mean loss %.5f, lr now %.3g", state["name"], state["epoch"] + 1, losses.mean().item(), scheduler.get_last_lr()[0])
        all_losses = torch.cat([state["losses"], losses])
        return {
            **state,
            "epoch": state["epoch"] + 1,
            "model": _cpu(self.model.state_dict()),
            "ema": None if self.ema is None else _cpu(self.ema.state_dict()),
            "optimizer": optimizer.state_dict(),
            "lr_scheduler": scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "losses": all_losses,
            "epoch_ends": [*state["epoch_ends"], int(all_losses.shape[0])],
        }


def set_lr(group: dict, value: float) -> None:
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(value)
    else:
        group["lr"] = value


def _cpu(state_dict: dict) -> dict:
    return {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
