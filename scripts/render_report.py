"""Rule render_report: the static HTML writeup of the run under results/report/."""

import json
import shutil
from pathlib import Path

import pandas as pd
import torch

from fundiff import paths, recipes
from fundiff.report import Assets, benchmark_table, html_table, provenance, render
from fundiff.scriptutil import finish, setup

setup(snakemake.log[0])
config = snakemake.params.config
out = Path(snakemake.output[0])
report_dir = out.parent
shutil.rmtree(report_dir / "assets", ignore_errors=True)
asset = Assets(report_dir, Path("results"))
pb = config["part_b"]
root = Path("results/part_b")


def epoch_file(model, e, name):
    return root / model / f"epoch_{e:03d}" / name


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


def quality(model):
    """Measured sample quality of one generative model: its metrics table and figures."""
    m = recipes.model_settings(config, model)
    table = pd.read_csv(root / model / "metrics.csv")
    guided = recipes.is_class_conditioned(config, model)
    return {
        "num_samples": int(table.num_samples.iloc[0]),
        "table": html_table(quality_table(table)),
        "vs_epoch": asset(root / model / "quality_vs_epoch.png"),
        "per_class": asset(root / model / "per_class_accuracy.png") if guided else None,
        "tradeoff": asset(root / model / "guidance_tradeoff.png") if guided and m.get("guidance_sweep") else None,
    }


def final_quality(model):
    """The metrics row of the last evaluated epoch (the final one unless show_epochs leaves it out)
    at the model's own guidance."""
    m = recipes.model_settings(config, model)
    rows = pd.read_csv(root / model / "metrics.csv")
    if "guidance" in m:
        rows = rows[(rows.guidance - m["guidance"]).abs() < 1e-9]
    return rows.sort_values("epoch").iloc[-1]


def glance():
    """Results at a glance: final loss per model, the denoiser's test MSE, the final samples' scores."""
    ss = pb["single_step"]
    last = max(ss["show_epochs"])
    tm = pd.read_csv(epoch_file("single_step", last, "test_metrics.csv"))
    tm = tm[(tm.image == "denoised") & ((tm.sigma - ss["sigma"]).abs() < 1e-9)]
    rows = []
    for model in recipes.models(config):
        losses = pd.read_csv(root / model / "losses.csv")
        row = {"model": model, "epochs": int(losses.epoch.iloc[-1]), "final training loss (epoch mean)": float(losses.mean_loss.iloc[-1])}
        if model == "single_step" and len(tm):
            row[f"test MSE at σ = {ss['sigma']:g} (epoch {last})"] = float(tm.mse.iloc[0])
        if "/" in model:
            q = final_quality(model)
            row.update({"scored after epoch": int(q.epoch), "γ": q.guidance, "classifier accuracy": q.accuracy, "read with p ≥ 0.9": q.confident_fraction, "class entropy (bits)": q.class_entropy_bits, "Frechet distance": q.frechet_distance, "samples scored": int(q.num_samples)})
        rows.append(row)
    clf = pd.read_csv(Path("results/evaluation/classifier.csv")).iloc[0].to_dict()
    bench = Path("benchmarks/evaluation/train_classifier.tsv")  # the wall time stays out of results/ (byte-identical reruns)
    clf["seconds"] = float(pd.read_csv(bench, sep="\t")["s"].iloc[0]) if bench.exists() else None
    ref = pd.read_csv(Path("results/evaluation/reference_metrics.csv"))
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


def quality_gates(path):
    """The gate table (results/quality_gates.csv) in display form, with the verdict in one line."""
    from fundiff import gates

    frame = pd.read_csv(path)
    shown = frame.assign(value=[f"{v:.4g}" for v in frame.value], real=["" if pd.isna(v) else f"{v:.4g}" for v in frame.real],
                         bar=["" if pd.isna(b) else f"{o} {b:.4g}" for o, b in zip(frame.op, frame.bar)])
    rows = [
        {**r, "css": {"PASS": "pass", "FAIL": "fail"}.get(r["status"], "reported")}
        for r in shown.drop(columns=["op"]).fillna("").to_dict("records")
    ]
    failed = int((frame.status == "FAIL").sum())
    return {"rows": rows, "summary": gates.summary(frame), "failed": failed}


