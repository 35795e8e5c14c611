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

import math
import os
from pathlib import Path

import re

EDITIONS = ("ddpm", "flow")
GENERATIVE = {
    "ddpm": ("time_cond", "class_cond"),
    "flow": ("time_cond", "class_cond", "class_cond_constant_lr"),
}
ALL_MODELS = ("single_step", "pure_noise") + tuple(f"{e}/{m}" for e in EDITIONS for m in GENERATIVE[e])


class ConfigError(ValueError):
    pass


class PromptError(ConfigError):
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
    return out


def sampling_steps(config: dict, model: str) -> int:
    """Steps of the sample grids, evaluation samples and animations: the Euler step count for
    flow matching; for DDPM `sample_steps` evenly strided timesteps, or all T when it is null."""
    edition = config["part_b"][model.split("/")[0]]
    if model.startswith("flow/"):
        return edition["num_steps"]
    return edition.get("sample_steps") or edition["num_steps"]


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
    check_part_a(config)
    if "ddpm" in pb["editions"]:  # the Euler sampler takes any step count; DDPM at most T
        too_many = [k for k in pb["step_comparison"] if k > pb["ddpm"]["num_steps"]]
        if too_many:
            raise ConfigError(f"part_b.step_comparison has {too_many}, more than part_b.ddpm.num_steps = {pb['ddpm']['num_steps']} (T).")
    ev = config.get("evaluation") or {}
    if ev.get("num_samples", 1000) < pb["num_samples"]:
        raise ConfigError(
            f"evaluation.num_samples ({ev['num_samples']}) is below part_b.num_samples ({pb['num_samples']}): each sample grid shows "
            "the first part_b.num_samples of its setting's evaluated samples. Raise the first or lower the second."
        )
    if (pb["ddpm"].get("sample_steps") or 0) > pb["ddpm"]["num_steps"]:
        raise ConfigError(f"part_b.ddpm.sample_steps ({pb['ddpm']['sample_steps']}) exceeds part_b.ddpm.num_steps = {pb['ddpm']['num_steps']}; use at most T, or null for all T.")


def check_data_root(root: str, workdir: str | Path = ".") -> None:
    """data.root must be a folder that exists or can be made, and be writable: raise ConfigError
    naming the obstacle (a regular file at or above it, a folder without write permission)."""
    path = Path(workdir) / root
    for part in [path, *path.parents]:
        if part.exists() or part.is_symlink():
            break
    where = f"data.root = {root!r}"
    if not part.exists():  # a dangling symlink
        raise ConfigError(f"{where}: {part} is a broken symbolic link. Remove it, or set data.root to a folder that exists or can be made.")
    if not part.is_dir():
        what = "is" if part == path else f"lies under {part}, which is"
        raise ConfigError(f"{where} {what} a regular file, not a folder: MNIST cannot be stored there. Set data.root to a folder "
                          f"(e.g. --config data='{{root: data/mnist}}'), or move the file away.")
    if part == path and (path / "mnist_manifest.json").is_file():
        return  # downloaded already: read only
    if not os.access(part, os.W_OK | os.X_OK):
        raise ConfigError(f"{where}: the folder {part} is not writable by this user. Choose a folder you can write to, or fix its permissions.")


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


def final_files(model: str) -> list[str]:
    """A model's reusable final weights (safetensors) and the JSON of its architecture (rule export_model)."""
    return [f"results/part_b/{model}/final.safetensors", f"results/part_b/{model}/final.json"]


