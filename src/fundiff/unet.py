"""The course UNet for 28x28 MNIST, in its unconditional, time- and class-conditioned variants.

Operations (every one but the last conv is followed by BatchNorm2d + GELU):

    Conv      Conv2d(k3, s1, p1)            keeps the size
    DownConv  Conv2d(k3, s2, p1)            halves it
    UpConv    ConvTranspose2d(k4, s2, p1)   doubles it
    Flatten   AvgPool2d(7) + GELU           7x7 -> 1x1
    Unflatten ConvTranspose2d(k7, s7, p0)   1x1 -> 7x7
    ConvBlock = Conv, Conv;  DownBlock = DownConv, ConvBlock;  UpBlock = UpConv, ConvBlock
    FCBlock   = Linear, GELU, Linear        embeds a scalar t or a one-hot class vector

Conditioning enters at two places, after Unflatten (width 2D) and after the first UpBlock
(width D). How it is combined is a setting, because the two editions of the course differ:

    time only, "add"  (2024, DDPM):            unflatten + t1,        up1 + t2
    time only, "mul"  (2025, flow matching):   unflatten * t1,        up1 * t2
    class and time    (both editions):         c1 * unflatten + t1,   c2 * up1 + t2
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

CONDITIONINGS = ("none", "time", "class")
TIME_COMBINES = ("add", "mul")


@dataclass(frozen=True)
class UNetConfig:
    hidden: int = 64  # D, the channel width of the first level
    conditioning: str = "none"  # "none" | "time" | "class"
    num_classes: int = 10  # width of the one-hot class vector
    in_channels: int = 1  # MNIST is grey
    time_combine: str = "add"  # how a time-only model folds t in: "add" | "mul"

    def __post_init__(self):
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {CONDITIONINGS}, got {self.conditioning!r}")
        if self.time_combine not in TIME_COMBINES:
            raise ValueError(f"time_combine must be one of {TIME_COMBINES}, got {self.time_combine!r}")
        if self.hidden < 1:
            raise ValueError(f"hidden (D) must be a positive integer, got {self.hidden}")

    def to_dict(self) -> dict:
        return asdict(self)


def _norm_act(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), nn.GELU()]


class Conv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, 1, 1), *_norm_act(cout))


class DownConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, 2, 1), *_norm_act(cout))


class UpConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.ConvTranspose2d(cin, cout, 4, 2, 1), *_norm_act(cout))


class Flatten(nn.Sequential):
    def __init__(self):
        super().__init__(nn.AvgPool2d(7), nn.GELU())


class Unflatten(nn.Sequential):
    def __init__(self, channels: int):
        super().__init__(nn.ConvTranspose2d(channels, channels, 7, 7, 0), *_norm_act(channels))


class ConvBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(Conv(cin, cout), Conv(cout, cout))


class DownBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(DownConv(cin, cout), ConvBlock(cout, cout))


class UpBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(UpConv(cin, cout), ConvBlock(cout, cout))


class FCBlock(nn.Sequential):
    def __init__(self, fin: int, fout: int):
        super().__init__(nn.Linear(fin, fout), nn.GELU(), nn.Linear(fout, fout))


class UNet(nn.Module):
    """forward(x [N,1,28,28], t [N] in [0,1] or None, c [N,num_classes] or None) -> [N,1,28,28]."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        d, cin = config.hidden, config.in_channels
        self.conv_in = ConvBlock(cin, d)
        self.down1 = DownBlock(d, d)
        self.down2 = DownBlock(d, 2 * d)
        self.flatten = Flatten()
        self.unflatten = Unflatten(2 * d)
        self.up1 = UpBlock(4 * d, d)
        self.up2 = UpBlock(2 * d, d)
        self.conv_mid = ConvBlock(2 * d, d)
        self.conv_out = nn.Conv2d(d, cin, 3, 1, 1)
        if config.conditioning in ("time", "class"):
            self.fc1_t = FCBlock(1, 2 * d)
            self.fc2_t = FCBlock(1, d)
        if config.conditioning == "class":
            self.fc1_c = FCBlock(config.num_classes, 2 * d)
            self.fc2_c = FCBlock(config.num_classes, d)

    def _modulation(self, t, c):
        """Per-level (scale, shift) pairs so that h -> scale * h + shift applies the conditioning."""
        kind = self.config.conditioning
        if kind == "none":
            return (1.0, 0.0), (1.0, 0.0)
        if t is None:
            raise ValueError(f"a {kind}-conditioned UNet needs t")
        t = t.reshape(-1, 1).float()
        t1 = self.fc1_t(t)[:, :, None, None]  # [N, 2D, 1, 1]
        t2 = self.fc2_t(t)[:, :, None, None]  # [N, D, 1, 1]
        if kind == "time":
            if self.config.time_combine == "add":
                return (1.0, t1), (1.0, t2)
            return (t1, 0.0), (t2, 0.0)
        if c is None:
            raise ValueError("a class-conditioned UNet needs c (zeros for the unconditional branch)")
        c = c.float()
        c1 = self.fc1_c(c)[:, :, None, None]  # [N, 2D, 1, 1]
        c2 = self.fc2_c(c)[:, :, None, None]  # [N, D, 1, 1]
        return (c1, t1), (c2, t2)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None, c: torch.Tensor | None = None):
        (scale1, shift1), (scale2, shift2) = self._modulation(t, c)
        skip1 = self.conv_in(x)  # [N, D, 28, 28]
        skip2 = self.down1(skip1)  # [N, D, 14, 14]
        skip3 = self.down2(skip2)  # [N, 2D, 7, 7]
        bottleneck = self.unflatten(self.flatten(skip3))  # [N, 2D, 7, 7]
        bottleneck = scale1 * bottleneck + shift1
        up1 = self.up1(torch.cat([bottleneck, skip3], dim=1))  # [N, D, 14, 14]
        up1 = scale2 * up1 + shift2
        up2 = self.up2(torch.cat([up1, skip2], dim=1))  # [N, D, 28, 28]
        out = self.conv_mid(torch.cat([up2, skip1], dim=1))  # [N, D, 28, 28]
        return self.conv_out(out)  # [N, 1, 28, 28]