def generative(model):
    """Figures of one DDPM or flow model: loss, per-epoch samples, guidance sweep, animation."""
    m = recipes.model_settings(config, model)
    guided = "guidance" in m
    name = lambda g: f"samples_cfg{paths.fmt_gamma(g)}.png" if guided else "samples.png"  # noqa: E731
    return {
        "id": model,
        "settings": m,
        "recipe": recipes.recipe(config, model),
        "loss": asset(root / model / "loss_curve.png"),
        "losses": csv_table(root / model / "losses.csv"),
        "samples": [(e, asset(epoch_file(model, e, name(m.get("guidance"))))) for e in m["show_epochs"]],
        "sweep": [(g, asset(epoch_file(model, m["epochs"], name(g)))) for g in m.get("guidance_sweep", [])],
        "gif": asset(root / model / "sampling.gif"),
        "quality": quality(model),
    }


ss = pb["single_step"]
metrics = pd.concat([pd.read_csv(epoch_file("single_step", e, "test_metrics.csv")) for e in ss["show_epochs"]])
wide = metrics.pivot_table(index=["epoch", "sigma", "num_images"], columns="image", values=["mse", "psnr_db", "ssim"]).reset_index()
wide.columns = ["epoch", "σ", "test digits", "MSE denoised", "MSE noisy", "PSNR denoised (dB)", "PSNR noisy (dB)", "SSIM denoised", "SSIM noisy"]
models = recipes.models(config)
def input_kind(spec: dict) -> str:
    """photo (1.7), or web / drawn (1.7.1): a DeepFloyd input says so; an MNIST file is a drawing."""
    return "drawn" if "file" in spec else spec.get("kind", "photo")


def weights_used(manifests) -> list[str]:
    """'repo @ revision (hub or tiny)' for each DeepFloyd stage that ran Part A."""
    if not manifests:
        return []
    man = json.loads(Path(manifests[0]).read_text())
    return [f"{repo} @ {man['revisions'][role][:12]} ({man['source']})" for role, repo in man["repos"].items()]


pa = config["part_a"]
pam = paths.part_a_section(config, snakemake.params.part_a_model)
is_mnist = snakemake.params.part_a_model == "mnist"
ra = Path("results/part_a")
part_a = {
    "model": snakemake.params.part_a_model,
    "reason": snakemake.params.part_a_reason,
    "timesteps": recipes.scaled_timesteps(pa["timesteps"]["start"], pa["timesteps"]["stride"], pb["ddpm"]["num_steps"]) if is_mnist else list(range(pa["timesteps"]["start"], -1, -pa["timesteps"]["stride"])),
    "setup": [] if is_mnist else [(n, asset(ra / "setup" / f"steps_{n:03d}.png")) for n in pam["num_inference_steps"]],
    "generic_prompt": pam.get("generic_prompt", "") or "(empty: unconditional)",
    "upsampled": not is_mnist and pam.get("upsample", False),
    "noising": asset(ra / "noising.png"),
    "noising_table": csv_table(ra / "denoise_metrics.csv"),
    "iterative": asset(ra / "iterative.png"),
    "iterative_table": csv_table(ra / "iterative_metrics.csv"),
    "samples": asset(ra / "samples.png"),
    "cfg": [(g, asset(ra / f"samples_cfg{paths.fmt_gamma(g)}.png")) for g in sorted({pa["cfg_scale"], *pa["cfg_sweep"]})],
    "sdedit": [(name, asset(ra / "sdedit" / f"{name}.png"), input_kind(pam["images"][name])) for name in pam["sdedit_images"]],
    "text_edits": [(e, asset(ra / "text_edit" / f"{i:02d}.png")) for i, e in enumerate(pam["text_edits"])],
    "inpaint": [(e, asset(ra / "inpaint" / f"{i:02d}.png")) for i, e in enumerate(pam["inpaint"])],
    "anagrams": [(e, asset(ra / "anagram" / f"{i:02d}.png")) for i, e in enumerate(pam["anagrams"])],
    "anagram_view": pam["anagram_view"],  # the schema fills in "flip"
    "hybrids": [(e, asset(ra / "hybrid" / f"{i:02d}.png")) for i, e in enumerate(pam["hybrids"])],
    "weights": weights_used(snakemake.input.deepfloyd),
    "readings": None,
    "verdicts": None,
    "read": {},
    "hybrid_blur": None,
    "variance": pam.get("sample_variance", "beta"),
    "sample_prompts": list(pam["sample_prompts"]),
    "far_sigma": pam.get("hybrid_far_sigma") if is_mnist else None,
    "extra_prompts": [] if is_mnist else list(pam["sample_prompts"]),
    "extra": None if is_mnist else asset(ra / f"samples_prompts_cfg{paths.fmt_gamma(pa['cfg_scale'])}.png"),
}
if "results/part_a/readings.csv" in snakemake.input.figures:
    readings = pd.read_csv(ra / "readings.csv")
    part_a.update(readings=html_table(readings), verdicts=illusion_verdicts(readings), read=readings_beside(readings))