def part_b_targets(config: dict) -> list[str]:
    """Every file a full Part B run must produce."""
    pb = config["part_b"]
    root = "results/part_b"
    out = [f"{root}/single_step/noising_grid.png", f"{root}/single_step/test_mse.png"]
    for model in models(config):
        out += [f"{root}/{model}/loss_curve.png", f"{root}/{model}/losses.csv", *final_files(model)]
    for e in pb["single_step"]["show_epochs"]:
        out += [f"{root}/single_step/epoch_{e:03d}/{name}" for name in ("denoised.png", "ood.png", "test_metrics.csv")]
    if "pure_noise" in models(config):
        out += [f"{root}/pure_noise/epoch_{e:03d}/{name}" for e in pb["pure_noise"]["show_epochs"] for name in ("denoised.png", "mse_to_mean.csv")]
    for model in generative_models(config):
        out += sample_files(config, model) + [f"{root}/{model}/sampling.gif"]
    out += [f"{root}/step_comparison.png", f"{root}/step_comparison.csv"]
    return out


# ---------------------------------------------------------------- Part A: which model runs it

PART_A_MODELS = ("auto", "deepfloyd", "tiny", "mnist")


def deepfloyd_available(stage1_repo: str, cache_dir: str | None = None) -> tuple[bool, str]:
    """(available, why): stage-I weights in the local Hugging Face cache, or a token configured."""
    from huggingface_hub import get_token, try_to_load_from_cache

    cached = try_to_load_from_cache(stage1_repo, "model_index.json", cache_dir=cache_dir)
    if isinstance(cached, str):
        return True, f"{stage1_repo} is in the local Hugging Face cache"
    if get_token():
        return True, "a Hugging Face token is configured"
    return False, f"{stage1_repo} is not in the local Hugging Face cache and no Hugging Face token is set"


def choose_part_a_model(requested: str, stage1_repo: str, cache_dir: str | None = None) -> tuple[str, str]:
    """Resolve `part_a.model` once, at DAG build: (model, reason). `deepfloyd` never falls back."""
    if requested not in PART_A_MODELS:
        raise ConfigError(f"part_a.model must be one of {PART_A_MODELS}, got {requested!r}")
    if requested != "auto":
        return requested, "set explicitly in the config"
    available, why = deepfloyd_available(stage1_repo, cache_dir)
    return ("deepfloyd" if available else "mnist"), why


def part_a_section(config: dict, model: str) -> dict:
    """The inputs and prompts of the chosen Part A model: part_a.mnist, or part_a.deepfloyd (deepfloyd, tiny)."""
    return config["part_a"]["mnist" if model == "mnist" else "deepfloyd"]


def part_a_images(config: dict, model: str = "mnist") -> list[str]:
    return list(part_a_section(config, model)["images"])


def part_a_targets(config: dict, model: str = "mnist") -> list[str]:
    """Every Part A file; the same names serve every Part A model (DeepFloyd adds section 0)."""
    pa, m = config["part_a"], part_a_section(config, model)
    root = "results/part_a"
    out = [f"{root}/noising.png", f"{root}/denoise_metrics.csv", f"{root}/iterative.png", f"{root}/iterative_metrics.csv", f"{root}/samples.png"]
    out += [f"{root}/samples_cfg{fmt_gamma(g)}.png" for g in sorted({pa["cfg_scale"], *pa["cfg_sweep"]})]
    out += [f"{root}/sdedit/{name}.png" for name in m["sdedit_images"]]
    out += [f"{root}/text_edit/{i:02d}.png" for i in range(len(m["text_edits"]))]
    out += [f"{root}/inpaint/{i:02d}.png" for i in range(len(m["inpaint"]))]
    out += [f"{root}/anagram/{i:02d}.png" for i in range(len(m["anagrams"]))]
    out += [f"{root}/hybrid/{i:02d}.png" for i in range(len(m["hybrids"]))]
    if model != "mnist":
        out += [f"{root}/setup/steps_{n:03d}.png" for n in m["num_inference_steps"]]
        out.append(f"{root}/samples_prompts_cfg{fmt_gamma(pa['cfg_scale'])}.png")  # extra: sample_prompts at the course gamma
    else:  # the evaluation classifier reads the 1.5 samples and the digit illusions
        out.append(f"{root}/readings.csv")
    return out


