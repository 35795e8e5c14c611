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


# Rules of every image and mask file Part A reads (load_png, load_rgb, load_mask): each conversion
# leaves one line in the job's log, everything else is refused with what to do.
HUGE_SIDE = 4096  # a side past this is noted as downscaled
MAX_PIXELS = 80_000_000  # refused past this (below Pillow's DecompressionBombWarning at 89.5 M, which never reaches the log)
MIN_SIDE = 16  # refused under this many pixels a side (of the crop, where one is given)
MAX_ASPECT = 4.0  # refused past this ratio without a crop: the centre square would keep too little
MAX_MID_GREY = 0.25  # a mask with more of its pixels in the middle half of its range is refused, not thresholded


def _bits(im) -> str:
    """The raw sample layout of a just-opened (not yet loaded) image, e.g. 'I;16B', 'RGB;16B', 'I;32S'."""
    args = im.tile[0][3] if im.tile else None
    if im.format == "PPM" and isinstance(args, tuple) and len(args) > 1 and isinstance(args[1], int):
        return "16" if args[1] > 255 else ""  # Pillow rescales PGM / PPM by their maxval
    raw = args if isinstance(args, str) else (args[0] if isinstance(args, tuple) and args and isinstance(args[0], str) else "")
    return raw


def open_image(source, where: str, what: str = "Part A input image"):
    """A decoded PIL image from a path or a file object: the first frame of an animation, turned
    upright by its EXIF orientation, 16-bit samples noted, each with a line in the log; refused
    when unreadable or past MAX_PIXELS."""
    import warnings

    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit below
            opened = Image.open(source)
        with opened as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ValueError(f"{what} {where} is {w}x{h} = {w * h / 1e6:.0f} megapixels, more than the {MAX_PIXELS / 1e6:.0f} megapixels "
                                 f"Part A reads (a decompression bomb, or a scan far larger than needed): downscale it to at most "
                                 f"{HUGE_SIDE} px a side and save it again.")
            raw = _bits(im)
            frames = getattr(im, "n_frames", 1)
            im.load()
            if frames > 1:
                log.info("%s: %d frames (an animation or a multi-page file); the first is used", where, frames)
            orientation = im.getexif().get(0x0112, 1)
            out = ImageOps.exif_transpose(im)  # a copy, upright
            if orientation not in (1, None):
                log.info("%s: turned upright by its EXIF orientation %d (now %dx%d)", where, orientation, *out.size)
    except Image.DecompressionBombError as err:
        raise ValueError(f"{what} {where} cannot be read ({err}); it is far more than the {MAX_PIXELS / 1e6:.0f} megapixels "
                         f"Part A reads: downscale it to at most {HUGE_SIDE} px a side and save it again.") from err
    except (UnidentifiedImageError, OSError) as err:
        if hasattr(source, "getvalue"):
            head = source.getvalue()[:4]
        else:
            with open(source, "rb") as f:
                head = f.read(4)
        if head in (b"II*\x00", b"MM\x00*"):
            raise ValueError(f"{what} {where} is a TIFF that Pillow cannot decode ({err}): truncated, or with float colour or 16/64-bit "
                             "float samples, which Part A does not read. Save it as an 8- or 16-bit PNG, or as one-channel 32-bit float "
                             "with values in [0, 1].") from err
        raise ValueError(f"{what} {where} cannot be read ({err}); it is corrupt, not an image or too large. Replace the file.") from err
    if out.mode == "I" and (raw.startswith("I;16") and not raw.endswith("S") or raw == "16"):
        out = Image.fromarray(np.asarray(out).astype(np.uint16))  # 16-bit unsigned samples that Pillow widened to 32 bits
    elif "16" in raw and not out.mode.startswith("I"):
        log.info("%s: 16-bit %s samples reduced to 8 bits per channel", where, out.mode)
    return out


