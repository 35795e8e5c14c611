"""Measured sample quality: a small MNIST classifier and the sample metrics computed with it.

The classifier (`MnistClassifier`, trained from scratch by `train_classifier`) reads 28x28 images
in [0, 1] and exposes its penultimate layer through `features(x)`. Every metric below goes
through it:

    class-conditioned samples   accuracy against the intended label, overall and per class
    every sample set            mean confidence of the predicted class; the confident fraction (the
                                share of samples whose predicted class has probability >= 0.9,
                                CONFIDENT: read as a digit without doubt); within-class diversity;
                                histogram of the predicted classes and its entropy in bits (at
                                most log2(10) = 3.32, when every digit is predicted equally often);
                                Frechet distance to the MNIST test split in the classifier's
                                feature space ("FID" on MNIST features; the test split's feature
                                mean and covariance are computed once, by reference_metrics)

Diversity is the mean pairwise L2 distance between the feature vectors of the samples of one
class (the intended class where there is one, else the predicted class), averaged over the
classes with at least two samples. The Frechet distance is biased upward for small sample
sets, so it is only comparable between runs with the same number of samples; every table states
that number. `reference_row` puts real test digits through the same code (the ceiling), and
`check_accuracy` refuses a classifier below the configured floor, since its scores would mislead.
Samples are clamped to [0, 1] before they are classified.
"""

from __future__ import annotations

import logging
import math
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .device import Runtime
from .models import NUM_CLASSES, MnistClassifier

log = logging.getLogger(__name__)

MAX_ENTROPY_BITS = math.log2(NUM_CLASSES)
CONFIDENT = 0.9  # a sample "reads as a digit" when its predicted class has at least this probability


class AccuracyFloorError(RuntimeError):
    pass


