"""From the validated config to per-model training recipes and target file lists.

Kept free of torch and Snakemake so that building the DAG stays cheap and this logic is
unit-tested on its own.
"""

from __future__ import annotations

PART_B_MODELS = ("single_step", "time_cond", "class_cond")
DDPM_MODELS = ("time_cond", "class_cond")


class ConfigError(ValueError):
    pass


def recipe(config: dict, model: str) -> dict:
    """Everything that determines a model's weights: changing any of it retrains from epoch 1."""
    if model not in PART_B_MODELS:
        raise ConfigError(f"unknown Part B model {model!r}; choose one of {PART_B_MODELS}")
    pb = config["part_b"]
    m = pb[model]
    out = {
        "hidden": m["hidden"],
        "batch_size": m["batch_size"],
        "lr": m["lr"],
        "epochs": m["epochs"],
        "lr_decay": m.get("lr_decay"),
        "train_limit": config["data"].get("train_limit"),
    }
    if model == "single_step":
        out.update(objective="denoise", conditioning="none", sigma=m["sigma"], pure_noise=False)
    else:
        d = pb["ddpm"]
        out.update(
            objective="ddpm",
            conditioning="time" if model == "time_cond" else "class",
            time_combine="add",
            num_steps=d["num_steps"],
            beta_start=d["beta_start"],
            beta_end=d["beta_end"],
        )
        if model == "class_cond":
            out["p_uncond"] = m["p_uncond"]
    return out


def check(config: dict) -> None:
    """Checks JSON Schema cannot express; raise ConfigError naming the key and the fix."""
    pb = config["part_b"]
    for model in PART_B_MODELS:
        m = pb[model]
        late = [e for e in m["show_epochs"] if e > m["epochs"]]
        if late:
            raise ConfigError(
                f"part_b.{model}.show_epochs has {late}, beyond part_b.{model}.epochs = {m['epochs']}. "
                f"Use epochs between 1 and {m['epochs']}, or raise part_b.{model}.epochs."
            )
    d = pb["ddpm"]
    if d["beta_start"] > d["beta_end"]:
        raise ConfigError(f"part_b.ddpm.beta_start ({d['beta_start']}) must not exceed beta_end ({d['beta_end']}).")
    if pb["class_cond"].get("guidance") is None:
        raise ConfigError("part_b.class_cond.guidance must be set (the course uses 5).")
    if pb["num_test_digits"] > (config["data"].get("test_limit") or 10_000):
        raise ConfigError("part_b.num_test_digits exceeds data.test_limit; lower the first or raise the second.")


def fmt_gamma(gamma: float) -> str:
    """5.0 -> '5', 7.5 -> '7.5': the CFG scale as it appears in file names."""
    return f"{gamma:g}"


def part_b_targets(config: dict) -> list[str]:
    """Every file a full Part B run must produce."""
    pb = config["part_b"]
    root = "results/part_b"
    out = [f"{root}/single_step/noising_grid.png", f"{root}/single_step/test_mse.png"]
    for model in PART_B_MODELS:
        out += [f"{root}/{model}/loss_curve.png", f"{root}/{model}/losses.csv"]
    for e in pb["single_step"]["show_epochs"]:
        out += [f"{root}/single_step/epoch_{e:03d}/{name}" for name in ("denoised.png", "ood.png", "test_metrics.csv")]
    for e in pb["time_cond"]["show_epochs"]:
        out += [f"{root}/time_cond/epoch_{e:03d}/samples.png"]
    cc = pb["class_cond"]
    gammas = {(e, cc["guidance"]) for e in cc["show_epochs"]} | {(cc["epochs"], g) for g in cc["guidance_sweep"]}
    for e, g in sorted(gammas):
        out += [f"{root}/class_cond/epoch_{e:03d}/samples_cfg{fmt_gamma(g)}.png"]
    out += [f"{root}/time_cond/sampling.gif", f"{root}/class_cond/sampling.gif"]
    return out
