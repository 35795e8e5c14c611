"""The context of the static HTML report, built from a render_report job's inputs and params.

Every file read here is an input of the job (figures, tables, the jobs' benchmark files, the
device each model was trained on); their names come from fundiff.paths.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import gates, paths, recipes
from .report import benchmark_table, html_table, provenance
from .timesteps import course_timesteps, scaled_timesteps


def csv_table(path, **kw):
    return html_table(pd.read_csv(path), **kw)


def illusion_verdicts(frame) -> dict:
    """Per illusion kind: how many were read as intended in every view the classifier judged
    (anagrams: both orientations; hybrids: up close and from afar), and which views missed."""
    judged = frame[frame["kind"].isin(["anagram", "hybrid"]) & frame["intended"].notna()]
    out = {}
    for kind, rows in judged.groupby("kind"):
        hit = rows["hit"].astype(str).eq("True")
        per = hit.groupby(rows["index"]).all()
        missed = [f"{int(r['index'])} {r['view']} (read {int(r['predicted'])})" for _, r in rows[~hit].iterrows()]
        out[kind] = {"ok": int(per.sum()), "total": int(per.shape[0]), "views_ok": int(hit.sum()), "views": int(rows.shape[0]), "missed": missed}
    return out


def readings_beside(frame) -> dict:
    """What the classifier reads, in words, per figure: "sample" (1.5) and "anagram/00", "hybrid/01", ..."""
    out = {}
    for (kind, index), rows in frame.groupby(["kind", "index"], sort=False):
        words = []
        for _, r in rows.iterrows():
            seen = f"{int(r['predicted'])} (p {r['p_predicted']:.2f})"
            if pd.isna(r["intended"]) or r["intended"] == "":
                words.append(seen)
            elif kind == "sample":  # a 1.5 sample of a drawn digit: the gate reads any digit, so no verdict
                words.append(f"“{r['prompt']}” {seen}")
            else:
                mark = "as intended" if str(r["hit"]) == "True" else f"intended {int(r['intended'])}, p {r['p_intended']:.2f}"
                words.append(f"{r['view']}: {seen}, {mark}")
        key = "sample" if kind == "sample" else f"{kind}/{int(index):02d}"
        out.setdefault(key, []).extend(words)
    return out


QUALITY_COLUMNS = {"epoch": "epoch", "guidance": "γ", "num_samples": "samples", "accuracy": "accuracy", "mean_confidence": "mean confidence", "confident_fraction": "read with p ≥ 0.9", "diversity": "diversity", "class_entropy_bits": "class entropy (bits)", "frechet_distance": "Frechet distance"}


def quality_table(frame):
    """The evaluation metrics in display form (per-class columns left to the figures and CSVs)."""
    shown = frame[[c for c in QUALITY_COLUMNS if c in frame and frame[c].notna().any()]]
    return shown.rename(columns=QUALITY_COLUMNS)


def quality_gates(path):
    """The gate table (results/quality_gates.csv) in display form, with the verdict in one line."""
    frame = pd.read_csv(path)
    shown = frame.assign(value=[f"{v:.4g}" for v in frame.value], real=["" if pd.isna(v) else f"{v:.4g}" for v in frame.real],
                         bar=["" if pd.isna(b) else f"{o} {b:.4g}" for o, b in zip(frame.op, frame.bar)])
    rows = [
        {**r, "css": {"PASS": "pass", "FAIL": "fail"}.get(r["status"], "reported")}
        for r in shown.drop(columns=["op"]).fillna("").to_dict("records")
    ]
    failed = int((frame.status == "FAIL").sum())
    return {"rows": rows, "summary": gates.summary(frame), "failed": failed}


def input_kind(spec: dict) -> str:
    """photo (1.7), or web / drawn (1.7.1): a DeepFloyd input says so; an MNIST file is a drawing."""
    return "drawn" if "file" in spec else spec.get("kind", "photo")


def weights_used(manifests) -> list[str]:
    """'repo @ revision (hub or tiny)' for each DeepFloyd stage that ran Part A."""
    if not manifests:
        return []
    man = json.loads(Path(manifests[0]).read_text())
    return [f"{repo} @ {man['revisions'][role][:12]} ({man['source']})" for role, repo in man["repos"].items()]


def quality(config: dict, asset, model: str) -> dict:
    """Measured sample quality of one generative model: its metrics table and figures."""
    m = recipes.model_settings(config, model)
    table = pd.read_csv(paths.model_file(model, "metrics.csv"))
    guided = recipes.is_class_conditioned(config, model)
    return {
        "num_samples": int(table.num_samples.iloc[0]),
        "table": html_table(quality_table(table)),
        "vs_epoch": asset(paths.model_file(model, "quality_vs_epoch.png")),
        "per_class": asset(paths.model_file(model, "per_class_accuracy.png")) if guided else None,
        "tradeoff": asset(paths.model_file(model, "guidance_tradeoff.png")) if guided and m.get("guidance_sweep") else None,
    }


def final_quality(config: dict, model: str) -> pd.Series:
    """The metrics row of the last evaluated epoch (the final one unless show_epochs leaves it out)
    at the model's own guidance."""
    m = recipes.model_settings(config, model)
    rows = paths.at_gamma(pd.read_csv(paths.model_file(model, "metrics.csv")), m.get("guidance"))
    return rows.sort_values("epoch").iloc[-1]