if is_mnist:
    from fundiff.part_a import scale_kernel

    split = pam.get("hybrid_blur")
    part_a["hybrid_blur"] = (split["kernel_size"], split["sigma"]) if split else scale_kernel(pa["hybrid_blur"]["kernel_size"], pa["hybrid_blur"]["sigma"])
context = {
    "cfg": config,
    "fmt_gamma": paths.fmt_gamma,
    "part_a": part_a,
    "single_step": {
        "noising": asset(root / "single_step/noising_grid.png"),
        "loss": asset(root / "single_step/loss_curve.png"),
        "losses": csv_table(root / "single_step/losses.csv"),
        "denoised": [(e, asset(epoch_file("single_step", e, "denoised.png"))) for e in ss["show_epochs"]],
        "ood": [(e, asset(epoch_file("single_step", e, "ood.png"))) for e in ss["show_epochs"]],
        "mse_plot": asset(root / "single_step/test_mse.png"),
        "metrics": html_table(wide),
        "num_test": int(metrics.num_images.max()),
    },
    "pure_noise": None,
    "ddpm": [generative(m) for m in models if m.startswith("ddpm/")],
    "flow": [generative(m) for m in models if m.startswith("flow/")],
    "steps": {"png": asset(root / "step_comparison.png"), "table": csv_table(root / "step_comparison.csv")},
    "glance": glance(),
    "gates": quality_gates(snakemake.input.gates),
    "timings": html_table(benchmark_table(Path("benchmarks")), float_format="{:.1f}"),
    "prov": provenance(config, Path(snakemake.scriptdir).parent),
}
# where the models were trained, as each training job recorded it
context["prov"]["devices"] = sorted({str(torch.load(c, map_location="cpu", weights_only=True).get("runtime", "unknown")) for c in snakemake.input.checkpoints})
if "pure_noise" in models:
    pn = pb["pure_noise"]
    context["pure_noise"] = {
        "settings": pn,
        "loss": asset(root / "pure_noise/loss_curve.png"),
        "examples": [(e, asset(epoch_file("pure_noise", e, "denoised.png"))) for e in pn["show_epochs"]],
        "table": html_table(pd.concat([pd.read_csv(epoch_file("pure_noise", e, "mse_to_mean.csv")) for e in pn["show_epochs"]])),
    }
shutil.copyfile(Path(snakemake.params.template_dir) / "style.css", report_dir / "style.css")
render(snakemake.params.template_dir, "index.html.j2", context, out)
finish()
