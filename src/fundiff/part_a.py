"""Part A's model side: the models behind Part A's interface and the inputs of its experiments.

Part A's samplers (`fundiff.samplers`) take a model `model(x, t, cond) -> (eps, var)`, a table
of abar_t, a timestep list and conditions. A `Context` supplies them: `DeepFloydContext` for
DeepFloyd IF stage I (and its tiny offline stand-in), `MnistContext` for the `mnist` option,
the final class-conditioned DDPM of Part B with digit classes as prompts.

Scaling rule from DeepFloyd (T = 1000) to the MNIST model (T_m = part_b.ddpm.num_steps):
every timestep t (strided list, forward-process t values) becomes round(t * T_m / 1000); the
stride scales the same way; i_start values are positions in the strided list and stay as they
are; blur kernels scale with the image width (64 -> 28 px), kept odd.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from . import data, recipes
from .device import Runtime
from .recipes import prompt_to_class

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


HUGE_SIDE = 4096


def standard_mode(im, where: str, grey: bool = False):
    """8-bit RGB (or grey) from any mode PIL reads, with a note in the log for each conversion:
    16/32-bit grey is scaled (not clipped) to 8 bits, transparency is composited on white,
    CMYK, palette and the rest go through PIL's conversion."""
    import numpy as np
    from PIL import Image

    mode = im.mode
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if (mode.startswith("I;16") or arr.max() > 255) else 255.0
        if mode == "F":
            top = max(float(arr.max()), 1e-12)
        log.info("%s: %s image (max %g) scaled to 8 bits", where, mode, arr.max())
        im = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif "A" in mode or (mode == "P" and "transparency" in im.info):
        log.info("%s: %s image with transparency composited on white", where, mode)
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    elif mode not in ("RGB", "L"):
        log.info("%s: converting %s image to %s", where, mode, "grey" if grey else "RGB")
        im = im.convert("RGB")
    if max(im.size) > HUGE_SIDE:
        log.info("%s: a %dx%d image, downscaled", where, *im.size)
    return im.convert("L" if grey else "RGB")


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
            im = standard_mode(im, str(path), grey=True)
            if im.size != (size, size):
                log.info("%s: resizing %s to %dx%d", path, im.size, size, size)
                im = im.resize((size, size), Image.BILINEAR)
            x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).float().div(255).reshape(1, 1, size, size)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise ValueError(f"Part A input image {path} cannot be read ({err}); it is corrupt, not an image or too large. Replace the file.") from err
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


# ---------------------------------------------------------------- one run's context


