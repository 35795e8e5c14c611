"""Figures: labelled image grids, loss curves and sampling animations, all written atomically."""

from __future__ import annotations

import textwrap

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image

from .io import atomic_path

if TYPE_CHECKING:  # torch loads only in the jobs that tile tensors: the plotting jobs skip its ~2 s import
    import torch


def pyplot():
    """matplotlib.pyplot on the Agg backend, imported on first use: the sampling and training jobs
    that only write image grids (tile, save_png, save_gif) skip its ~1 s import."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

# matplotlib writes its version into PNG metadata but no date; keep it that way for identical reruns
SAVE_KW = {"dpi": 120, "bbox_inches": "tight", "metadata": {"Software": None}}


def _save(fig, path: str | Path) -> None:
    plt = pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **SAVE_KW)
    plt.close(fig)


def image_table(
    rows: Sequence[torch.Tensor],
    path: str | Path,
    row_labels: Sequence[str] = (),
    col_labels: Sequence[str] = (),
    title: str = "",
    cell: float = 0.9,
    cell_labels: Sequence[Sequence[str] | None] = (),
) -> None:
    """A table of images: rows[i] is [K, 1 or 3, H, W] in [0, 1] (clipped), one row per entry;
    col_labels title the first row's cells, cell_labels[i] (if given) label row i's cells below them."""
    plt = pyplot()
    n_rows, n_cols = len(rows), max(r.shape[0] for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * n_cols + (1.2 if row_labels else 0), cell * n_rows + (0.4 if title else 0)), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():  # a thin frame on every image: a white mask or hole stays visible on the page
                spine.set_visible(j < row.shape[0])
                spine.set_color("0.75")
                spine.set_linewidth(0.6)
            if j < row.shape[0]:
                img = row[j].detach().float().clamp(0, 1).cpu()
                if img.shape[0] == 3:  # colour (DeepFloyd), height x width x channel for matplotlib
                    ax.imshow(img.permute(1, 2, 0).numpy(), interpolation="nearest")
                else:
                    ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
            if i == 0 and j < len(col_labels):
                ax.set_title(textwrap.fill(col_labels[j], width=max(12, int(cell * 18))), fontsize=8)
            if i < len(cell_labels) and cell_labels[i] and j < len(cell_labels[i]):
                ax.set_xlabel(cell_labels[i][j], fontsize=8)
            if j == 0 and i < len(row_labels):
                ax.set_ylabel(row_labels[i], fontsize=8, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.2)
    if title:
        top = 1.0 - 0.35 / fig.get_figheight()
        fig.subplots_adjust(top=top - (0.25 / fig.get_figheight() if col_labels else 0))
        fig.suptitle(title, fontsize=9, y=0.995)
    _save(fig, path)


def tile(images: torch.Tensor, nrow: int) -> np.ndarray:
    """[N, 1, H, W] in [0, 1] -> uint8 mosaic of `nrow` images per row, 2px white borders: the
    layout of torchvision.utils.make_grid(padding=2, pad_value=1) (a test checks equality),
    written out because importing torchvision costs every sampling job ~2 s."""
    import torch

    x = images.detach().float().clamp(0, 1).cpu()[:, 0]
    n, h, w = x.shape
    if n == 1:  # make_grid returns a lone image as it is, without a border
        return (x[0] * 255).round().to(torch.uint8).numpy()
    cols = min(nrow, n)
    rows = -(-n // cols)
    grid = torch.ones(rows * (h + 2) + 2, cols * (w + 2) + 2)
    for k in range(n):
        r, c = divmod(k, cols)
        grid[r * (h + 2) + 2 : (r + 1) * (h + 2), c * (w + 2) + 2 : (c + 1) * (w + 2)] = x[k]
    return (grid * 255).round().to(torch.uint8).numpy()


def save_png(array: np.ndarray, path: str | Path, scale: int = 2) -> None:
    img = Image.fromarray(array)
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def save_gif(frames: Sequence[torch.Tensor], path: str | Path, nrow: int, scale: int = 2, ms_per_frame: int = 80, hold_last_ms: int = 1500) -> None:
    """Animated GIF of a sequence of sample batches ([N, 1, H, W] each), one frame each, the last held."""
    images = [Image.fromarray(tile(f, nrow)) for f in frames]
    images = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in images]
    durations = [ms_per_frame] * (len(images) - 1) + [hold_last_ms]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)


def loss_curve(series: dict[str, tuple[np.ndarray, Sequence[int]]], path: str | Path, title: str) -> None:
    """Per-step training loss (log y) for each named run, epoch boundaries marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, (losses, epoch_ends) in series.items():
        steps = np.arange(1, len(losses) + 1)
        window = max(1, len(losses) // 100)
        ax.plot(steps, losses, lw=0.6 if window > 1 else 1.4, alpha=0.35 if window > 1 else 1.0)
        if window > 1:
            smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1 :], smooth, lw=1.4, color=ax.lines[-1].get_color(), label=f"{name} (running mean of {window})")
        else:
            ax.lines[-1].set_label(name)
        for end in epoch_ends[:-1]:
            ax.axvline(end, color="0.85", lw=0.5, zorder=0)
    ax.set_yscale("log")
    ax.set_xlabel("training step (grey lines: epoch ends)")
    ax.set_ylabel("MSE loss")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def line_plot(x, ys: dict[str, Sequence[float]], path: str | Path, xlabel: str, ylabel: str, title: str, logy: bool = False) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for name, y in ys.items():
        ax.plot(x, y, marker="o", label=name)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def metric_panels(panels: Sequence[dict], path: str | Path, xlabel: str, title: str, integer_x: bool = False, xticks: Sequence[float] | None = None) -> None:
    """Side-by-side line plots sharing an x axis. Each panel: {"ylabel": str, "series": {name: (x, y)},
    optional "hlines": {name: y} (dashed reference levels), "ylim": (lo, hi)}. `integer_x`: the
    axis from 0, ticked at the x values (epochs); `xticks`: ticks at these values (swept settings)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.3), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for name, (x, y) in panel["series"].items():
            ax.plot(x, y, marker="o", label=name)
        for name, y in panel.get("hlines", {}).items():
            if y is not None and np.isfinite(y):
                ax.axhline(y, ls="--", color="0.4", lw=1, label=name)
        if panel.get("ylim"):
            ax.set_ylim(*panel["ylim"])
        if integer_x:  # epochs: the axis from 0 (the untrained model), ticked at the scored epochs
            xs = sorted({int(v) for x, _ in panel["series"].values() for v in x})
            last = xs[-1] if xs else 1
            ax.set_xlim(0, last + max(0.5, 0.04 * last))
            if 0 < len(xs) <= 10:
                ax.set_xticks(xs)
            else:
                ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        if xticks is not None:
            ax.set_xticks(list(xticks), [f"{v:g}" for v in xticks])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(panel["ylabel"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(w_pad=1.5)
    _save(fig, path)


def grouped_bars(categories: Sequence, series: dict[str, Sequence[float]], path: str | Path, xlabel: str, ylabel: str, title: str, ylim=None) -> None:
    """One group of bars per category, one bar per named series."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    x = np.arange(len(categories))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, [str(c) for c in categories])
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    # below the axes: bars near the top (accuracy 0.9-1.0) are the ones a reader compares
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=max(1, len(series)), frameon=False)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    _save(fig, path)
