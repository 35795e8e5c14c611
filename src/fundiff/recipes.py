"""From the validated config to per-model training recipes and target file lists.

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

EDITIONS = ("ddpm", "flow")
GENERATIVE = {
    "ddpm": ("time_cond", "class_cond"),
    "flow": ("time_cond", "class_cond", "class_cond_constant_lr"),
}
ALL_MODELS = ("single_step", "pure_noise") + tuple(f"{e}/{m}" for e in EDITIONS for m in GENERATIVE[e])


class ConfigError(ValueError):
    pass


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
    return out


def sampling_steps(config: dict, model: str) -> int:
    """Steps of a full sampling run: T for DDPM, the Euler step count for flow matching."""
    return config["part_b"][model.split("/")[0]]["num_steps"]


def check(config: dict) -> None:
    """Checks JSON Schema cannot express; raise ConfigError naming the key and the fix."""
    pb = config["part_b"]
    for model in models(config):
        m = model_settings(config, model)
        key = "part_b." + model.replace("/", ".")
        late = [e for e in m["show_epochs"] if e > m["epochs"]]
        if late:
            raise ConfigError(
                f"{key}.show_epochs has {late}, beyond {key}.epochs = {m['epochs']}. "
                f"Use epochs between 1 and {m['epochs']}, or raise {key}.epochs."
            )
    d = pb["ddpm"]
    if d["beta_start"] > d["beta_end"]:
        raise ConfigError(f"part_b.ddpm.beta_start ({d['beta_start']}) must not exceed part_b.ddpm.beta_end ({d['beta_end']}).")
    if pb["num_test_digits"] > (config["data"].get("test_limit") or 10_000):
        raise ConfigError("part_b.num_test_digits exceeds data.test_limit; lower the first or raise the second.")
    for edition in pb["editions"]:
        too_many = [k for k in pb["step_comparison"] if k > pb[edition]["num_steps"]]
        if too_many:
            raise ConfigError(f"part_b.step_comparison has {too_many}, more than part_b.{edition}.num_steps = {pb[edition]['num_steps']}.")


def fmt_gamma(gamma: float) -> str:
    """5.0 -> '5', 7.5 -> '7.5': the CFG scale as it appears in file names."""
    return f"{gamma:g}"


def sample_files(config: dict, model: str) -> list[str]:
    """Sample grids of a generative model: every shown epoch, plus the guidance sweep at the end."""
    m = model_settings(config, model)
    base = f"results/part_b/{model}"
    if "guidance" not in m:
        return [f"{base}/epoch_{e:03d}/samples.png" for e in m["show_epochs"]]
    pairs = {(e, m["guidance"]) for e in m["show_epochs"]} | {(m["epochs"], g) for g in m.get("guidance_sweep", [])}
    return [f"{base}/epoch_{e:03d}/samples_cfg{fmt_gamma(g)}.png" for e, g in sorted(pairs)]


def part_b_targets(config: dict) -> list[str]:
    """Every file a full Part B run must produce."""
    pb = config["part_b"]
    root = "results/part_b"
    out = [f"{root}/single_step/noising_grid.png", f"{root}/single_step/test_mse.png"]
    for model in models(config):
        out += [f"{root}/{model}/loss_curve.png", f"{root}/{model}/losses.csv"]
    for e in pb["single_step"]["show_epochs"]:
        out += [f"{root}/single_step/epoch_{e:03d}/{name}" for name in ("denoised.png", "ood.png", "test_metrics.csv")]
    if "pure_noise" in models(config):
        out += [f"{root}/pure_noise/epoch_{e:03d}/{name}" for e in pb["pure_noise"]["show_epochs"] for name in ("denoised.png", "mse_to_mean.csv")]
    for model in generative_models(config):
        out += sample_files(config, model) + [f"{root}/{model}/sampling.gif"]
    out += [f"{root}/step_comparison.png", f"{root}/step_comparison.csv"]
    return out