def prompt_to_class(prompt: str, num_classes: int = 10) -> int | None:
    """'3', 'a 3', 'the digit 3' -> 3; '' (the null prompt) -> None; anything else is an error."""
    text = prompt.strip().lower()
    if text == "":
        return None
    match = re.fullmatch(r"(?:(?:a|an|the)\s+)?(?:digit\s+|number\s+)?(\d)", text)
    if not match or int(match.group(1)) >= num_classes:
        raise PromptError(
            f"The MNIST Part A model understands only digit prompts ('3', 'a 3', 'the digit 3') "
            f"and the empty prompt, not {prompt!r}. Fix the prompt in part_a.mnist of the config."
        )
    return int(match.group(1))


DEEPFLOYD_T = 1000


def scale_t(t: int, num_steps: int, reference: int = DEEPFLOYD_T) -> int:
    """A DeepFloyd timestep on the MNIST model's schedule: round(t * T_m / 1000)."""
    return int(round(t * num_steps / reference))


def scaled_timesteps(start: int, stride: int, num_steps: int) -> list[int]:
    """The strided list start, start - stride, ..., 0 with every entry scaled to T_m."""
    if start < 1 or stride < 1 or start % stride:
        raise ConfigError(f"part_a.timesteps: start ({start}) must be a positive multiple of stride ({stride})")
    scaled = [scale_t(t, num_steps) for t in range(start, -1, -stride)]
    if len(set(scaled)) != len(scaled):
        raise ConfigError(f"part_a.timesteps: stride {stride} is too fine for the {num_steps}-step MNIST model (scaled timesteps repeat); raise the stride")
    return scaled


def _check_references(section: dict, where: str) -> None:
    names = set(section["images"])
    used = list(section["sdedit_images"]) + [e["image"] for e in section["text_edits"] + section["inpaint"]]
    unknown = sorted({n for n in used if n not in names})
    if unknown:
        raise ConfigError(f"{where} refers to images {unknown} that {where}.images does not define (defined: {sorted(names)}).")


def _check_rects(section: dict, where: str, size: int) -> None:
    for entry in section["inpaint"]:
        if "rect" not in entry:
            continue
        y0, y1, x0, x1 = entry["rect"]
        if not (y0 < y1 <= size and x0 < x1 <= size):
            raise ConfigError(f"{where}.inpaint rectangle {entry['rect']} for {entry['image']!r} must have y0 < y1 <= {size} and x0 < x1 <= {size} (rows y0:y1, columns x0:x1 of the {size}x{size} image).")


def check_part_a(config: dict) -> None:
    pa, m, d = config["part_a"], config["part_a"]["mnist"], config["part_a"]["deepfloyd"]
    for name, steps in (("MNIST", scaled_timesteps(pa["timesteps"]["start"], pa["timesteps"]["stride"], config["part_b"]["ddpm"]["num_steps"])),
                        ("DeepFloyd", list(range(pa["timesteps"]["start"], -1, -pa["timesteps"]["stride"])))):
        last = len(steps) - 2
        for key, values in (("iterative_i_start", [pa["iterative_i_start"]]), ("sdedit_i_starts", pa["sdedit_i_starts"])):
            bad = [v for v in values if v > last]
            if bad:
                raise ConfigError(f"part_a.{key} has {bad}, but the strided schedule has {len(steps)} timesteps on the {name} model: use positions 0..{last}.")
    for key in ("blur", "hybrid_blur"):
        if pa[key]["kernel_size"] % 2 == 0:
            raise ConfigError(f"part_a.{key}.kernel_size must be odd, got {pa[key]['kernel_size']}.")
    _check_references(m, "part_a.mnist")
    _check_references(d, "part_a.deepfloyd")
    prompts = [m.get("generic_prompt", "")] + m["sample_prompts"] + [e["prompt"] for e in m["text_edits"]]
    prompts += [p for e in m["anagrams"] for p in (e["upright"], e["flipped"])] + [p for e in m["hybrids"] for p in (e["low"], e["high"])]
    for prompt in prompts:
        prompt_to_class(prompt)
    _check_rects(m, "part_a.mnist", 28)
    epochs = config["part_b"]["ddpm"]["class_cond"]["epochs"]
    if m.get("epoch") is not None and not 1 <= m["epoch"] <= epochs:
        raise ConfigError(f"part_a.mnist.epoch is {m['epoch']}, but part_b.ddpm.class_cond trains {epochs} epochs: use 1..{epochs} or null (the final one).")
    _check_rects(d, "part_a.deepfloyd", 64)
    for name, spec in d["images"].items():
        source = spec["source"]
        if source.startswith(("http://", "https://", "file:")) and "sha256" not in spec:
            raise ConfigError(f"part_a.deepfloyd.images.{name}: a URL source needs its sha256 (so a changed or truncated download is caught).")
        if "crop" in spec and not (spec["crop"][0] < spec["crop"][1] and spec["crop"][2] < spec["crop"][3]):
            raise ConfigError(f"part_a.deepfloyd.images.{name}.crop {spec['crop']} must have y0 < y1 and x0 < x1.")