def glance(config: dict, benchmarks: list[str]) -> dict:
    """Results at a glance: final loss per model, the denoiser's test MSE, the final samples' scores."""
    ss = config["part_b"]["single_step"]
    last = max(ss["show_epochs"])
    tm = pd.read_csv(paths.epoch_file("single_step", last, "test_metrics.csv"))
    tm = tm[(tm.image == "denoised") & ((tm.sigma - ss["sigma"]).abs() < 1e-9)]
    rows = []
    for model in recipes.models(config):
        losses = pd.read_csv(paths.model_file(model, "losses.csv"))
        row = {"model": model, "epochs": int(losses.epoch.iloc[-1]), "final training loss (epoch mean)": float(losses.mean_loss.iloc[-1])}
        if model == "single_step" and len(tm):
            row[f"test MSE at σ = {ss['sigma']:g} (epoch {last})"] = float(tm.mse.iloc[0])
        if "/" in model:
            q = final_quality(config, model)
            row.update({"scored after epoch": int(q.epoch), "γ": q.guidance, "classifier accuracy": q.accuracy, "read with p ≥ 0.9": q.confident_fraction, "class entropy (bits)": q.class_entropy_bits, "Frechet distance": q.frechet_distance, "samples scored": int(q.num_samples)})
        rows.append(row)
    clf = pd.read_csv(paths.CLASSIFIER_CSV).iloc[0].to_dict()
    bench = paths.BENCHMARKS["train_classifier"]  # the wall time stays out of results/ (byte-identical reruns)
    clf["seconds"] = float(pd.read_csv(bench, sep="\t")["s"].iloc[0]) if bench in benchmarks else None
    ref = pd.read_csv(paths.REFERENCE)
    frame = pd.DataFrame(rows)
    for col in ("scored after epoch", "samples scored"):  # 1000, not 1e+03; blank, not <NA>
        if col in frame:
            frame[col] = [None if pd.isna(v) else int(v) for v in frame[col]]
    return {
        "table": html_table(frame),
        "classifier": clf,
        "reference": html_table(quality_table(ref).drop(columns=["epoch", "γ"], errors="ignore")),
        "reference_row": ref.iloc[0].to_dict(),
    }


def generative(config: dict, asset, model: str) -> dict:
    """Figures of one DDPM or flow model: loss, per-epoch samples, guidance sweep, animation."""
    m = recipes.model_settings(config, model)
    gamma = m.get("guidance")
    return {
        "id": model,
        "settings": m,
        "recipe": recipes.recipe(config, model),
        "sample_steps": recipes.sampling_steps(config, model),
        "loss": asset(paths.model_file(model, "loss_curve.png")),
        "losses": csv_table(paths.model_file(model, "losses.csv")),
        "samples": [(e, asset(paths.samples_png(model, e, gamma))) for e in m["show_epochs"]],
        "sweep": [(g, asset(paths.samples_png(model, m["epochs"], g))) for g in m.get("guidance_sweep", [])],
        "gif": asset(paths.model_file(model, "sampling.gif")),
        "quality": quality(config, asset, model),
    }