# ---------------------------------------------------------------- final weights for use outside the pipeline

FINAL_FORMAT = "fundiff-unet"


def _final_paths(path) -> tuple[Path, Path]:
    """(weights, architecture) of a final model given its .safetensors, its .json or their folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "final.safetensors"
    return path.with_suffix(".safetensors"), path.with_suffix(".json")


def save_final(model: UNet, path, info: dict | None = None) -> None:
    """Write `model`'s weights to `path` (safetensors) and its architecture, plus `info`, to the
    .json beside it; `load_final` reads them back into a UNet."""
    from safetensors.torch import save_file

    from .io import atomic_path

    weights, meta = _final_paths(path)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FINAL_FORMAT})
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # safetensors writes its file private (0600); an output is for everyone
    doc = {"format": FINAL_FORMAT, "version": 1, "architecture": model.config.to_dict(), **(info or {})}
    with atomic_path(meta) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


def final_info(path) -> dict:
    """The .json of a final model: `architecture` (UNetConfig's fields) and what the pipeline
    recorded (model id, objective, epoch, whether the weights are the EMA, the training recipe)."""
    _, meta = _final_paths(path)
    try:
        doc = json.loads(meta.read_text())
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{meta} is missing: a final model is a .safetensors file with its .json beside it") from err
    if doc.get("format") != FINAL_FORMAT:
        raise ValueError(f"{meta} is not a {FINAL_FORMAT} description (format {doc.get('format')!r})")
    return doc


def load_final(path, device: str | torch.device = "cpu") -> UNet:
    """The course UNet of a final model the pipeline wrote (results/part_b/<model>/final.safetensors
    with final.json beside it; the path of either, or of their folder), in eval mode.

        model = load_final("results/part_b/ddpm/class_cond/final.safetensors")
        eps = model(x_t, t / T, one_hot_class)   # see final_info(path)["recipe"] for T and the schedule
    """
    from safetensors.torch import load_file

    weights, _ = _final_paths(path)
    model = UNet(UNetConfig(**final_info(path)["architecture"]))
    model.load_state_dict(load_file(str(weights), device="cpu"))
    return model.to(device).eval()
