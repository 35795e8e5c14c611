"""Every file path of the workflow, in one place: the rules' patterns, the target lists built from
the config, and the guidance scale as it appears in file names.

Kept free of torch and Snakemake: the rules, the target rules, the report and the benchmark
summaries all read their paths from here.

    results/part_b/<model>/checkpoints/epoch_<NNN>.pt      per-epoch training checkpoints
    results/part_b/<model>/epoch_<NNN>/samples<cfg>.png    sample grids (<cfg>: "" or _cfg<gamma>)
    results/part_b/<model>/epoch_<NNN>/metrics<cfg>.csv    measured quality of one sample set
    results/part_a/...                                     Part A figures (same names for every model)
    results/evaluation/...                                 classifier and real-digit reference
    logs/ and benchmarks/ mirror results/
"""

from __future__ import annotations

import re

from . import recipes

RESULTS = "results"
PART_B = f"{RESULTS}/part_b"
PART_A = f"{RESULTS}/part_a"
EVALUATION = f"{RESULTS}/evaluation"

# ---------------------------------------------------------------- the guidance scale in file names

CFG_WILDCARD = r"(_cfg\d+(\.\d+)?)?"  # "" (no guidance) or _cfg<gamma>
PART_A_CFG_WILDCARD = r"((_prompts)?_cfg\d+(\.\d+)?)?"  # Part A adds the extra prompts at gamma


def fmt_gamma(gamma: float) -> str:
    """5.0 -> '5', 7.5 -> '7.5': the CFG scale as it appears in file names."""
    return f"{gamma:g}"


def cfg_suffix(gamma: float | None) -> str:
    """The {cfg} wildcard value of a guidance scale: '' without guidance, '_cfg5' at 5.0."""
    return "" if gamma is None else f"_cfg{fmt_gamma(gamma)}"


def parse_cfg(suffix: str) -> float | None:
    """The guidance scale of a {cfg} wildcard value ('', '_cfg5', '_prompts_cfg7.5'): the inverse of cfg_suffix."""
    if not suffix:
        return None
    match = re.fullmatch(r"(?:_prompts)?_cfg(\d+(?:\.\d+)?)", suffix)
    if not match:
        raise ValueError(f"{suffix!r} is not a guidance suffix ('', '_cfg<gamma>' or '_prompts_cfg<gamma>')")
    return float(match.group(1))


def at_gamma(frame, gamma: float | None):
    """The rows of a metrics frame (with a `guidance` column) at `gamma`, compared as file names
    spell them; None: every row (an unguided model's)."""
    if gamma is None:
        return frame
    return frame[frame.guidance.map(fmt_gamma) == fmt_gamma(gamma)]


# ---------------------------------------------------------------- Part B and evaluation patterns

CHECKPOINT = PART_B + "/{model}/checkpoints/epoch_{epoch}.pt"
EPOCH_DIR = PART_B + "/{model}/epoch_{epoch}"
SAMPLES_PNG = PART_B + "/{gen_model}/epoch_{epoch}/samples{cfg}.png"
SAMPLES_PT = PART_B + "/{gen_model}/epoch_{epoch}/samples{cfg}.pt"
EVAL_SAMPLES = PART_B + "/{gen_model}/epoch_{epoch}/eval_samples{cfg}.pt"
SAMPLE_METRICS = PART_B + "/{gen_model}/epoch_{epoch}/metrics{cfg}.csv"
TEST_METRICS = PART_B + "/single_step/epoch_{epoch}/test_metrics.csv"
CLASSIFIER = EVALUATION + "/classifier.pt"
CLASSIFIER_CSV = EVALUATION + "/classifier.csv"
REFERENCE = EVALUATION + "/reference_metrics.csv"
REFERENCE_STATS = EVALUATION + "/reference_stats.pt"  # test-split feature mean and covariance
QUALITY_GATES = f"{RESULTS}/quality_gates.csv"
REPORT = f"{RESULTS}/report/index.html"
READINGS = PART_A + "/readings.csv"
DEVICE = PART_B + "/{model}/device.txt"  # where the model was trained, as its training jobs recorded it


def checkpoint(model: str, epoch: int | str) -> str:
    return CHECKPOINT.format(model=model, epoch=f"{int(epoch):03d}")


def final_checkpoint(config: dict, model: str) -> str:
    return checkpoint(model, recipes.model_settings(config, model)["epochs"])


def epoch_file(model: str, epoch: int | str, name: str) -> str:
    return f"{EPOCH_DIR.format(model=model, epoch=f'{int(epoch):03d}')}/{name}"


def epoch_pattern(model: str, name: str) -> str:
    """results/part_b/<model>/epoch_{epoch}/<name>, with the {epoch} wildcard left in."""
    return f"{PART_B}/{model}/epoch_{{epoch}}/{name}"


