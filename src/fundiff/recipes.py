"""From the validated config to per-model training recipes: each model's settings, what determines
its weights, its sampling steps and its scheduling priority.

Kept free of torch and Snakemake so that building the DAG stays cheap and this logic is
unit-tested on its own.

Part B models and where they live (`results/part_b/<model id>/...`):

    single_step                 one-step denoiser, sigma-noised input (both editions)
    pure_noise                  the same denoiser fed pure noise (2025 edition, 1.2.3)
    ddpm/time_cond              2024 edition, DDPM, time-conditioned
    ddpm/class_cond             2024 edition, DDPM, class-conditioned with CFG
    flow/time_cond              2025 edition, flow matching, time-conditioned
    flow/class_cond             2025 edition, flow matching, class-conditioned with CFG
    flow/class_cond_constant_lr the 2025 "without the LR scheduler" variant
"""

from __future__ import annotations

import math

from .errors import ConfigError, PromptError  # noqa: F401  (callers catch them as recipes.ConfigError, recipes.PromptError)

EDITIONS = ("ddpm", "flow")
GENERATIVE = {
    "ddpm": ("time_cond", "class_cond"),
    "flow": ("time_cond", "class_cond", "class_cond_constant_lr"),
}
ALL_MODELS = ("single_step", "pure_noise") + tuple(f"{e}/{m}" for e in EDITIONS for m in GENERATIVE[e])


def model_settings(config: dict, model: str) -> dict:
    """The config block of a model id (see the module docstring)."""
    if model not in ALL_MODELS:
        raise ConfigError(f"unknown Part B model {model!r}; choose one of {ALL_MODELS}")
    pb = config["part_b"]
    if "/" not in model:
        return pb[model]
    edition, name = model.split("/")
    return pb[edition][name]


def models(config: dict) -> list[str]:
    """The models the config's `part_b.editions` asks for, in report order."""
    editions = config["part_b"]["editions"]
    out = ["single_step"] + (["pure_noise"] if "flow" in editions else [])
    return out + [f"{e}/{m}" for e in EDITIONS if e in editions for m in GENERATIVE[e]]


def generative_models(config: dict) -> list[str]:
    return [m for m in models(config) if "/" in m]


def epoch_priority(config: dict, model: str, epoch: int) -> int:
    """Scheduling priority of a model's training epoch `epoch`: thousands of image passes (images x
    (hidden / 32)^2, the UNet's cost) left in its chain from that epoch on. The longest chains
    (the DDPM models' 20 epochs) then start first and the chains finish together, with the
    sampling jobs left to fill the cores at the end, instead of one chain running alone there
    (longest-remaining-path list scheduling)."""
    m = model_settings(config, model)
    per_epoch = m.get("images_per_epoch") or config["data"].get("train_limit") or 60_000
    per_epoch = min(per_epoch, config["data"].get("train_limit") or 60_000)
    return math.ceil((m["epochs"] - epoch + 1) * per_epoch * (m["hidden"] / 32) ** 2 / 1000)


def recipe(config: dict, model: str) -> dict:
    """Everything that determines a model's weights: changing any of it retrains from epoch 1."""
    m = model_settings(config, model)
    out = {
        "hidden": m["hidden"],
        "batch_size": m["batch_size"],
        "lr": m["lr"],
        "epochs": m["epochs"],
        "lr_decay": m.get("lr_decay"),
        "ema_decay": m.get("ema_decay"),
        "train_limit": config["data"].get("train_limit"),
    }
    # keys of quick recipes, left out when unset so that older checkpoints keep matching
    for key in ("images_per_epoch", "warmup_steps", "ema_warmup"):
        if m.get(key) is not None:
            out[key] = m[key]
    if model in ("single_step", "pure_noise"):
        out.update(objective="denoise", conditioning="none", sigma=m.get("sigma"), pure_noise=model == "pure_noise")
        return out
    edition, name = model.split("/")
    out.update(objective=edition, conditioning="time" if name == "time_cond" else "class")
    if edition == "ddpm":
        d = config["part_b"]["ddpm"]
        out.update(time_combine="add", num_steps=d["num_steps"], beta_start=d["beta_start"], beta_end=d["beta_end"])
    else:
        out.update(time_combine="mul")
    if out["conditioning"] == "class":
        out["p_uncond"] = m["p_uncond"]
    if m.get("t_sampling") not in (None, "uniform"):  # the course's uniform t leaves no key, so older checkpoints keep matching
        out["t_sampling"] = m["t_sampling"]
        out["t_sampling_param"] = float(m.get("t_sampling_param") or 1.0)
    return out


def autoguide(config: dict, model: str, epoch: int | str) -> tuple[int, float] | None:
    """(guide epoch, weight) when the samples of `model` after `epoch` are autoguided (Karras et al.
    2024: an earlier checkpoint of the same run guides it, u = u_guide + w (u - u_guide)), else None."""
    m = model_settings(config, model)
    guide = m.get("guide_epoch")
    if guide is None or int(epoch) <= guide:
        return None
    return guide, float(m["guide_weight"])


def sampling_steps(config: dict, model: str) -> int:
    """Steps of a model's sample grids, evaluation samples and animations: the model's own
    `sample_steps` when set, else its edition's: the Euler step count (`num_steps`) for flow
    matching; for DDPM `sample_steps` evenly strided timesteps, or all T when that is null."""
    own = model_settings(config, model).get("sample_steps")
    if own:
        return own
    edition = config["part_b"][model.split("/")[0]]
    if model.startswith("flow/"):
        return edition["num_steps"]
    return edition.get("sample_steps") or edition["num_steps"]


def is_class_conditioned(config: dict, model: str) -> bool:
    return "guidance" in model_settings(config, model)