def deepfloyd_prompts(config: dict) -> list[str]:
    """Every prompt Part A on DeepFloyd uses (embed_prompts encodes these plus the empty prompt)."""
    d = config["part_a"]["deepfloyd"]
    prompts = [d["generic_prompt"], *d["setup_prompts"], *d["sample_prompts"], *(e["prompt"] for e in d["text_edits"])]
    prompts += [p for e in d["anagrams"] for p in (e["upright"], e["flipped"])] + [p for e in d["hybrids"] for p in (e["low"], e["high"])]
    return list(dict.fromkeys(prompts))


# ---------------------------------------------------------------- evaluation: measured sample quality


def metrics_files(config: dict, model: str) -> list[str]:
    """One metrics CSV per sample setting of a generative model (the settings of sample_files):
    results/part_b/<model>/epoch_NNN/samples_cfgG.png -> .../metrics_cfgG.csv."""
    out = []
    for path in sample_files(config, model):
        folder, name = path.rsplit("/", 1)
        out.append(f"{folder}/{name.replace('samples', 'metrics', 1).removesuffix('.png')}.csv")
    return out


def is_class_conditioned(config: dict, model: str) -> bool:
    return "guidance" in model_settings(config, model)


def quality_files(config: dict, model: str) -> dict[str, str]:
    """A generative model's evaluation summary: every setting's metrics in one CSV, quality against
    epoch, and for class-conditioned models accuracy per digit and (with a sweep) the guidance trade-off."""
    base = f"results/part_b/{model}"
    out = {"csv": f"{base}/metrics.csv", "vs_epoch": f"{base}/quality_vs_epoch.png"}
    if is_class_conditioned(config, model):
        out["per_class"] = f"{base}/per_class_accuracy.png"
        if model_settings(config, model).get("guidance_sweep"):
            out["tradeoff"] = f"{base}/guidance_tradeoff.png"
    return out


def evaluation_targets(config: dict) -> list[str]:
    """Every file of the sample evaluation: the classifier, the real-data reference, and per
    generative model its metrics CSVs, the combined table and the quality figures."""
    out = ["results/evaluation/classifier.csv", "results/evaluation/reference_metrics.csv"]
    for model in generative_models(config):
        out += metrics_files(config, model) + list(quality_files(config, model).values())
    return out


def figure_files(config: dict, part_a_model: str) -> list[str]:
    """The image files a reader looks at: every Part B and Part A figure and the evaluation plots."""
    files = part_b_targets(config) + part_a_targets(config, part_a_model) + evaluation_targets(config)
    return [f for f in files if f.endswith((".png", ".gif"))]
