"""Quality gates: did a run reproduce the course? Each gate is a measured value against a bar.

The bars live in the config (`quality_gates`); the values come from the files the evaluation
wrote. A gate whose bar is null is reported without a verdict (shown as "reported"), so a
measured number such as the Frechet distance sits beside the others without being judged.

    single-step denoiser   test MSE at the training sigma, last shown epoch          <= single_step_mse
    time-conditioned       class entropy of the samples (uniform: log2 10 bits)     >= time_entropy_bits
                           mean top-class probability (recognisable digits)          >= time_confidence
                           Frechet distance, beside the real-digit reference         <= max_frechet_distance
    class-conditioned      accuracy of the samples at the model's gamma              >= class_accuracy
                           lowest per-digit accuracy                                 >= min_class_accuracy
    figures                every figure is a readable image that is not blank        all of them

Kept free of torch and Snakemake; pandas and PIL only.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from . import recipes

COLUMNS = ["gate", "model", "setting", "value", "op", "bar", "status", "note"]
DEFAULTS = {
    "single_step_mse": 0.010,
    "time_entropy_bits": 3.2,
    "time_confidence": 0.7,
    "max_frechet_distance": None,
    "class_accuracy": 0.97,
    "min_class_accuracy": None,
}


def _row(gate: str, model: str, setting: str, value: float, op: str, bar, note: str = "") -> dict:
    if bar is None:
        status = "reported"
    elif value is None or (isinstance(value, float) and math.isnan(value)):
        status = "FAIL"
        note = (note + "; " if note else "") + "no value measured"
    else:
        status = "PASS" if (value <= bar if op == "<=" else value >= bar) else "FAIL"
    return {"gate": gate, "model": model, "setting": setting, "value": value, "op": op, "bar": bar, "status": status, "note": note}


def final_row(metrics: pd.DataFrame, guidance: float | None) -> pd.Series:
    """The row of the last evaluated epoch at `guidance` (None: the unguided, time-conditioned rows)."""
    rows = metrics if guidance is None else metrics[(metrics.guidance - guidance).abs() < 1e-9]
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


def evaluate(config: dict, results: str | Path = "results", figures: list[str] | None = None) -> pd.DataFrame:
    """Every gate of the config's run, as a frame with COLUMNS (one row per gate)."""
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
        setting = f"epoch {int(q.epoch)}" + ("" if guidance is None else f", gamma {guidance:g}") + f", {int(q.num_samples)} samples"
        if guidance is None:
            rows.append(_row("class entropy (bits)", model, setting, float(q.class_entropy_bits), ">=", bars["time_entropy_bits"], f"uniform over 10 digits: {math.log2(10):.3f}"))
            rows.append(_row("mean confidence", model, setting, float(q.mean_confidence), ">=", bars["time_confidence"], f"real digits: {ref.mean_confidence:.3f}"))
        else:
            rows.append(_row("accuracy", model, setting, float(q.accuracy), ">=", bars["class_accuracy"]))
            per_class = {k: float(q[f"acc_{k}"]) for k in range(10)}
            worst = min(per_class, key=per_class.get)
            listed = " ".join(f"{k}:{v:.2f}" for k, v in per_class.items())
            rows.append(_row("lowest per-digit accuracy", model, setting, per_class[worst], ">=", bars["min_class_accuracy"], f"digit {worst}; per digit {listed}"))
        rows.append(_row("Frechet distance", model, setting, float(q.frechet_distance), "<=", bars["max_frechet_distance"], f"real digits: {ref.frechet_distance:.3g}"))

    figures = figures or []
    bad = [why for ok, why in map(image_ok, figures) if not ok]
    rows.append(_row("figures readable and not blank", "all", f"{len(figures)} figures", float(len(figures) - len(bad)), ">=", float(len(figures)), "; ".join(bad[:5])))
    return pd.DataFrame(rows, columns=COLUMNS)


def summary(frame: pd.DataFrame) -> str:
    judged = frame[frame.status != "reported"]
    failed = judged[judged.status == "FAIL"]
    return f"{len(judged) - len(failed)} of {len(judged)} quality gates pass" + (f"; failing: {', '.join(failed.model + ' ' + failed.gate)}" if len(failed) else "")
