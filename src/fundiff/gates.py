"""Quality gates: did a run reproduce the course? Each gate is a measured value against a bar.

The bars live in the config (`quality_gates`); the values come from the files the evaluation
wrote. A gate whose bar is null is reported without a verdict (shown as "reported"). Beside
each sample-set value stands the same figure for real MNIST test digits at the same count
(results/evaluation/reference_metrics.csv, evaluation.num_samples digits): column `real`.

    single-step denoiser   test MSE at the training sigma, last shown epoch          <= single_step_mse
    time-conditioned       confident fraction: share of samples the classifier reads
                           with probability >= 0.9 (evaluate.CONFIDENT)              >= time_confident_fraction
                           Frechet distance / the real digits' Frechet distance      <= max_frechet_ratio
                           class entropy of the samples (uniform: log2 10 bits)      >= time_entropy_bits
                           mean top-class probability                                >= time_confidence
    class-conditioned      accuracy of the samples at the model's gamma              >= class_accuracy
                           confident fraction at the model's gamma                   >= class_confident_fraction
                           lowest per-digit accuracy                                 >= min_class_accuracy
                           Frechet distance / the real digits' (reported)
    Part A, MNIST model    1.5 samples read with probability >= 0.9 (any digit)      >= part_a_confident_fraction
                           hybrids seen as intended both ways (up close, from afar)  >= part_a_hybrids
                           anagrams read as intended both ways                       >= part_a_anagrams
    figures                every figure is a readable image that is not blank        all of them

The confident fraction and the Frechet ratio are what fail a set of scribbles: blurred blobs and
noise can reach a mean confidence of 0.7 and spread over all ten classes, but few of them are
read with probability 0.9, and their features sit far from real digits'.

Kept free of torch and Snakemake; pandas and PIL only.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from . import paths, recipes

CONFIDENT = 0.9  # evaluate.CONFIDENT (kept free of torch here); a test checks that the two agree

COLUMNS = ["gate", "model", "setting", "value", "real", "op", "bar", "status", "note"]
DEFAULTS = {
    "single_step_mse": 0.010,
    "time_confident_fraction": 0.80,
    "max_frechet_ratio": 3.0,
    "time_entropy_bits": 3.2,
    "time_confidence": None,
    "class_accuracy": 0.97,
    "class_confident_fraction": 0.90,
    "min_class_accuracy": None,
    "part_a_confident_fraction": 0.8,
    "part_a_hybrids": 0.66,
    "part_a_anagrams": 1.0,
}
READINGS = "part_a/readings.csv"  # Part A on the MNIST model: the classifier's reading of samples and illusions


def _row(gate: str, model: str, setting: str, value: float, op: str, bar, note: str = "", real: float | None = None) -> dict:
    if bar is None:
        status = "reported"
    elif value is None or (isinstance(value, float) and math.isnan(value)):
        status = "FAIL"
        note = (note + "; " if note else "") + "no value measured"
    else:
        status = "PASS" if (value <= bar if op == "<=" else value >= bar) else "FAIL"
    return {"gate": gate, "model": model, "setting": setting, "value": value, "real": real, "op": op, "bar": bar, "status": status, "note": note}


def final_row(metrics: pd.DataFrame, guidance: float | None) -> pd.Series:
    """The row of the last evaluated epoch at `guidance` (None: the unguided, time-conditioned rows)."""
    rows = paths.at_gamma(metrics, guidance)
    if rows.empty:
        raise ValueError(f"no evaluated setting at guidance {guidance}")
    return rows.sort_values("epoch").iloc[-1]


def image_ok(path: str | Path) -> tuple[bool, str]:
    """(ok, why): the file opens as an image (every frame of a GIF is read) and is not one flat colour."""
    import numpy as np
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            frames = [np.asarray(f.convert("L"), dtype=np.float32) for f in ImageSequence.Iterator(im)]
    except (OSError, UnidentifiedImageError) as err:
        return False, f"{path}: cannot be read ({err})"
    if not frames:
        return False, f"{path}: no frames"
    if max(float(f.std()) for f in frames) == 0.0:
        return False, f"{path}: every pixel has the same value"
    return True, ""


def sample_rows(model: str, setting: str, q, ref, bars: dict, conditional: bool) -> list[dict]:
    """The gates of one sample set: `q` its metrics row (evaluate.sample_metrics), `ref` the real
    test digits' row at the same count (evaluate.reference_row), `bars` the quality_gates;
    `conditional` for a class-conditioned model's set (at its gamma)."""
    bars = {**DEFAULTS, **bars}
    real = f"{int(ref.num_samples)} real test digits"
    confident = _row("read with p >= 0.9", model, setting, float(q.confident_fraction), ">=",
                     bars["class_confident_fraction" if conditional else "time_confident_fraction"], f"real: {real}", float(ref.confident_fraction))
    ratio = _row("Frechet distance / real digits'", model, setting, float(q.frechet_distance) / float(ref.frechet_distance), "<=",
                 None if conditional else bars["max_frechet_ratio"], f"Frechet distance {q.frechet_distance:.3g}; {real}: {ref.frechet_distance:.3g}", 1.0)
    if not conditional:
        return [
            confident,
            ratio,
            _row("class entropy (bits)", model, setting, float(q.class_entropy_bits), ">=", bars["time_entropy_bits"], f"uniform over 10 digits: {math.log2(10):.3f}", float(ref.class_entropy_bits)),
            _row("mean confidence", model, setting, float(q.mean_confidence), ">=", bars["time_confidence"], f"real: {real}", float(ref.mean_confidence)),
        ]
    per_class = {k: float(q[f"acc_{k}"]) for k in range(10)}
    worst = min(per_class, key=per_class.get)
    listed = " ".join(f"{k}:{v:.2f}" for k, v in per_class.items())
    ref_worst = min(float(ref[f"acc_{k}"]) for k in range(10))
    return [
        _row("accuracy", model, setting, float(q.accuracy), ">=", bars["class_accuracy"], f"real: {real}", float(ref.accuracy)),
        confident,
        _row("lowest per-digit accuracy", model, setting, per_class[worst], ">=", bars["min_class_accuracy"], f"digit {worst}; per digit {listed}", ref_worst),
        ratio,
    ]