class Context:
    """What every Part A experiment needs, whatever the model: the model callable, the strided
    timesteps and abar table, conditions for prompts, input images, and conversions for figures.

    Subclasses: MnistContext (Part B's class-conditioned DDPM) and DeepFloydContext (IF stage I).
    """

    model: object
    timesteps: list[int]
    abar: torch.Tensor
    shape: tuple[int, int, int]  # C, H, W of the model's images
    m: dict  # the model's section of part_a (images, prompts, pairs)

    def condition(self, prompts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    def image(self, name: str) -> torch.Tensor:
        """Input `name` as [1, C, H, W] in the model's value range."""
        raise NotImplementedError

    def display(self, x: torch.Tensor) -> torch.Tensor:
        """Model range -> [0, 1] for figures and metrics."""
        return x

    def scaled(self, t: int) -> int:
        return t

    def noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn((n, *self.shape), generator=generator)

    def mask(self, entry: dict) -> torch.Tensor:
        """The inpainting hole of an entry as [1, 1, H, W] (1 = fill): a rectangle or a mask file."""
        size = self.shape[-1]
        mask = rect_mask(entry["rect"], size=size) if "rect" in entry else load_mask(self._base_dir / entry["mask"], size)
        if mask.min() == 1:
            what = f"rectangle {entry['rect']}" if "rect" in entry else f"mask {entry['mask']}"
            raise ValueError(f"inpainting {entry['image']}: the {what} covers the whole {size}x{size} image, so nothing of the original is kept "
                             "(white / 1 marks the hole to fill; is the mask inverted?). Make the hole smaller.")
        return mask

    @property
    def uncond(self) -> torch.Tensor:
        return self.condition([""])

    @property
    def generic(self) -> torch.Tensor:
        return self.condition([self.m.get("generic_prompt", "")])

    def eps_fn(self, cond: torch.Tensor, guidance: float | None):
        from .samplers import guided

        return guided(self.model, cond, self.uncond, guidance)

    def log_calls(self, what: str, steps: int, images: int) -> None:
        """The UNet forward calls so far, against the denoising steps they served (one batched call per step is the bar)."""
        calls = self.model.calls
        log.info("%s: %d UNet calls for %d denoising steps (%.2f calls per step; %d images per call on average, %d images)",
                 what, calls, steps, calls / max(1, steps), self.model.images // max(1, calls), images)


class MnistContext(Context):
    """Part A on the MNIST model: digit prompts, 28x28 grey images in [0, 1], timesteps scaled from T=1000."""

    def __init__(self, state: dict, pa: dict, data_root: str, runtime: Runtime, base_dir: str | Path = "."):
        self.model = MnistModel(state, runtime)
        self.pa, self.m = pa, pa["mnist"]
        self.timesteps = recipes.scaled_timesteps(pa["timesteps"]["start"], pa["timesteps"]["stride"], self.model.num_steps)
        self.abar = self.model.alphas_cumprod
        self.shape = (1, 28, 28)
        self.blur = scale_kernel(pa["blur"]["kernel_size"], pa["blur"]["sigma"])
        self.hybrid_blur = scale_kernel(pa["hybrid_blur"]["kernel_size"], pa["hybrid_blur"]["sigma"])
        self.threshold = None  # the MNIST model predicts no variance and was trained on [0, 1]
        self._test_images = None
        self._data_root = data_root
        self._base_dir = Path(base_dir)

    def condition(self, prompts: list[str]) -> torch.Tensor:
        return prompt_condition(prompts)

    def scaled(self, t: int) -> int:
        return recipes.scale_t(t, self.model.num_steps)

    def image(self, name: str) -> torch.Tensor:
        spec = self.m["images"][name]
        if "file" in spec:
            return load_png(self._base_dir / spec["file"])  # an absolute path stays as it is
        if self._test_images is None:
            self._test_images = data.load_split(self._data_root, "test")[0]
        return test_digit(self._test_images, spec["mnist_test"])


class DeepFloydContext(Context):
    """Part A on DeepFloyd IF stage I (or its tiny stand-in): T5 embeddings as conditions,
    64x64 colour images in [-1, 1], the course's strided schedule on T = 1000."""

    def __init__(self, manifest_path: str | Path, embeds_path: str | Path, pa: dict, runtime: Runtime, base_dir: str | Path = "."):
        from . import deepfloyd
        from .samplers import strided_timesteps

        manifest = deepfloyd.read_manifest(manifest_path)
        self.manifest = manifest
        self.runtime = runtime
        self.pa, self.m = pa, pa["deepfloyd"]
        self.pipe = deepfloyd.load_pipeline(manifest, "stage1", runtime.device, self.m.get("cpu_offload", False))
        self.model = deepfloyd.IFModel(self.pipe.unet, runtime.device)
        self.abar = self.pipe.scheduler.alphas_cumprod.float().cpu()
        self.timesteps = strided_timesteps(pa["timesteps"]["start"], pa["timesteps"]["stride"])
        self.shape = (3, 64, 64)
        self.blur = (pa["blur"]["kernel_size"], pa["blur"]["sigma"])
        self.hybrid_blur = (pa["hybrid_blur"]["kernel_size"], pa["hybrid_blur"]["sigma"])
        cfg = self.pipe.scheduler.config
        self.threshold = (cfg.dynamic_thresholding_ratio, cfg.sample_max_value) if pa.get("threshold_x0") else None
        self.embeds = torch.load(embeds_path, map_location="cpu", weights_only=True)
        self._base_dir = Path(base_dir)
        self._stage2 = None

    def condition(self, prompts: list[str]) -> torch.Tensor:
        missing = [p for p in prompts if p not in self.embeds]
        if missing:
            raise ValueError(f"no T5 embedding for prompts {missing}: embed_prompts encodes the prompts of part_a.deepfloyd; rerun it after changing them")
        return torch.cat([self.embeds[p] for p in prompts])

    def display(self, x: torch.Tensor) -> torch.Tensor:
        return (x + 1.0) / 2.0

    def image(self, name: str) -> torch.Tensor:
        spec = self.m["images"][name]
        return load_rgb(spec, self._base_dir) * 2.0 - 1.0

    def upsample(self, images: torch.Tensor, prompts: list[str], generator: torch.Generator, steps: int = 20) -> torch.Tensor:
        """Stage II (256 px) of 64 px images in [-1, 1], with CFG from precomputed embeddings."""
        dev, pipe = self.runtime.device, self.stage2()
        out = pipe(image=images.to(dev, pipe.unet.dtype), prompt_embeds=self.condition(prompts).to(dev),
                   negative_prompt_embeds=self.uncond.expand(len(prompts), -1, -1).to(dev),
                   num_inference_steps=steps, generator=generator, output_type="pt").images
        return out.float().cpu()

    def hybrid_blur_at(self, size: int) -> tuple[int, float]:
        """The hybrid low-pass (given for 64 px) at another width, kernel kept odd."""
        return scale_kernel(*self.hybrid_blur, from_px=self.shape[-1], to_px=size)

    def stage2(self):
        from . import deepfloyd

        if self._stage2 is None:
            self._stage2 = deepfloyd.load_pipeline(self.manifest, "stage2", self.runtime.device, self.m.get("cpu_offload", False))
        return self._stage2

    def upsample_illusion(self, image: torch.Tensor, kind: str, conds: tuple, guidance: float, generator: torch.Generator) -> torch.Tensor:
        """Stage II of an anagram or hybrid with the same views at 256 px (so the illusion
        survives), by the same sampler on the strided schedule; returns [1, 3, 256, 256]."""
        from . import deepfloyd, samplers

        pipe = self.stage2()
        noise_level = 250
        condition = deepfloyd.stage2_condition(pipe, image.clamp(-1, 1), generator, noise_level)
        model = deepfloyd.IFStage2Model(pipe.unet, self.runtime.device, noise_level)
        c1, c2 = conds
        uncond = self.uncond
        if kind == "anagram":
            eps_fn = lambda x, t: samplers.anagram_call(model, x, t, c1, c2, uncond, guidance)  # noqa: E731
        else:
            k, s = self.hybrid_blur_at(condition.shape[-1])
            eps_fn = lambda x, t: samplers.hybrid_call(model, x, t, c1, c2, uncond, guidance, k, s)  # noqa: E731
        x = torch.cat([torch.randn(condition.shape, generator=generator), condition], 1)
        keep_condition = lambda x, t: torch.cat([x[:, :3], condition], 1)  # noqa: E731
        out, _ = samplers.iterative_denoise(eps_fn, x, self.timesteps, 0, pipe.scheduler.alphas_cumprod.float(), generator=generator, after_step=keep_condition)
        log.info("stage II %s: %d UNet calls for %d denoising steps at %d px", kind, model.calls, len(self.timesteps) - 1, condition.shape[-1])
        return out[:, :3]


def open_context(model: str, inputs, params, runtime: Runtime) -> Context:
    """The Context of the chosen Part A model from a job's inputs and params."""
    if model == "mnist":
        from .train import load_checkpoint

        return MnistContext(load_checkpoint(inputs.checkpoint), params.pa, params.data_root, runtime, params.base_dir)
    return DeepFloydContext(inputs.manifest, inputs.embeds, params.pa, runtime, params.base_dir)


# ---------------------------------------------------------------- colour inputs (DeepFloyd)


def _read_source(spec: dict, base_dir: Path):
    """A PIL image from a repo file, a scikit-image photo, or a URL checked against its sha256."""
    import hashlib
    import io
    import urllib.request

    from PIL import Image, UnidentifiedImageError

    source = spec["source"]
    if source.startswith("skimage:"):
        import skimage.data

        name = source.split(":", 1)[1]
        loader = getattr(skimage.data, name, None)
        if loader is None or not callable(loader):
            raise ValueError(f"Part A input {source!r}: scikit-image has no photo called {name!r} (try astronaut, chelsea, coffee, rocket).")
        return Image.fromarray(loader())
    if source.startswith(("http://", "https://", "file:")):
        try:
            with urllib.request.urlopen(source, timeout=60) as response:
                payload = response.read()
        except OSError as err:
            raise ValueError(f"Part A input {source} could not be downloaded ({err}). Check the URL or use a local file.") from err
        digest = hashlib.sha256(payload).hexdigest()
        if digest != spec.get("sha256"):
            raise ValueError(f"Part A input {source} has sha256 {digest}, not the configured {spec.get('sha256')}: the file changed or the download is incomplete.")
        blob = io.BytesIO(payload)
    else:
        path = Path(source) if Path(source).is_absolute() else base_dir / source
        if not path.is_file():
            raise FileNotFoundError(f"Part A input image {path} does not exist. Fix its source in part_a.deepfloyd.images of the config.")
        blob = path
    try:
        im = Image.open(blob)
        im.load()
        return im
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise ValueError(f"Part A input image {source} cannot be read ({err}); it is corrupt, not an image or too large. Replace the file.") from err


def load_rgb(spec: dict, base_dir: str | Path = ".", size: int = 64) -> torch.Tensor:
    """A configured colour input as [1, 3, size, size] in [0, 1]: crop (default the central square), then resize."""
    from PIL import Image

    im = standard_mode(_read_source(spec, Path(base_dir)), spec["source"])
    w, h = im.size
    if "crop" in spec:
        y0, y1, x0, x1 = spec["crop"]
        if y1 > h or x1 > w:
            raise ValueError(f"Part A input {spec['source']}: crop {spec['crop']} (rows y0:y1, columns x0:x1) goes past the {w}x{h} image.")
    else:
        side = min(w, h)
        y0, x0 = (h - side) // 2, (w - side) // 2
        y1, x1 = y0 + side, x0 + side
    im = im.crop((x0, y0, x1, y1)).resize((size, size), Image.LANCZOS)
    x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).float().div(255)
    return x.reshape(size, size, 3).permute(2, 0, 1).unsqueeze(0).contiguous()


def load_mask(path: Path, size: int) -> torch.Tensor:
    """A mask file (white = hole) as [1, 1, size, size]; it must already be size x size."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise FileNotFoundError(f"inpainting mask {path} does not exist. Fix part_a.deepfloyd.inpaint in the config.")
    try:
        with Image.open(path) as im:
            im.load()
            im = standard_mode(im, str(path), grey=True)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise ValueError(f"inpainting mask {path} cannot be read ({err}).") from err
    if im.size != (size, size):
        raise ValueError(f"inpainting mask {path} is {im.size[0]}x{im.size[1]}, but the images are {size}x{size}: resize the mask (white = the hole).")
    x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).float().reshape(1, 1, size, size)
    mask = (x > 127).float()
    if mask.sum() == 0:
        raise ValueError(f"inpainting mask {path} has no white pixel: nothing to fill.")
    return mask


def illusion_views(image: torch.Tensor, kind: str, blur: tuple[int, float]) -> torch.Tensor:
    """What a figure shows of an illusion ([1, C, H, W] in [0, 1]): an anagram upright and upside
    down; a hybrid, its low-pass, its high-pass + 0.5, and the image shrunk to a quarter of its
    width on white (what a distant viewer sees)."""
    from .samplers import blur as lowpass, flip

    if kind == "anagram":
        return torch.cat([image, flip(image)])
    size = image.shape[-1]
    low = lowpass(image, *blur)
    small = torch.nn.functional.interpolate(image, size=size // 4, mode="area")
    before = (size - size // 4) // 2
    after = size - size // 4 - before
    small = torch.nn.functional.pad(small, [before, after, before, after], value=1.0)
    return torch.cat([image, low, image - low + 0.5, small])


def image_metrics(estimate: torch.Tensor, clean: torch.Tensor) -> dict:
    """PSNR (dB) and SSIM of an estimate against the clean image ([1, C, H, W] in [0, 1]), with scikit-image."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a = clean[0].clamp(0, 1).double().numpy()
    b = estimate[0].clamp(0, 1).double().numpy()
    ssim = structural_similarity(a, b, data_range=1.0, channel_axis=0) if a.shape[0] > 1 else structural_similarity(a[0], b[0], data_range=1.0)
    return {"psnr_db": peak_signal_noise_ratio(a, b, data_range=1.0), "ssim": ssim}