def model_file(model: str, name: str) -> str:
    return f"{PART_B}/{model}/{name}"


def part_b_file(name: str) -> str:
    return f"{PART_B}/{name}"


def test_metrics_files(config: dict) -> list[str]:
    return [epoch_file("single_step", e, "test_metrics.csv") for e in config["part_b"]["single_step"]["show_epochs"]]


def sample_settings(config: dict, model: str) -> list[tuple[int, float | None]]:
    """(epoch, gamma) of every sample grid of a generative model: every shown epoch at the model's
    gamma (None: unguided), plus the guidance sweep at the final epoch."""
    m = recipes.model_settings(config, model)
    if "guidance" not in m:
        return [(e, None) for e in m["show_epochs"]]
    pairs = {(e, m["guidance"]) for e in m["show_epochs"]} | {(m["epochs"], g) for g in m.get("guidance_sweep", [])}
    return sorted(pairs)


def samples_png(model: str, epoch: int, gamma: float | None) -> str:
    return epoch_file(model, epoch, f"samples{cfg_suffix(gamma)}.png")


def sample_files(config: dict, model: str) -> list[str]:
    """Sample grids of a generative model: every shown epoch, plus the guidance sweep at the end."""
    return [samples_png(model, e, g) for e, g in sample_settings(config, model)]


def metrics_files(config: dict, model: str) -> list[str]:
    """One metrics CSV per sample setting of a generative model (the settings of sample_files)."""
    return [epoch_file(model, e, f"metrics{cfg_suffix(g)}.csv") for e, g in sample_settings(config, model)]


def final_files(model: str) -> list[str]:
    """A model's reusable final weights (safetensors) and the JSON of its architecture (rule export_model)."""
    return [model_file(model, "final.safetensors"), model_file(model, "final.json")]


def quality_files(config: dict, model: str) -> dict[str, str]:
    """A generative model's evaluation summary: every setting's metrics in one CSV, quality against
    epoch, and for class-conditioned models accuracy per digit and (with a sweep) the guidance trade-off."""
    out = {"csv": model_file(model, "metrics.csv"), "vs_epoch": model_file(model, "quality_vs_epoch.png")}
    if recipes.is_class_conditioned(config, model):
        out["per_class"] = model_file(model, "per_class_accuracy.png")
        if recipes.model_settings(config, model).get("guidance_sweep"):
            out["tradeoff"] = model_file(model, "guidance_tradeoff.png")
    return out


def part_b_targets(config: dict) -> list[str]:
    """Every file a full Part B run must produce."""
    pb = config["part_b"]
    out = [model_file("single_step", "noising_grid.png"), model_file("single_step", "test_mse.png")]
    for model in recipes.models(config):
        out += [model_file(model, "loss_curve.png"), model_file(model, "losses.csv"), *final_files(model)]
    for e in pb["single_step"]["show_epochs"]:
        out += [epoch_file("single_step", e, name) for name in ("denoised.png", "ood.png", "test_metrics.csv")]
    if "pure_noise" in recipes.models(config):
        out += [epoch_file("pure_noise", e, name) for e in pb["pure_noise"]["show_epochs"] for name in ("denoised.png", "mse_to_mean.csv")]
    for model in recipes.generative_models(config):
        out += sample_files(config, model) + [model_file(model, "sampling.gif")]
    out += [part_b_file("step_comparison.png"), part_b_file("step_comparison.csv")]
    return out


def evaluation_targets(config: dict) -> list[str]:
    """Every file of the sample evaluation: the classifier, the real-data reference, and per
    generative model its metrics CSVs, the combined table and the quality figures."""
    out = [CLASSIFIER_CSV, REFERENCE]
    for model in recipes.generative_models(config):
        out += metrics_files(config, model) + list(quality_files(config, model).values())
    return out


# ---------------------------------------------------------------- Part A


def part_a_section(config: dict, model: str) -> dict:
    """The inputs and prompts of the chosen Part A model: part_a.mnist, or part_a.deepfloyd (deepfloyd, tiny)."""
    return config["part_a"]["mnist" if model == "mnist" else "deepfloyd"]


def part_a_gammas(config: dict) -> list[float]:
    """The guidance scales of the 1.6 sample figures: the course gamma and the sweep."""
    pa = config["part_a"]
    return sorted({pa["cfg_scale"], *pa["cfg_sweep"]})


def part_a_file(name: str) -> str:
    return f"{PART_A}/{name}"


def part_a_indexed(kind: str, index: int) -> str:
    """results/part_a/<kind>/<NN>.png: text_edit, inpaint, anagram, hybrid."""
    return f"{PART_A}/{kind}/{index:02d}.png"


