"""DeepFloyd IF through diffusers: fetching the weights, the tiny offline stand-ins, prompt
embeddings, and the stage-I UNet behind Part A's model interface.

Every experiment reads a *manifest* (JSON) that says where the three parts live:

    {"source": "hub" | "tiny", "cache_dir": ..., "repos": {"stage1": id, "stage2": id},
     "revisions": {...}, "paths": {...}}

`fetch` writes it after `huggingface_hub.snapshot_download` (the real weights); `build_tiny`
writes it after saving small, randomly initialised IF pipelines into a Hugging Face cache layout
under the same repo ids. Loading is one code path for both: `from_pretrained(repo_id,
cache_dir=manifest["cache_dir"], local_files_only=True)`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import string
from pathlib import Path

import torch

from .io import atomic_path

log = logging.getLogger(__name__)

# what snapshot_download fetches: configs, the tokenizer and the fp16 weights; never the
# safety checker or watermarker (the experiments do not use them), never fp32 weights
ALLOW_PATTERNS = ["*.json", "*.txt", "*.model", "*fp16*.safetensors"]
IGNORE_PATTERNS = ["safety_checker/*", "watermarker/*", "feature_extractor/*"]
MAX_TOKENS = 77
# the tiny tokenizer's pieces besides <pad>, </s>, <unk> and the word boundary
_TINY_CHARS = string.ascii_lowercase + string.digits + string.punctuation


class DeepFloydAccessError(RuntimeError):
    """The weights cannot be had; the message says what the user should do."""


# ---------------------------------------------------------------- errors from the hub


def _causes(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def explain(err: BaseException, repo: str) -> str:
    """One paragraph telling the user why `repo` could not be fetched or loaded and what to do."""
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    card = "https://huggingface.co/DeepFloyd/IF-I-XL-v1.0"
    for cause in _causes(err):
        if isinstance(cause, GatedRepoError):  # subclasses RepositoryNotFoundError: test it first
            return (
                f"{repo} is a gated repository and this machine is not authorised to download it. "
                f"Log in to Hugging Face, open {card} and accept the DeepFloyd license (it covers every IF repo), "
                "then run `hf auth login` or export HF_TOKEN=<a read token> and rerun. "
                "Or set part_a.model: mnist in the config to run Part A on the MNIST model instead."
            )
        if isinstance(cause, RevisionNotFoundError):
            return f"{repo} has no such revision. Check the revision in the config and rerun."
        if isinstance(cause, RepositoryNotFoundError):
            return (
                f"{repo} was not found on the Hugging Face hub (or it is private to another account). "
                "Check the repo id in part_a.deepfloyd of the config; the stage-I default is DeepFloyd/IF-I-XL-v1.0."
            )
        if isinstance(cause, (OfflineModeIsEnabled, LocalEntryNotFoundError)):
            return (
                f"{repo} is not in the local Hugging Face cache and cannot be downloaded now (offline: "
                f"HF_HUB_OFFLINE is set or the hub is unreachable). Run the pipeline once on a machine with "
                f"internet access (after accepting the license on {card} and `hf auth login`), or copy a "
                "Hugging Face cache holding it and point HF_HOME at it; or set part_a.model: mnist."
            )
        if isinstance(cause, (ConnectionError, TimeoutError)) or type(cause).__name__ in {"ConnectError", "ConnectTimeout", "ReadTimeout"}:
            return (
                f"{repo} could not be downloaded: the Hugging Face hub is unreachable from this machine ({cause}). "
                "Check the network or proxy settings and rerun, or set part_a.model: mnist."
            )
    return f"{repo} could not be fetched or loaded: {err}"


# ---------------------------------------------------------------- the real weights


def fetch(repos: dict[str, str], cache_dir: str | None = None, token: str | None = None) -> dict:
    """snapshot_download the fp16 files of every repo; returns the manifest (no token in it)."""
    from huggingface_hub import snapshot_download

    revisions, paths = {}, {}
    for role, repo in repos.items():
        ignore = IGNORE_PATTERNS + (["text_encoder/*"] if role != "stage1" else [])
        log.info("fetching %s (%s): fp16 weights only", repo, role)
        try:
            path = snapshot_download(repo, allow_patterns=ALLOW_PATTERNS, ignore_patterns=ignore, cache_dir=cache_dir, token=token)
        except Exception as err:  # every hub failure becomes one clear paragraph
            raise DeepFloydAccessError(explain(err, repo)) from err
        paths[role] = str(path)
        revisions[role] = Path(path).name
        log.info("%s is at %s (revision %s)", repo, path, revisions[role])
    return {"source": "hub", "cache_dir": cache_dir, "repos": dict(repos), "revisions": revisions, "paths": paths}


def write_manifest(manifest: dict, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def read_manifest(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


# ---------------------------------------------------------------- tiny stand-ins, built offline


def _tiny_tokenizer():
    """A character-level T5-layout tokenizer (<pad>=0, </s>=1, <unk>=2, </s> appended), no download."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(c, -3.0) for c in _TINY_CHARS]
    tok = Tokenizer(models.Unigram(pieces, unk_id=2))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", extra_ids=0, model_max_length=MAX_TOKENS)


