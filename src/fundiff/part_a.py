"""Part A's model side: which model runs Part A, and the MNIST model behind Part A's interface.

Part A's samplers (`fundiff.samplers`) take a model `model(x, t, cond) -> (eps, var)`, a table
of abar_t, a timestep list and conditions. This module supplies them for the `mnist` option:
the final class-conditioned DDPM of Part B, with digit classes as prompts.

Scaling rule from DeepFloyd (T = 1000) to the MNIST model (T_m = part_b.ddpm.num_steps):
every timestep t (strided list, forward-process t values) becomes round(t * T_m / 1000); the
stride scales the same way; i_start values are positions in the strided list and stay as they
are; blur kernels scale with the image width (64 -> 28 px), kept odd.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
import torch.nn.functional as F

from . import data, recipes
from .device import Runtime
from .recipes import PromptError, prompt_to_class  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)



# ---------------------------------------------------------------- prompts and schedules


def prompt_condition(prompts: list[str], num_classes: int = 10) -> torch.Tensor:
    """[len(prompts), num_classes] one-hot rows; the null prompt is the zero vector."""
    out = torch.zeros(len(prompts), num_classes)
    for row, prompt in enumerate(prompts):
        k = prompt_to_class(prompt, num_classes)
        if k is not None:
            out[row, k] = 1.0
    return out


def scale_kernel(kernel_size: int, sigma: float, from_px: int = 64, to_px: int = 28) -> tuple[int, float]:
    """Blur settings given for 64 px images, scaled to 28 px (kernel kept odd and >= 3)."""
    k = max(3, int(round(kernel_size * to_px / from_px)))
    return (k if k % 2 else k + 1), sigma * to_px / from_px


# ---------------------------------------------------------------- the MNIST model


class MnistModel:
    """Part A's model interface on the class-conditioned Part B DDPM UNet (fixed variance).

    `alphas_cumprod[t]` for t in 0..T_m with abar_0 = 1 (Part B's 1-based schedule); the UNet
    sees t / T_m. Counts its forward calls (`calls`) and the images they carried (`images`).
    """

    def __init__(self, state: dict, runtime: Runtime):
        from .train import build_model, schedule_for

        recipe = state["recipe"]
        if recipe["objective"] != "ddpm" or recipe["conditioning"] != "class":
            raise ValueError(f"Part A's mnist model must be the class-conditioned DDPM, got {state['name']}")
        self.net = build_model(state, runtime, use_ema=True).eval()
        self.runtime = runtime
        schedule = schedule_for(recipe)
        self.num_steps = schedule.num_steps
        self.alphas_cumprod = schedule.alphas_cumprod
        self.calls = 0
        self.images = 0

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, t: int, cond: torch.Tensor):
        if not 1 <= t <= self.num_steps:
            raise ValueError(f"t must be in 1..{self.num_steps} for the MNIST model, got {t}")
        self.calls += 1
        self.images += x.shape[0]
        rt = self.runtime
        x_in = x.to(rt.device)
        if rt.channels_last:
            x_in = x_in.contiguous(memory_format=torch.channels_last)
        t_in = torch.full((x.shape[0],), t / self.num_steps, device=rt.device)
        with rt.autocast():
            eps = self.net(x_in, t_in, cond.to(rt.device)).float()
        return eps.to(x.device), None


# ---------------------------------------------------------------- inputs


def load_png(path: str | Path, size: int = 28) -> torch.Tensor:
    """A grey image file as [1, 1, size, size] in [0, 1], white digit on black (inverted if the
    background is light); converts any mode PIL reads, with a note in the log."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Part A input image {path} does not exist. Fix its path in part_a of the config.")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode != "L":
                log.info("%s: converting %s image to grey", path, im.mode)
                im = im.convert("RGBA").convert("L") if "A" in im.mode else im.convert("L")
            if im.size != (size, size):
                log.info("%s: resizing %s to %dx%d", path, im.size, size, size)
                im = im.resize((size, size), Image.BILINEAR)
            x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).float().div(255).reshape(1, 1, size, size)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"Part A input image {path} cannot be read ({err}); it is corrupt or not an image. Replace the file.") from err
    if x.mean() > 0.5:  # dark strokes on paper: make it MNIST-like
        x = 1.0 - x
    return x


def rect_mask(rect: list[int], size: int = 28) -> torch.Tensor:
    """[1, 1, size, size] with 1 inside rows y0:y1, cols x0:x1 (the hole to fill)."""
    y0, y1, x0, x1 = rect
    if not (0 <= y0 < y1 <= size and 0 <= x0 < x1 <= size):
        raise ValueError(f"mask rectangle {rect} (y0, y1, x0, x1) must lie inside the {size}x{size} image with y0 < y1 and x0 < x1")
    mask = torch.zeros(1, 1, size, size)
    mask[..., y0:y1, x0:x1] = 1.0
    return mask


def test_digit(images: torch.Tensor, index: int) -> torch.Tensor:
    """MNIST test image `index` as [1, 1, 28, 28] in [0, 1]."""
    return images[index : index + 1].float().div(255).unsqueeze(1)


def one_hot(k: int) -> torch.Tensor:
    return F.one_hot(torch.tensor([k]), 10).float()


# ---------------------------------------------------------------- one run's context


class Context:
    """Everything a Part A experiment on the MNIST model needs, built from the config."""

    def __init__(self, state: dict, pa: dict, data_root: str, runtime: Runtime, base_dir: str | Path = "."):
        self.model = MnistModel(state, runtime)
        self.pa, self.m = pa, pa["mnist"]
        self.timesteps = recipes.scaled_timesteps(pa["timesteps"]["start"], pa["timesteps"]["stride"], self.model.num_steps)
        self.abar = self.model.alphas_cumprod
        self.uncond = torch.zeros(1, 10)
        self.generic = prompt_condition([self.m.get("generic_prompt", "")])
        self.blur = scale_kernel(pa["blur"]["kernel_size"], pa["blur"]["sigma"])
        self.hybrid_blur = scale_kernel(pa["hybrid_blur"]["kernel_size"], pa["hybrid_blur"]["sigma"])
        self._test_images = None
        self._data_root = data_root
        self._base_dir = Path(base_dir)

    def scaled(self, t: int) -> int:
        return recipes.scale_t(t, self.model.num_steps)

    def image(self, name: str) -> torch.Tensor:
        spec = self.m["images"][name]
        if "file" in spec:
            return load_png(self._base_dir / spec["file"])  # an absolute path stays as it is
        if self._test_images is None:
            self._test_images = data.load_split(self._data_root, "test")[0]
        return test_digit(self._test_images, spec["mnist_test"])

    def eps_fn(self, cond: torch.Tensor, guidance: float | None):
        from .samplers import guided

        return guided(self.model, cond, self.uncond, guidance)

    def log_calls(self, what: str, steps: int, images: int) -> None:
        log.info("%s: %d UNet calls for %d denoising steps (%d images per call on average, %d images)", what, self.model.calls, steps, self.model.images // max(1, self.model.calls), images)


def image_metrics(estimate: torch.Tensor, clean: torch.Tensor) -> dict:
    """PSNR (dB) and SSIM of an estimate against the clean image, with scikit-image, on [0, 1]."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a = clean[0, 0].clamp(0, 1).double().numpy()
    b = estimate[0, 0].clamp(0, 1).double().numpy()
    return {"psnr_db": peak_signal_noise_ratio(a, b, data_range=1.0), "ssim": structural_similarity(a, b, data_range=1.0)}
