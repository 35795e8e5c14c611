"""Checks of the validated config that JSON Schema cannot express, run once at DAG build.

Each raises ConfigError naming the key and the fix. Torch-free.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError
from .prompts import prompt_to_class
from .recipes import model_settings, models
from .timesteps import scaled_timesteps


def check(config: dict) -> None:
    """Checks JSON Schema cannot express; raise ConfigError naming the key and the fix."""
    pb = config["part_b"]
    for model in models(config):
        m = model_settings(config, model)
        key = "part_b." + model.replace("/", ".")
        kind = m.get("t_sampling") or "uniform"
        allowed = {"ddpm": "p2", "flow": "logit_normal"}.get(model.split("/")[0]) if "/" in model else None
        if kind not in ("uniform", allowed):
            raise ConfigError(
                f"{key}.t_sampling = {kind!r} does not apply to this model: "
                + (f"use uniform or {allowed}." if allowed else "a denoiser has no noise level t; remove the key.")
            )
        if kind == "uniform" and m.get("t_sampling_param") is not None:
            raise ConfigError(f"{key}.t_sampling_param is set but {key}.t_sampling is uniform, which takes no parameter: set t_sampling to {allowed or 'a non-uniform kind'}, or remove t_sampling_param.")
        check_autoguidance(model, m, key)
        if m.get("sample_steps") is not None:
            if "/" not in model:
                raise ConfigError(f"{key}.sample_steps: a denoiser does not sample; remove the key.")
            if model.startswith("ddpm/") and m["sample_steps"] > pb["ddpm"]["num_steps"]:
                raise ConfigError(f"{key}.sample_steps ({m['sample_steps']}) exceeds part_b.ddpm.num_steps = {pb['ddpm']['num_steps']}; use at most T, or null for part_b.ddpm.sample_steps.")
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


def check_autoguidance(model: str, m: dict, key: str) -> None:
    """guide_epoch and guide_weight come together, on a time-conditioned model, before its last epoch."""
    epoch, weight = m.get("guide_epoch"), m.get("guide_weight")
    if epoch is None and weight is None:
        return
    if not model.endswith("/time_cond"):
        raise ConfigError(f"{key}.guide_epoch / guide_weight (autoguidance) apply to the time-conditioned models only; "
                          "class-conditioned ones are guided by their class (guidance). Remove the keys.")
    if epoch is None or weight is None:
        missing = "guide_weight" if weight is None else "guide_epoch"
        raise ConfigError(f"{key}.{missing} is missing: autoguidance needs both guide_epoch (the guiding checkpoint) and guide_weight, or neither.")
    if epoch >= m["epochs"]:
        raise ConfigError(f"{key}.guide_epoch = {epoch} must be below {key}.epochs = {m['epochs']}: the guide is an earlier checkpoint of the same run.")


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