def _tiny_text_encoder():
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(vocab_size=len(_TINY_CHARS) + 4, d_model=32, d_kv=8, d_ff=37,
                   num_layers=2, num_heads=4, feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1)
    return T5EncoderModel(cfg)


def _schedulers():
    """Stage I/II schedulers with the real IF settings (squaredcos_cap_v2, learned range, thresholding)."""
    from diffusers import DDPMScheduler

    common = dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="epsilon",
                  thresholding=True, dynamic_thresholding_ratio=0.95, clip_sample=True, clip_sample_range=1.0)
    stage1 = DDPMScheduler(variance_type="learned_range", sample_max_value=1.5, **common)
    stage2 = DDPMScheduler(variance_type="learned_range", sample_max_value=1.0, **common)
    noising = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", variance_type="fixed_small", clip_sample=True, clip_sample_range=1.0)
    return stage1, stage2, noising


def _tiny_unets(d_text: int):
    from diffusers import UNet2DConditionModel

    common = dict(layers_per_block=1, cross_attention_dim=32, encoder_hid_dim=d_text, attention_head_dim=8,
                  addition_embed_type="text", addition_embed_type_num_heads=2, cross_attention_norm="group_norm",
                  resnet_time_scale_shift="scale_shift", act_fn="gelu", mid_block_type="UNetMidBlock2DSimpleCrossAttn")
    # attention only at 16 px, as IF's lower levels: at 32 px (the first tiny design) the head-dim-8
    # attention over 1,024 + 77 tokens was most of a CPU smoke job (stage I 0.60 -> 0.15 s, stage II
    # 1.13 -> 0.50 s per call of 4 images, 1 thread)
    stage1 = UNet2DConditionModel(sample_size=64, in_channels=3, out_channels=6, block_out_channels=[16, 32, 64], norm_num_groups=8,
                                  down_block_types=["ResnetDownsampleBlock2D"] * 2 + ["SimpleCrossAttnDownBlock2D"],
                                  up_block_types=["SimpleCrossAttnUpBlock2D"] + ["ResnetUpsampleBlock2D"] * 2, **common)
    stage2 = UNet2DConditionModel(sample_size=256, in_channels=6, out_channels=6, block_out_channels=[8, 8, 16, 32, 64], norm_num_groups=8,
                                  down_block_types=["ResnetDownsampleBlock2D"] * 4 + ["SimpleCrossAttnDownBlock2D"],
                                  up_block_types=["SimpleCrossAttnUpBlock2D"] + ["ResnetUpsampleBlock2D"] * 4,
                                  class_embed_type="timestep", **common)
    return stage1, stage2


def _snapshot_dir(cache_dir: Path, repo: str, seed: int) -> tuple[Path, str]:
    """The cache layout huggingface_hub reads: models--org--name/{refs/main, snapshots/<hash>/}."""
    revision = hashlib.sha1(f"fundiff-tiny:{repo}:{seed}".encode()).hexdigest()
    root = cache_dir / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    return root / "snapshots" / revision, revision


def build_tiny(cache_dir: str | Path, repos: dict[str, str], seed: int) -> dict:
    """Save tiny, randomly initialised IF pipelines (stage I with T5 and tokenizer, stage II)
    under the real repo ids into a Hugging Face cache layout at `cache_dir`; returns the manifest."""
    from diffusers import IFPipeline, IFSuperResolutionPipeline

    cache_dir = Path(cache_dir)
    torch.manual_seed(seed)
    tokenizer, text_encoder = _tiny_tokenizer(), _tiny_text_encoder()
    unet1, unet2 = _tiny_unets(text_encoder.config.d_model)
    sched1, sched2, noising = _schedulers()
    none = dict(safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False)
    pipes = {
        "stage1": IFPipeline(tokenizer=tokenizer, text_encoder=text_encoder, unet=unet1, scheduler=sched1, **none),
        "stage2": IFSuperResolutionPipeline(tokenizer=tokenizer, text_encoder=None, unet=unet2, scheduler=sched2, image_noising_scheduler=noising, **none),
    }
    revisions, paths = {}, {}
    for role, pipe in pipes.items():
        target, revisions[role] = _snapshot_dir(cache_dir, repos[role], seed)
        if target.exists():
            shutil.rmtree(target)
        pipe.save_pretrained(target, variant="fp16", safe_serialization=True)
        paths[role] = str(target)
        log.info("tiny %s saved as %s at %s", role, repos[role], target)
    return {"source": "tiny", "cache_dir": str(cache_dir), "repos": dict(repos), "revisions": revisions, "paths": paths}