def deepfloyd_manifest(model: str) -> str:
    return f"resources/deepfloyd/{model}_manifest.json"


def prompt_embeds(model: str) -> str:
    return f"resources/deepfloyd/{model}_prompt_embeds.pt"


def part_a_targets(config: dict, model: str = "mnist") -> list[str]:
    """Every Part A file; the same names serve every Part A model (DeepFloyd adds section 0)."""
    pa, m = config["part_a"], part_a_section(config, model)
    out = [part_a_file(n) for n in ("noising.png", "denoise_metrics.csv", "iterative.png", "iterative_metrics.csv", "samples.png")]
    out += [part_a_file(f"samples{cfg_suffix(g)}.png") for g in part_a_gammas(config)]
    out += [part_a_file(f"sdedit/{name}.png") for name in m["sdedit_images"]]
    out += [part_a_indexed("text_edit", i) for i in range(len(m["text_edits"]))]
    out += [part_a_indexed("inpaint", i) for i in range(len(m["inpaint"]))]
    out += [part_a_indexed("anagram", i) for i in range(len(m["anagrams"]))]
    out += [part_a_indexed("hybrid", i) for i in range(len(m["hybrids"]))]
    if model != "mnist":
        out += [part_a_file(f"setup/steps_{n:03d}.png") for n in m["num_inference_steps"]]
        out.append(part_a_file(f"samples_prompts{cfg_suffix(pa['cfg_scale'])}.png"))  # extra: sample_prompts at the course gamma
    else:  # the evaluation classifier reads the 1.5 samples and the digit illusions
        out.append(READINGS)
    return out


def illusion_tensors(config: dict, model: str) -> list[str]:
    m = part_a_section(config, model)
    return [f"{PART_A}/{kind}/{i:02d}.pt" for kind, key in (("anagram", "anagrams"), ("hybrid", "hybrids")) for i in range(len(m[key]))]


def figure_files(config: dict, part_a_model: str) -> list[str]:
    """The image files a reader looks at: every Part B and Part A figure and the evaluation plots."""
    files = part_b_targets(config) + part_a_targets(config, part_a_model) + evaluation_targets(config)
    return [f for f in files if f.endswith((".png", ".gif"))]


def report_targets() -> list[str]:
    return [QUALITY_GATES, REPORT]


def all_targets(config: dict, part_a_model: str) -> list[str]:
    return part_b_targets(config) + evaluation_targets(config) + part_a_targets(config, part_a_model) + report_targets()


# ---------------------------------------------------------------- benchmark files

# every rule's benchmark file (wall time, memory, CPU time per job); the report tables them
BENCHMARKS = {
    "download_mnist": "benchmarks/data/download_mnist.tsv",
    "train_classifier": "benchmarks/evaluation/train_classifier.tsv",
    "reference_metrics": "benchmarks/evaluation/reference_metrics.tsv",
    "sample_metrics": "benchmarks/part_b/{gen_model}/epoch_{epoch}/sample_metrics{cfg}.tsv",
    "quality_figures": "benchmarks/evaluation/quality_figures.tsv",
    "fetch_deepfloyd": "benchmarks/part_a/fetch_deepfloyd.tsv",
    "build_tiny_deepfloyd": "benchmarks/part_a/build_tiny_deepfloyd.tsv",
    "embed_prompts": "benchmarks/part_a/{df_model}_embed_prompts.tsv",
    "part_a_setup": "benchmarks/part_a/setup/steps_{steps}.tsv",
    "part_a_noising": "benchmarks/part_a/noising.tsv",
    "part_a_iterative": "benchmarks/part_a/iterative.tsv",
    "part_a_sample": "benchmarks/part_a/samples{cfg}.tsv",
    "part_a_sdedit": "benchmarks/part_a/sdedit/{image}.tsv",
    "part_a_text_edit": "benchmarks/part_a/text_edit/{index}.tsv",
    "part_a_inpaint": "benchmarks/part_a/inpaint/{index}.tsv",
    "part_a_illusion": "benchmarks/part_a/{kind}/{index}.tsv",
    "part_a_readings": "benchmarks/part_a/readings.tsv",
    "noising_grid": "benchmarks/part_b/single_step/noising_grid.tsv",
    "denoise_examples": "benchmarks/part_b/single_step/epoch_{epoch}/denoise_examples.tsv",
    "ood_test": "benchmarks/part_b/single_step/epoch_{epoch}/ood_test.tsv",
    "test_metrics": "benchmarks/part_b/single_step/epoch_{epoch}/test_metrics.tsv",
    "plot_test_metrics": "benchmarks/part_b/single_step/plot_test_metrics.tsv",
    "pure_noise_examples": "benchmarks/part_b/pure_noise/epoch_{epoch}/pure_noise_examples.tsv",
    "sample_model": "benchmarks/part_b/{gen_model}/epoch_{epoch}/sample{cfg}.tsv",
    "sampling_gif": "benchmarks/part_b/{gen_model}/sampling_gif.tsv",
    "step_comparison": "benchmarks/part_b/step_comparison.tsv",
    "loss_curve": "benchmarks/part_b/{model}/loss_curve.tsv",
    "render_report": "benchmarks/report/render_report.tsv",
    "quality_gates": "benchmarks/evaluation/quality_gates.tsv",
    "init_model": "benchmarks/part_b/{model}/init_model.tsv",
    "train_epoch": "benchmarks/part_b/{model}/train_epoch_{epoch}.tsv",
    "export_model": "benchmarks/part_b/{model}/export_model.tsv",
}