def _as_images(x: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 28, 28] or float [N, 1, 28, 28] -> float32 [N, 1, 28, 28] in [0, 1]."""
    if x.dtype == torch.uint8:
        x = x.float().div(255.0)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    return x.float().clamp(0, 1)


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image of [B, 1, H, W] by its own integer offset in [-max_shift, max_shift]^2 (zero fill)."""
    if max_shift <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    off = torch.randint(0, 2 * max_shift + 1, (2, b), generator=generator).to(x.device)
    rows = (off[0][:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (off[1][:, None] + torch.arange(w, device=x.device))[:, None, :]
    return padded[torch.arange(b, device=x.device)[:, None, None], 0, rows, cols].unsqueeze(1)


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, runtime: Runtime, batch: int = 250) -> float:
    probs = classify(model, images, runtime, batch=batch)["probs"]
    return (probs.argmax(1) == labels.cpu()).double().mean().item()


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    seed: int,
    epochs: int,
    batch_size: int,
    lr: float,
    runtime: Runtime,
    width: int = 16,
    num_features: int = 128,
    max_shift: int = 2,
    progress: Callable | None = None,
) -> tuple[MnistClassifier, float]:
    """Train an MnistClassifier on in-memory tensors; return (model in eval mode, test accuracy).

    AdamW with a one-cycle learning-rate schedule peaking at `lr`; every batch is shuffled and
    shifted by up to `max_shift` pixels with a torch.Generator seeded from `seed`, and the weights
    are initialised from `seed` too, so the same inputs give the same classifier on the CPU.
    """
    x = _as_images(images).to(runtime.device)
    y = labels.long().to(runtime.device)
    n = x.shape[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MnistClassifier(width, num_features)
    model = model.to(runtime.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(seed + 1)
    steps_per_epoch = math.ceil(n / batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.25)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator).to(runtime.device)
        starts = range(0, n, batch_size)
        total, count = 0.0, 0
        for start in progress(starts) if progress else starts:
            idx = order[start : start + batch_size]
            xb = random_shift(x[idx], max_shift, generator)
            if runtime.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with runtime.autocast():
                logits = model(xb)
            loss = F.cross_entropy(logits.float(), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * idx.shape[0]
            count += idx.shape[0]
        log.info("classifier epoch %d/%d: mean training loss %.4f", epoch + 1, epochs, total / count)
    model.eval()
    acc = accuracy(model, test_images, test_labels, runtime)
    log.info("classifier test accuracy %.4f on %d images", acc, test_labels.shape[0])
    return model, acc


def check_accuracy(acc: float, floor: float, num_test: int | None = None) -> None:
    """Raise AccuracyFloorError when the classifier is too weak for its metrics to mean anything."""
    if acc < floor:
        on = f" on {num_test} test images" if num_test else ""
        raise AccuracyFloorError(
            f"The evaluation classifier reached a test accuracy of {acc:.4f}{on}, below the floor "
            f"evaluation.min_test_accuracy = {floor}. Sample metrics computed with it would be "
            "misleading, so none are written. Raise evaluation.classifier.epochs (or adjust its lr) "
            "in the config, or check the MNIST data (data.root, data.train_limit); lower the floor "
            "only for toy runs."
        )


def save_classifier(model: MnistClassifier, path, test_accuracy: float, extra: dict | None = None) -> None:
    from .io import save_torch

    state = {"width": model.width, "num_features": model.num_features, "model": {k: v.cpu() for k, v in model.state_dict().items()}, "test_accuracy": test_accuracy, **(extra or {})}
    save_torch(state, path)


def load_classifier(path, runtime: Runtime | None = None, min_test_accuracy: float | None = None) -> MnistClassifier:
    """The classifier saved by save_classifier; with `min_test_accuracy`, its stored test accuracy
    is checked against that floor first (AccuracyFloorError), so a floor raised after training
    cannot be slipped past."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if min_test_accuracy is not None:
        check_accuracy(float(state["test_accuracy"]), min_test_accuracy)
    model = MnistClassifier(state["width"], state["num_features"])
    model.load_state_dict(state["model"])
    model = model.eval()
    if runtime is not None:
        model = model.to(runtime.device)
        if runtime.channels_last:
            model = model.to(memory_format=torch.channels_last)
    return model


# ---------------------------------------------------------------------------- metrics


@torch.no_grad()
def classify(model: MnistClassifier, images: torch.Tensor, runtime: Runtime | None = None, batch: int = 250) -> dict:
    """{"probs": float32 [N, 10], "features": float32 [N, F]} on the CPU, in batches; images clamped to [0, 1]."""
    model = model.eval()
    device = next(model.parameters()).device
    probs, feats = [], []
    for start in range(0, images.shape[0], batch):
        x = _as_images(images[start : start + batch]).to(device)
        if runtime is not None and runtime.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with runtime.autocast() if runtime else torch.autocast(device.type, enabled=False):
            f = model.features(x)
            logits = model.head(f)
        probs.append(logits.float().softmax(1).cpu())
        feats.append(f.float().cpu())
    return {"probs": torch.cat(probs), "features": torch.cat(feats)}


def diversity(features: torch.Tensor, groups: torch.Tensor) -> float:
    """Mean pairwise L2 distance between features of the same group, averaged over groups of >= 2."""
    per_group = []
    for g in groups.unique():
        f = features[groups == g].double()
        k = f.shape[0]
        if k < 2:
            continue
        d = torch.cdist(f, f)
        per_group.append((d.sum() / (k * (k - 1))).item())
    return float(np.mean(per_group)) if per_group else float("nan")


def class_histogram(probs: torch.Tensor) -> np.ndarray:
    """Fraction of the samples predicted as each class."""
    counts = torch.bincount(probs.argmax(1), minlength=NUM_CLASSES).double()
    return (counts / counts.sum()).numpy()


def entropy_bits(fractions: np.ndarray) -> float:
    p = np.asarray(fractions, dtype=np.float64)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: a single class gives 0.0, not -0.0


def confident_fraction(probs: torch.Tensor, threshold: float = CONFIDENT) -> float:
    """The share of images whose predicted class has probability >= `threshold`."""
    return (probs.max(1).values >= threshold).double().mean().item()


def conditional_metrics(probs: torch.Tensor, features: torch.Tensor, labels: torch.Tensor) -> dict:
    """Accuracy against the intended labels (overall and per class), confidence, diversity."""
    labels = labels.cpu().long()
    pred = probs.argmax(1)
    correct = (pred == labels).double()
    out = {
        "accuracy": correct.mean().item(),
        "mean_confidence": probs.max(1).values.double().mean().item(),
        "diversity": diversity(features, labels),
    }
    for k in range(NUM_CLASSES):
        mask = labels == k
        out[f"acc_{k}"] = correct[mask].mean().item() if mask.any() else float("nan")
    return out


def unconditional_metrics(probs: torch.Tensor, features: torch.Tensor) -> dict:
    """Predicted-class histogram and its entropy in bits, confidence, diversity within predicted classes."""
    hist = class_histogram(probs)
    out = {
        "mean_confidence": probs.max(1).values.double().mean().item(),
        "confident_fraction": confident_fraction(probs),
        "diversity": diversity(features, probs.argmax(1)),
        "class_entropy_bits": entropy_bits(hist),
    }
    out.update({f"frac_{k}": float(hist[k]) for k in range(NUM_CLASSES)})
    return out


def feature_stats(features: torch.Tensor) -> dict:
    """Mean and unbiased covariance (float64) of feature vectors [N, F]: one side of a Frechet distance."""
    f = features.double().cpu()
    if f.shape[0] < 2:
        raise ValueError(f"a Frechet distance needs at least 2 images per side, got {f.shape[0]}")
    return {"mean": f.mean(0), "cov": torch.cov(f.T), "count": int(f.shape[0])}


def image_stats(model: MnistClassifier, images: torch.Tensor, runtime: Runtime | None = None) -> dict:
    """feature_stats of the classifier's features of `images`."""
    return feature_stats(classify(model, images, runtime)["features"])


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(m)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_from_stats(a: dict, b: dict) -> float:
    """||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2), the Frechet distance of two Gaussians.

    tr((S_a S_b)^1/2) is taken through the symmetric S_a^1/2 S_b S_a^1/2 (same eigenvalues), whose
    eigenvalues are real; the tiny negative ones of rank-deficient covariances count as 0."""
    root_a = _sqrtm_psd(a["cov"])
    inner = torch.linalg.eigvalsh(root_a @ b["cov"] @ root_a).clamp(min=0).sqrt().sum()
    diff = a["mean"] - b["mean"]
    return float(diff @ diff + a["cov"].trace() + b["cov"].trace() - 2 * inner)


def frechet_distance(model: MnistClassifier, real: torch.Tensor, fake: torch.Tensor, runtime: Runtime | None = None) -> float:
    """Frechet distance between the classifier-feature Gaussians of `real` and `fake` images."""
    return frechet_from_stats(image_stats(model, real, runtime), image_stats(model, fake, runtime))


COLUMNS = (
    ["model", "edition", "epoch", "guidance", "num_samples", "accuracy", "mean_confidence", "confident_fraction", "diversity", "class_entropy_bits", "frechet_distance", "fd_reference_images"]
    + [f"acc_{k}" for k in range(NUM_CLASSES)]
    + [f"frac_{k}" for k in range(NUM_CLASSES)]
)


def sample_metrics(model: MnistClassifier, samples: torch.Tensor, labels: torch.Tensor | None, reference: dict, runtime: Runtime | None = None) -> dict:
    """Every metric of one sample set: conditional ones when `labels` (the intended classes) are
    given, the histogram and entropy always, and the Frechet distance to the real images whose
    feature statistics are `reference` (image_stats). Keys are COLUMNS minus the identifying
    ones (model, edition, epoch, guidance)."""
    samples = _as_images(samples)
    out = classify(model, samples, runtime)
    row = {"num_samples": samples.shape[0], "accuracy": float("nan")}
    row.update({f"acc_{k}": float("nan") for k in range(NUM_CLASSES)})
    row.update(unconditional_metrics(out["probs"], out["features"]))
    if labels is not None:
        row.update(conditional_metrics(out["probs"], out["features"], labels))
    row["frechet_distance"] = frechet_from_stats(reference, feature_stats(out["features"]))
    row["fd_reference_images"] = reference["count"]
    return row


def metrics_frame(rows: list[dict]):
    """A pandas DataFrame of the rows in COLUMNS order (missing entries empty)."""
    import pandas as pd  # not needed by the sampling jobs

    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def reference_row(model: MnistClassifier, images: torch.Tensor, labels: torch.Tensor, num_samples: int, seed: int, runtime: Runtime | None = None) -> dict:
    """The same metrics for real test digits, the ceiling the samples are compared with.

    The test images are split in two halves by a seeded permutation; `num_samples` digits of the
    first half play the samples, num_samples / 10 of every digit (as the class-conditioned sample
    sets have; fewer where the half holds fewer), with their true labels as the intended ones,
    and the second half is the Frechet reference.
    """
    images = _as_images(images)
    perm = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    half = images.shape[0] // 2
    first, rest = perm[:half], perm[half:]
    per_digit = max(1, num_samples // 10)
    pick = torch.cat([first[labels[first] == k][:per_digit] for k in range(10)])
    row = sample_metrics(model, images[pick], labels[pick], image_stats(model, images[rest], runtime), runtime)
    row.update(model="MNIST test digits", edition="real", epoch=float("nan"), guidance=float("nan"))
    return row


def part_a_readings(model: MnistClassifier, samples: torch.Tensor | None, records: list[dict], runtime: Runtime | None = None,
                    sample_prompts: list[str] | None = None) -> list[dict]:
    """The classifier's reading of Part A on the MNIST model: the 1.5 samples and every anagram
    and hybrid view. One row per image read.

    `samples` are the 1.5 samples from noise ([N, 1, 28, 28] in [0, 1]; None: none read), each read
    for whichever digit it shows; `sample_prompts` (None: all "") are their prompts, a digit prompt
    giving the row its intended class (the gate counts confident readings of any digit). `records` are the
    saved illusions ({"kind", "index", "views" from views.illusion_views, "prompts", "view"}):
    an anagram is read upright (intended: prompt 1) and in its second view, flipped or turned
    half round (prompt 2, the record's "view"); a hybrid as it is perceived (views.illusion_views):
    up close, the hybrid itself at full resolution (intended: its high-frequency digit, prompt 2),
    and from afar, the hybrid blurred as a distant eye sees it (its low-frequency digit, prompt 1).
    """
    from .views import HYBRID_CLOSE, HYBRID_FAR, VIEW_NAMES
    from .prompts import prompt_to_class

    rows = []

    def add(kind, index, name, prompt, pr):
        target = prompt_to_class(prompt) if prompt else None
        predicted = int(pr.argmax())
        rows.append({
            "kind": kind, "index": index, "view": name, "prompt": prompt or "",
            "intended": "" if target is None else target, "predicted": predicted,
            "p_predicted": float(pr[predicted]), "p_intended": float("nan") if target is None else float(pr[target]),
            "hit": "" if target is None else bool(predicted == target),
        })

    if samples is not None:
        prompts = [""] * len(samples) if sample_prompts is None else sample_prompts
        for i, (pr, prompt) in enumerate(zip(classify(model, samples, runtime)["probs"], prompts, strict=True)):
            add("sample", i, "sample", prompt, pr)
    for rec in records:
        p1, p2 = rec["prompts"]
        if rec["kind"] == "anagram":
            views = [("upright", 0, p1), (VIEW_NAMES[rec.get("view") or "flip"], 1, p2)]
        else:
            views = [("up close", HYBRID_CLOSE, p2), ("from afar", HYBRID_FAR, p1)]
        probs = classify(model, rec["views"][[i for _, i, _ in views]], runtime)["probs"]
        for (name, _, prompt), pr in zip(views, probs):
            add(rec["kind"], rec["index"], name, prompt, pr)
    return rows
