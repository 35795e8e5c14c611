"""What Part A's figures and readings show of an illusion: an anagram's two views, a hybrid's
low-pass, high-pass and view from afar."""

from __future__ import annotations

import torch

from .samplers import ANAGRAM_VIEWS, blur as lowpass

VIEW_NAMES = {"flip": "flipped", "rotate": "rotated 180°"}  # an anagram's second view, as figures and tables name it


HYBRID_CLOSE, HYBRID_FAR = 0, 3  # the hybrid's views (illusion_views) as perceived: up close and from afar


def far_kernel(sigma: float) -> int:
    """The odd Gaussian kernel of a far view: 3 sigma either side."""
    return 2 * int(round(3 * sigma)) + 1


def illusion_views(image: torch.Tensor, kind: str, blur: tuple[int, float], view: str = "flip", far_sigma: float | None = None) -> torch.Tensor:
    """What a figure shows of an illusion ([1, C, H, W] in [0, 1]): an anagram upright and in its
    second view (`view`: upside down, or turned half round); a hybrid, its low-pass (`blur`),
    its high-pass + 0.5, and the image seen from afar (HYBRID_FAR).

    A hybrid is perceived as its high-frequency content up close and as its low-frequency
    content from afar. Up close is the hybrid itself at full resolution (HYBRID_CLOSE). From
    afar, with `far_sigma`, is the hybrid blurred by a Gaussian of that sigma (in pixels of the
    image: the detail a distant eye no longer resolves), what the MNIST model's readings read;
    without it (DeepFloyd's figures) the image shrunk to a quarter of its width on white.
    """
    if kind == "anagram":
        return torch.cat([image, ANAGRAM_VIEWS[view](image)])
    size = image.shape[-1]
    low = lowpass(image, *blur)
    if far_sigma is not None:
        far = lowpass(image, far_kernel(far_sigma), far_sigma)
    else:
        far = torch.nn.functional.interpolate(image, size=size // 4, mode="area")
        before = (size - size // 4) // 2
        after = size - size // 4 - before
        far = torch.nn.functional.pad(far, [before, after, before, after], value=1.0)
    return torch.cat([image, low, image - low + 0.5, far])