def _bench(rule: str, **wildcards) -> str:
    return BENCHMARKS[rule].format(**wildcards)


def benchmark_files(config: dict, part_a_model: str) -> list[str]:
    """The benchmark file of every job a full run schedules before the report (render_report's
    own aside), sorted."""
    pb = config["part_b"]
    out = [_bench(r) for r in ("download_mnist", "train_classifier", "reference_metrics", "quality_figures", "quality_gates",
                               "noising_grid", "plot_test_metrics", "step_comparison")]
    for model in recipes.models(config):
        epochs = recipes.model_settings(config, model)["epochs"]
        out += [_bench("init_model", model=model), _bench("export_model", model=model), _bench("loss_curve", model=model)]
        out += [_bench("train_epoch", model=model, epoch=f"{e:03d}") for e in range(1, epochs + 1)]
    for e in pb["single_step"]["show_epochs"]:
        out += [_bench(r, epoch=f"{e:03d}") for r in ("denoise_examples", "ood_test", "test_metrics")]
    if "pure_noise" in recipes.models(config):
        out += [_bench("pure_noise_examples", epoch=f"{e:03d}") for e in pb["pure_noise"]["show_epochs"]]
    for model in recipes.generative_models(config):
        out.append(_bench("sampling_gif", gen_model=model))
        for e, g in sample_settings(config, model):
            out += [_bench(r, gen_model=model, epoch=f"{e:03d}", cfg=cfg_suffix(g)) for r in ("sample_model", "sample_metrics")]
    out += _part_a_benchmarks(config, part_a_model)
    return sorted(set(out))


def _part_a_benchmarks(config: dict, model: str) -> list[str]:
    m = part_a_section(config, model)
    out = [_bench("part_a_noising"), _bench("part_a_iterative")]
    for f in part_a_targets(config, model):
        name = f.removeprefix(PART_A + "/")
        if name.startswith("samples") and name.endswith(".png"):
            out.append(_bench("part_a_sample", cfg=name.removeprefix("samples").removesuffix(".png")))
    out += [_bench("part_a_sdedit", image=name) for name in m["sdedit_images"]]
    out += [_bench("part_a_text_edit", index=f"{i:02d}") for i in range(len(m["text_edits"]))]
    out += [_bench("part_a_inpaint", index=f"{i:02d}") for i in range(len(m["inpaint"]))]
    out += [_bench("part_a_illusion", kind=k, index=f"{i:02d}") for k, key in (("anagram", "anagrams"), ("hybrid", "hybrids")) for i in range(len(m[key]))]
    if model == "mnist":
        out.append(_bench("part_a_readings"))
    else:
        out += [_bench("fetch_deepfloyd" if model == "deepfloyd" else "build_tiny_deepfloyd"), _bench("embed_prompts", df_model=model)]
        out += [_bench("part_a_setup", steps=f"{n:03d}") for n in m["num_inference_steps"]]
    return out


# ---------------------------------------------------------------- benchmark files as job kinds


def job_kind(job: str) -> str:
    """A benchmark path (under benchmarks/, without .tsv) with its wildcard values blanked:
    train_epoch_001 and _002 of every model count as one kind, as do every model's sample{cfg}
    and every Part A image."""
    kind = re.sub(r"^part_b/(ddpm|flow)/[a-z_]+/", "part_b/<model>/", job)
    kind = re.sub(r"^part_b/(single_step|pure_noise)/", "part_b/<model>/", kind)
    kind = re.sub(r"epoch_\d+/", "", kind)
    kind = re.sub(r"_\d{3}$", "", kind)
    kind = re.sub(r"_cfg[\d.]+$", "", kind)
    kind = re.sub(r"/(anagram|hybrid)/\d+$", "/illusion", kind)
    kind = re.sub(r"/\d+$", "", kind)
    kind = re.sub(r"^part_a/sdedit/.*$", "part_a/sdedit", kind)
    kind = re.sub(r"^part_a/(samples)(_cfg[\d.]+)?$", r"part_a/\1", kind)
    return kind