def standard_mode(im, where: str, grey: bool = False, what: str = "Part A input image"):
    """8-bit RGB (or grey) from any mode PIL reads, with a line in the log for each conversion:
    16-bit grey is scaled (v / 257, not clipped), float grey is read on the [0, 1] scale,
    transparency is composited on white, CMYK, palette and the rest go through PIL's conversion,
    grey becomes three equal channels and colour becomes grey by PIL's luma. Refused: float
    values outside [0, 1] (or not finite) and 32-bit or signed integers (no agreed white level)."""
    import numpy as np
    from PIL import Image

    mode = im.mode
    if mode.startswith("I;16"):
        arr = np.asarray(im, dtype=np.float64)
        log.info("%s: 16-bit grey image (max %d of 65535) scaled to 8 bits", where, arr.max())
        im = Image.fromarray(np.clip(arr / 65535.0 * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        finite = np.isfinite(arr).all()
        lo, hi = (float(arr.min()), float(arr.max())) if finite else (float("nan"),) * 2
        if not (lo >= -1e-3 and hi <= 1 + 1e-3):
            values = f"values in [{lo:g}, {hi:g}]" if finite else "NaN or infinite values"
            raise ValueError(f"{what} {where} is a float image with {values}; Part A reads float images on the "
                             "[0, 1] scale (0 black, 1 white). Rescale it to [0, 1], or save it as an 8-bit PNG.")
        log.info("%s: 32-bit float image (values %g..%g) read on the [0, 1] scale", where, lo, hi)
        im = Image.fromarray(np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif mode == "I":
        arr = np.asarray(im)
        raise ValueError(f"{what} {where} holds 32-bit or signed integers (values {arr.min()}..{arr.max()}), which have no agreed "
                         "white level: save it as an 8- or 16-bit PNG, or as 32-bit float with values in [0, 1].")
    elif "A" in mode or "a" in mode or (mode == "P" and "transparency" in im.info):
        log.info("%s: %s image with transparency composited on white", where, mode)
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("L" if mode in ("LA", "La") else "RGB")
    elif mode == "1":
        log.info("%s: 1-bit image read as black (0) and white (255)", where)
        im = im.convert("L")
    elif mode not in ("RGB", "L"):
        log.info("%s: converting %s image to RGB", where, mode)
        im = im.convert("RGB")
    if max(im.size) > HUGE_SIDE:
        log.info("%s: a %dx%d image, downscaled", where, *im.size)
    if grey and im.mode != "L":
        log.info("%s: colour converted to grey (luma, ITU-R 601)", where)
    elif not grey and im.mode != "RGB":
        log.info("%s: grey image repeated on the three RGB channels", where)
    return im.convert("L" if grey else "RGB")


def check_shape(width: int, height: int, where: str, fix: str, what: str = "Part A input image") -> None:
    """Refuse an image (or the region kept of it) under MIN_SIDE a side or past MAX_ASPECT:1; `fix` says what to do."""
    short, long = min(width, height), max(width, height)
    if short < MIN_SIDE:
        raise ValueError(f"{what} {where} is {width}x{height}: under {MIN_SIDE} px a side it would only be blown up into a blur. {fix}")
    if long > MAX_ASPECT * short:
        raise ValueError(f"{what} {where} is {width}x{height}, more than {MAX_ASPECT:g}:1: the centre square would keep only "
                         f"{short / long:.0%} of it. {fix}")


def load_png(path: str | Path, size: int = 28) -> torch.Tensor:
    """A grey image file as [1, 1, size, size] in [0, 1], white digit on black (inverted, with a
    note, if the background is light); read by the rules of `open_image` and `standard_mode`, and
    refused under MIN_SIDE a side or past MAX_ASPECT:1 (these inputs take no crop: crop the file)."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Part A input image {path} does not exist. Fix its path in part_a of the config.")
    im = standard_mode(open_image(path, str(path)), str(path), grey=True)
    w, h = im.size
    check_shape(w, h, str(path), f"Use an image of at least {MIN_SIDE} px a side, cropped around the digit to roughly square (part_a.mnist.images takes no crop).")
    if im.size != (size, size):
        log.info("%s: resizing %dx%d to %dx%d%s", path, w, h, size, size, "" if w == h else " (stretched: not square)")
        im = im.resize((size, size), Image.BILINEAR)
    x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).float().div(255).reshape(1, 1, size, size)
    if x.mean() > 0.5:  # dark strokes on paper: make it MNIST-like
        log.info("%s: light background (mean %.2f) inverted to a white digit on black, as in MNIST", path, x.mean())
        x = 1.0 - x
    return x


def rect_mask(rect: list[int], size: int = 28) -> torch.Tensor:
    """[1, 1, size, size] with 1 inside rows y0:y1, cols x0:x1 (the hole to fill); a rectangle
    outside the image or covering all of it is refused."""
    y0, y1, x0, x1 = rect
    if not (0 <= y0 < y1 <= size and 0 <= x0 < x1 <= size):
        raise ValueError(f"mask rectangle {rect} (y0, y1, x0, x1) must lie inside the {size}x{size} image with y0 < y1 and x0 < x1")
    if (y1 - y0, x1 - x0) == (size, size):
        raise ValueError(f"mask rectangle {rect} covers the whole {size}x{size} image, so nothing of the original is kept. Make the hole smaller.")
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
    far_sigma: float | None = None  # a hybrid's view from afar (illusion_views); None: shrunk on white

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
        size = self.shape[-1]  # both loaders refuse empty and whole-image holes
        return rect_mask(entry["rect"], size=size) if "rect" in entry else load_mask(self._base_dir / entry["mask"], size)

    @property
    def sampling(self) -> dict:
        """The options of every sampler call (samplers.iterative_denoise): thresholding of x0_hat and the fixed variance."""
        return {"threshold": self.threshold, "variance": self.variance}

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
        split = self.m.get("hybrid_blur")  # chosen for 28 px digits; null: part_a.hybrid_blur scaled from 64 px
        self.hybrid_blur = (split["kernel_size"], split["sigma"]) if split else scale_kernel(pa["hybrid_blur"]["kernel_size"], pa["hybrid_blur"]["sigma"])
        self.far_sigma = self.m.get("hybrid_far_sigma")
        self.threshold = None  # the MNIST model predicts no variance and was trained on [0, 1]
        self.variance = self.m.get("sample_variance", "beta")  # its fixed sigma_t^2 (diffusion.step_variance)
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
        from .samplers import course_timesteps

        manifest = deepfloyd.read_manifest(manifest_path)
        self.manifest = manifest
        self.runtime = runtime
        self.pa, self.m = pa, pa["deepfloyd"]
        self.pipe = deepfloyd.load_pipeline(manifest, "stage1", runtime.device, self.m.get("cpu_offload", False))
        self.model = deepfloyd.IFModel(self.pipe.unet, runtime.device)
        self.abar = self.pipe.scheduler.alphas_cumprod.float().cpu()
        self.timesteps = course_timesteps(pa["timesteps"]["start"], pa["timesteps"]["stride"])
        self.shape = (3, 64, 64)
        self.blur = (pa["blur"]["kernel_size"], pa["blur"]["sigma"])
        self.hybrid_blur = (pa["hybrid_blur"]["kernel_size"], pa["hybrid_blur"]["sigma"])
        cfg = self.pipe.scheduler.config
        self.threshold = (cfg.dynamic_thresholding_ratio, cfg.sample_max_value) if pa.get("threshold_x0") else None
        self.variance = "beta"  # unused: IF predicts its variance (learned range)
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
            view = samplers.ANAGRAM_VIEWS[self.m.get("anagram_view", "flip")]
            eps_fn = lambda x, t: samplers.anagram_call(model, x, t, c1, c2, uncond, guidance, view)  # noqa: E731
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

    from PIL import Image

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
        return open_image(io.BytesIO(payload), source)
    path = Path(source) if Path(source).is_absolute() else base_dir / source
    if not path.is_file():
        raise FileNotFoundError(f"Part A input image {path} does not exist. Fix its source in part_a.deepfloyd.images of the config.")
    return open_image(path, source)


def load_rgb(spec: dict, base_dir: str | Path = ".", size: int = 64) -> torch.Tensor:
    """A configured colour input as [1, 3, size, size] in [0, 1]: crop (default the central square,
    noted), then resize; read by the rules of `open_image` and `standard_mode`. Refused: a crop
    under MIN_SIDE a side, and without a crop an image under MIN_SIDE or past MAX_ASPECT:1."""
    from PIL import Image

    source = spec["source"]
    im = standard_mode(_read_source(spec, Path(base_dir)), source)
    w, h = im.size
    if "crop" in spec:
        y0, y1, x0, x1 = spec["crop"]
        if y1 > h or x1 > w:
            raise ValueError(f"Part A input {source}: crop {spec['crop']} (rows y0:y1, columns x0:x1) goes past the {w}x{h} image.")
        check_shape(x1 - x0, y1 - y0, f"{source} (crop {spec['crop']})", "Widen its crop in part_a.deepfloyd.images of the config.")
        if x1 - x0 != y1 - y0:
            log.info("%s: crop %s is %dx%d, not square: stretched to %dx%d", source, spec["crop"], x1 - x0, y1 - y0, size, size)
    else:
        check_shape(w, h, source, "Give it a crop: [y0, y1, x0, x1] (rows y0:y1, columns x0:x1 of the original) in "
                                  "part_a.deepfloyd.images of the config, or use a larger image.")
        side = min(w, h)
        y0, x0 = (h - side) // 2, (w - side) // 2
        y1, x1 = y0 + side, x0 + side
        if w != h:
            log.info("%s: a %dx%d image, its central %dx%d square used (no crop in the config)", source, w, h, side, side)
    im = im.crop((x0, y0, x1, y1)).resize((size, size), Image.LANCZOS)
    x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).float().div(255)
    return x.reshape(size, size, 3).permute(2, 0, 1).unsqueeze(0).contiguous()


def mask_hole(values, where: str):
    """The hole (True = fill) of a mask's pixel values, said in the log: any two-valued image is a
    mask, its brighter value the hole (0/1, 0/255, boolean, 16-bit, float); more levels are
    thresholded midway unless over MAX_MID_GREY of the pixels are mid-grey; an empty mask and one
    that covers the whole image are refused."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    size = "x".join(map(str, v.shape[::-1]))
    if not np.isfinite(v).all():
        raise ValueError(f"inpainting mask {where} has NaN or infinite values. Save it as black (keep) and white (the hole to fill).")
    levels = np.unique(v)
    lo, hi = levels[0], levels[-1]
    if len(levels) == 1:
        if lo == 0:
            raise ValueError(f"inpainting mask {where} has no white pixel: nothing to fill.")
        raise ValueError(f"inpainting mask {where} is {lo:g} everywhere, so it covers the whole {size} image and nothing of the original "
                         "is kept (white / 1 marks the hole to fill; is the mask inverted, or drawn on a transparent background?). Make the hole smaller.")
    if len(levels) == 2:
        hole = v == hi
        log.info("%s: a two-valued mask, %g = keep and %g = the hole: %d hole pixels, %.1f %% of the image", where, lo, hi, hole.sum(), 100 * hole.mean())
        return hole
    quarter = (hi - lo) / 4
    mid = ((v > lo + quarter) & (v < hi - quarter)).mean()
    if mid > MAX_MID_GREY:
        raise ValueError(f"inpainting mask {where} is not a black-and-white mask: {mid:.0%} of its pixels are mid-grey ({len(levels)} levels "
                         f"from {lo:g} to {hi:g}; a gradient or a photo?). Save it with black (keep) and white (the hole to fill) only.")
    hole = v > (lo + hi) / 2
    log.info("%s: %d grey levels (%g..%g), not a two-valued mask: thresholded at %g, hole = %d pixels, %.1f %% of the image "
             "(%.1f %% of its pixels were neither %g nor %g)", where, len(levels), lo, hi, (lo + hi) / 2, hole.sum(), 100 * hole.mean(),
             100 * ((v != lo) & (v != hi)).mean(), lo, hi)
    return hole


def load_mask(path: Path, size: int) -> torch.Tensor:
    """A mask file (white / the brighter value = the hole) as [1, 1, size, size] of 0 and 1; it must
    already be size x size; read by `open_image` and `mask_hole` (empty and whole-image masks refused)."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"inpainting mask {path} does not exist. Fix part_a.deepfloyd.inpaint in the config.")
    im = open_image(path, str(path), what="inpainting mask")
    if im.size != (size, size):
        raise ValueError(f"inpainting mask {path} is {im.size[0]}x{im.size[1]}, but the images are {size}x{size}: resize the mask (white = the hole).")
    if im.mode in ("1", "L", "I", "F") or im.mode.startswith("I;16"):
        values = np.asarray(im)  # the file's own values: a 0/1 or 16-bit or float mask keeps its two levels
    else:
        values = np.asarray(standard_mode(im, str(path), grey=True, what="inpainting mask"))
    hole = mask_hole(values, str(path))
    return torch.from_numpy(hole.astype(np.float32)).reshape(1, 1, size, size)


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
    from .samplers import ANAGRAM_VIEWS, blur as lowpass

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


def image_metrics(estimate: torch.Tensor, clean: torch.Tensor) -> dict:
    """PSNR (dB) and SSIM of an estimate against the clean image ([1, C, H, W] in [0, 1]), with scikit-image."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a = clean[0].clamp(0, 1).double().numpy()
    b = estimate[0].clamp(0, 1).double().numpy()
    ssim = structural_similarity(a, b, data_range=1.0, channel_axis=0) if a.shape[0] > 1 else structural_similarity(a[0], b[0], data_range=1.0)
    return {"psnr_db": peak_signal_noise_ratio(a, b, data_range=1.0), "ssim": ssim}