# ---------------------------------------------------------------- loading


def _load_error(err: Exception, manifest: dict, role: str) -> DeepFloydAccessError:
    """Why loading failed, plus the way out when the files the manifest points at are gone."""
    hint = (f" The manifest says the files were at {manifest['paths'][role]}; if they were deleted or moved, delete "
            f"resources/deepfloyd/{'tiny' if manifest['source'] == 'tiny' else 'deepfloyd'}_manifest.json and rerun to fetch or build them again.")
    return DeepFloydAccessError(explain(err, manifest["repos"][role]) + hint)


def _load_kwargs(manifest: dict, device: torch.device) -> dict:
    """Where the files are (never the network) and the dtype: fp16 on CUDA, fp32 on the CPU."""
    return {"cache_dir": manifest["cache_dir"], "local_files_only": True, "dtype": torch.float16 if device.type == "cuda" else torch.float32}


def encode_prompts(manifest: dict, prompts: list[str], device: torch.device) -> dict[str, torch.Tensor]:
    """T5 embeddings [1, 77, d] (fp32, on the CPU) of every prompt plus "", loading only the text encoder."""
    from transformers import T5EncoderModel, T5TokenizerFast

    repo = manifest["repos"]["stage1"]
    try:
        tokenizer = T5TokenizerFast.from_pretrained(repo, subfolder="tokenizer", cache_dir=manifest["cache_dir"], local_files_only=True)
        encoder = T5EncoderModel.from_pretrained(repo, subfolder="text_encoder", variant="fp16", **_load_kwargs(manifest, device))
    except OSError as err:
        raise _load_error(err, manifest, "stage1") from err
    encoder.to(device).eval()
    out = {}
    with torch.no_grad():
        for prompt in dict.fromkeys(["", *prompts]):
            tokens = tokenizer(prompt, padding="max_length", max_length=MAX_TOKENS, truncation=True, add_special_tokens=True, return_tensors="pt")
            hidden = encoder(tokens.input_ids.to(device), attention_mask=tokens.attention_mask.to(device)).last_hidden_state
            out[prompt] = hidden.float().cpu()
    del encoder
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def load_pipeline(manifest: dict, role: str, device: torch.device, cpu_offload: bool = False):
    """The stage-I or stage-II pipeline without T5 or tokenizer: fp16 on CUDA, fp32 on the CPU."""
    from diffusers import DiffusionPipeline

    repo = manifest["repos"][role]
    try:
        pipe = DiffusionPipeline.from_pretrained(repo, text_encoder=None, tokenizer=None, safety_checker=None, watermarker=None,
                                                 feature_extractor=None, requires_safety_checker=False, variant="fp16",
                                                 **_load_kwargs(manifest, device))
    except OSError as err:
        raise _load_error(err, manifest, role) from err
    if cpu_offload and device.type == "cuda":
        pipe.enable_model_cpu_offload()
    else:
        if cpu_offload:
            log.info("cpu_offload ignored: there is no GPU")
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def stage2_condition(pipe, low: torch.Tensor, generator: torch.Generator, noise_level: int = 250) -> torch.Tensor:
    """The stage-II conditioning image: the 64 px image upscaled (bilinear) and noised to `noise_level`, as the pipeline does."""
    import torch.nn.functional as F

    size = pipe.unet.config.sample_size
    upscaled = F.interpolate(low.float(), size=(size, size), mode="bilinear", align_corners=True)
    noise = torch.randn(upscaled.shape, generator=generator)
    return pipe.image_noising_scheduler.add_noise(upscaled, noise, torch.full((low.shape[0],), noise_level))


def hub_token() -> str | None:
    """The configured Hugging Face token (HF_TOKEN, else the one `hf auth login` saved), never logged."""
    from huggingface_hub import get_token

    return get_token()
