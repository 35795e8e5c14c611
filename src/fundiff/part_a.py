"""Part A's sampling contexts: one run's model, schedule, conditions and inputs.

Part A's samplers (`fundiff.samplers`) take a model `model(x, t, cond) -> (eps, var)` (the
adapters in `fundiff.models`), a table of abar_t, a timestep list and conditions; input files
are read by `fundiff.inputs`. A `Context` supplies them: `DeepFloydContext` for
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

from . import data
from .device import Runtime
from .inputs import load_mask, load_png, load_rgb, rect_mask, test_digit
from .models import IFModel, IFStage2Model, MnistModel
from .prompts import prompt_to_class
from .timesteps import scale_t, scaled_timesteps

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


def drawn_digit_prompts(n: int, generator: torch.Generator, num_classes: int = 10) -> list[str]:
    """n prompts "a d", each digit d drawn uniformly: d ~ U{0..9}, then x ~ p(x | d), samples the model's p(x)."""
    return [f"a {int(d)}" for d in torch.randint(0, num_classes, (n,), generator=generator)]


def scale_kernel(kernel_size: int, sigma: float, from_px: int = 64, to_px: int = 28) -> tuple[int, float]:
    """Blur settings given for 64 px images, scaled to 28 px (kernel kept odd and >= 3)."""
    k = max(3, int(round(kernel_size * to_px / from_px)))
    return (k if k % 2 else k + 1), sigma * to_px / from_px


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
    def generic_prompt(self) -> str:
        """The course's "a high quality photo" (the MNIST model's: "", the unconditional input)."""
        return self.m.get("generic_prompt", "")

    @property
    def generic(self) -> torch.Tensor:
        return self.condition([self.generic_prompt])

    def noise_prompts(self, n: int, generator: torch.Generator) -> list[str]:
        """The prompts of 1.5's n samples from noise: the generic prompt for each (the course's)."""
        return [self.generic_prompt] * n

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
        self.timesteps = scaled_timesteps(pa["timesteps"]["start"], pa["timesteps"]["stride"], self.model.num_steps)
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
        return scale_t(t, self.model.num_steps)

    def noise_prompts(self, n: int, generator: torch.Generator) -> list[str]:
        """1.5's prompts: a digit drawn for each sample (part_a.mnist.noise_sample_prompts: drawn_digits), so the
        samples follow the model's p(x) as the class-conditioned branch draws it, or the generic prompt for each
        ("" samples the unconditional branch, trained on only p_uncond of the images)."""
        if self.m["noise_sample_prompts"] == "drawn_digits":  # the schema fills in its default
            return drawn_digit_prompts(n, generator)
        return super().noise_prompts(n, generator)

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
        from .timesteps import course_timesteps

        manifest = deepfloyd.read_manifest(manifest_path)
        self.manifest = manifest
        self.runtime = runtime
        self.pa, self.m = pa, pa["deepfloyd"]
        self.pipe = deepfloyd.load_pipeline(manifest, "stage1", runtime.device, self.m.get("cpu_offload", False))
        self.model = IFModel(self.pipe.unet, runtime.device)
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
        model = IFStage2Model(pipe.unet, self.runtime.device, noise_level)
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