def part_a_context(config: dict, asset, model: str, reason: str, inputs) -> dict:
    """Part A's figures and tables on the chosen model."""
    pa, pb = config["part_a"], config["part_b"]
    pam = paths.part_a_section(config, model)
    is_mnist = model == "mnist"
    part_a = {
        "model": model,
        "reason": reason,
        "timesteps": scaled_timesteps(pa["timesteps"]["start"], pa["timesteps"]["stride"], pb["ddpm"]["num_steps"]) if is_mnist else course_timesteps(pa["timesteps"]["start"], pa["timesteps"]["stride"]),
        "setup": [] if is_mnist else [(n, asset(paths.part_a_file(f"setup/steps_{n:03d}.png"))) for n in pam["num_inference_steps"]],
        "generic_prompt": pam.get("generic_prompt", "") or "(empty: unconditional)",
        "drawn_digits": is_mnist and pam["noise_sample_prompts"] == "drawn_digits",
        "upsampled": not is_mnist and pam.get("upsample", False),
        "noising": asset(paths.part_a_file("noising.png")),
        "noising_table": csv_table(paths.part_a_file("denoise_metrics.csv")),
        "iterative": asset(paths.part_a_file("iterative.png")),
        "iterative_table": csv_table(paths.part_a_file("iterative_metrics.csv")),
        "samples": asset(paths.part_a_file("samples.png")),
        "cfg": [(g, asset(paths.part_a_file(f"samples{paths.cfg_suffix(g)}.png"))) for g in paths.part_a_gammas(config)],
        "sdedit": [(name, asset(paths.part_a_file(f"sdedit/{name}.png")), input_kind(pam["images"][name])) for name in pam["sdedit_images"]],
        "text_edits": [(e, asset(paths.part_a_indexed("text_edit", i))) for i, e in enumerate(pam["text_edits"])],
        "inpaint": [(e, asset(paths.part_a_indexed("inpaint", i))) for i, e in enumerate(pam["inpaint"])],
        "anagrams": [(e, asset(paths.part_a_indexed("anagram", i))) for i, e in enumerate(pam["anagrams"])],
        "anagram_view": pam["anagram_view"],  # the schema fills in "flip"
        "hybrids": [(e, asset(paths.part_a_indexed("hybrid", i))) for i, e in enumerate(pam["hybrids"])],
        "weights": weights_used(inputs.deepfloyd),
        "readings": None,
        "verdicts": None,
        "read": {},
        "hybrid_blur": None,
        "variance": pam.get("sample_variance", "beta"),
        "sample_prompts": list(pam["sample_prompts"]),
        "far_sigma": pam.get("hybrid_far_sigma") if is_mnist else None,
        "extra_prompts": [] if is_mnist else list(pam["sample_prompts"]),
        "extra": None if is_mnist else asset(paths.part_a_file(f"samples_prompts{paths.cfg_suffix(pa['cfg_scale'])}.png")),
    }
    if paths.READINGS in inputs.figures:
        readings = pd.read_csv(paths.READINGS)
        part_a.update(readings=html_table(readings), verdicts=illusion_verdicts(readings), read=readings_beside(readings))
    if is_mnist:
        from .part_a import scale_kernel

        split = pam.get("hybrid_blur")
        part_a["hybrid_blur"] = (split["kernel_size"], split["sigma"]) if split else scale_kernel(pa["hybrid_blur"]["kernel_size"], pa["hybrid_blur"]["sigma"])
    return part_a


def build_context(inputs, params, asset, repo: Path) -> dict:
    """The template context of a render_report job: `inputs` and `params` are the job's
    (snakemake.input, snakemake.params), `asset` copies a file beside the report."""
    config = params.config
    pb = config["part_b"]
    ss = pb["single_step"]
    models = recipes.models(config)
    metrics = pd.concat([pd.read_csv(paths.epoch_file("single_step", e, "test_metrics.csv")) for e in ss["show_epochs"]])
    wide = metrics.pivot_table(index=["epoch", "sigma", "num_images"], columns="image", values=["mse", "psnr_db", "ssim"]).reset_index()
    wide.columns = ["epoch", "σ", "test digits", "MSE denoised", "MSE noisy", "PSNR denoised (dB)", "PSNR noisy (dB)", "SSIM denoised", "SSIM noisy"]
    context = {
        "cfg": config,
        "fmt_gamma": paths.fmt_gamma,
        "part_a": part_a_context(config, asset, params.part_a_model, params.part_a_reason, inputs),
        "single_step": {
            "noising": asset(paths.model_file("single_step", "noising_grid.png")),
            "loss": asset(paths.model_file("single_step", "loss_curve.png")),
            "losses": csv_table(paths.model_file("single_step", "losses.csv")),
            "denoised": [(e, asset(paths.epoch_file("single_step", e, "denoised.png"))) for e in ss["show_epochs"]],
            "ood": [(e, asset(paths.epoch_file("single_step", e, "ood.png"))) for e in ss["show_epochs"]],
            "mse_plot": asset(paths.model_file("single_step", "test_mse.png")),
            "metrics": html_table(wide),
            "num_test": int(metrics.num_images.max()),
        },
        "pure_noise": None,
        "ddpm": [generative(config, asset, m) for m in models if m.startswith("ddpm/")],
        "flow": [generative(config, asset, m) for m in models if m.startswith("flow/")],
        "steps": {"png": asset(paths.part_b_file("step_comparison.png")), "table": csv_table(paths.part_b_file("step_comparison.csv"))},
        "glance": glance(config, list(inputs.benchmarks)),
        "gates": quality_gates(inputs.gates),
        "timings": html_table(benchmark_table(inputs.benchmarks), float_format="{:.1f}"),
        "prov": provenance(config, repo),
    }
    # where the models were trained, as each model's export job recorded it
    context["prov"]["devices"] = sorted({Path(f).read_text().strip() for f in inputs.devices})
    if "pure_noise" in models:
        pn = pb["pure_noise"]
        context["pure_noise"] = {
            "settings": pn,
            "loss": asset(paths.model_file("pure_noise", "loss_curve.png")),
            "examples": [(e, asset(paths.epoch_file("pure_noise", e, "denoised.png"))) for e in pn["show_epochs"]],
            "table": html_table(pd.concat([pd.read_csv(paths.epoch_file("pure_noise", e, "mse_to_mean.csv")) for e in pn["show_epochs"]])),
        }
    return context