def part_a_rows(readings: pd.DataFrame, bars: dict, real_confident: float) -> list[dict]:
    """Part A's gates on the MNIST model from its readings (evaluate.part_a_readings): the 1.5
    samples read confidently as some digit, and the share of hybrids and of anagrams whose every
    view reads as intended."""
    rows = []
    samples = readings[readings.kind == "sample"]
    if len(samples):
        n = len(samples)
        sure = int((samples.p_predicted >= CONFIDENT).sum())
        prompts = samples.prompt.astype(object).fillna("").astype(str)  # a CSV's empty prompts read back as float NaN
        read = " ".join((f"{q}: " if q else "") + f"{int(d)} ({p:.2f})" for q, d, p in zip(prompts, samples.predicted, samples.p_predicted))
        setting = f"{n} samples from noise, " + ("a digit drawn for each, no guidance" if prompts.ne("").all() else "no prompt")
        rows.append(_row("1.5 samples read with p >= 0.9", "part_a/mnist", setting, sure / n, ">=",
                         bars["part_a_confident_fraction"], f"{sure} of {n}; read as {read}", real_confident))
    for kind, key, what in (("hybrid", "part_a_hybrids", "hybrids seen as intended both ways"), ("anagram", "part_a_anagrams", "anagrams read as intended both ways")):
        views = readings[readings.kind == kind]
        if views.empty:
            continue
        both = views.groupby("index").hit.apply(lambda h: bool(h.astype(str).eq("True").all()))
        pairs = " ".join(f"{i}:{'yes' if ok else 'no'}" for i, ok in both.items())
        rows.append(_row(what, "part_a/mnist", f"{len(both)} pairs", float(both.mean()), ">=", bars[key], f"{int(both.sum())} of {len(both)}; {pairs}"))
    return rows


def evaluate(config: dict, results: str | Path = "results", figures: list[str] | None = None, part_a_model: str | None = None) -> pd.DataFrame:
    """Every gate of the config's run, as a frame with COLUMNS (one row per gate); Part A's gates
    when `part_a_model` is "mnist" (its readings file is then read)."""
    bars = {**DEFAULTS, **(config.get("quality_gates") or {})}
    results = Path(results)
    pb = config["part_b"]
    rows = []

    ss = pb["single_step"]
    last = max(ss["show_epochs"])
    tm = pd.read_csv(results / "part_b" / "single_step" / f"epoch_{last:03d}" / "test_metrics.csv")
    hit = tm[(tm.image == "denoised") & ((tm.sigma - ss["sigma"]).abs() < 1e-9)]
    mse = float(hit.mse.iloc[0]) if len(hit) else float("nan")
    count = int(hit.num_images.iloc[0]) if len(hit) and "num_images" in hit else None
    rows.append(_row("test MSE", "single_step", f"sigma {ss['sigma']:g}, epoch {last}, {count if count is not None else '?'} test digits", mse, "<=", bars["single_step_mse"]))

    ref = pd.read_csv(results / "evaluation" / "reference_metrics.csv").iloc[0]
    for model in recipes.generative_models(config):
        m = recipes.model_settings(config, model)
        metrics = pd.read_csv(results / "part_b" / model / "metrics.csv")
        guidance = m.get("guidance")
        q = final_row(metrics, guidance)
        guide = recipes.autoguide(config, model, int(q.epoch))
        setting = (f"epoch {int(q.epoch)}" + ("" if guidance is None else f", gamma {guidance:g}")
                   + ("" if guide is None else f", autoguided by epoch {guide[0]} (w {guide[1]:g})") + f", {int(q.num_samples)} samples")
        rows += sample_rows(model, setting, q, ref, bars, conditional=guidance is not None)

    if part_a_model == "mnist":
        rows += part_a_rows(pd.read_csv(results / READINGS), bars, float(ref.confident_fraction))

    figures = figures or []
    bad = [why for ok, why in map(image_ok, figures) if not ok]
    rows.append(_row("figures readable and not blank", "all", f"{len(figures)} figures", float(len(figures) - len(bad)), ">=", float(len(figures)), "; ".join(bad[:5])))
    return pd.DataFrame(rows, columns=COLUMNS)


def summary(frame: pd.DataFrame) -> str:
    judged = frame[frame.status != "reported"]
    failed = judged[judged.status == "FAIL"]
    return f"{len(judged) - len(failed)} of {len(judged)} quality gates pass" + (f"; failing: {', '.join(failed.model + ' ' + failed.gate)}" if len(failed) else "")
