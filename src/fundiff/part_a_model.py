"""Which model runs Part A: resolved once at DAG build from `part_a.model` and, for `auto`, from
the local Hugging Face cache and token (no download, no torch)."""

from __future__ import annotations

from .errors import ConfigError

PART_A_MODELS = ("auto", "deepfloyd", "tiny", "mnist")


def deepfloyd_available(stage1_repo: str, cache_dir: str | None = None) -> tuple[bool, str]:
    """(available, why): stage-I weights in the local Hugging Face cache, or a token configured."""
    from huggingface_hub import get_token, try_to_load_from_cache

    cached = try_to_load_from_cache(stage1_repo, "model_index.json", cache_dir=cache_dir)
    if isinstance(cached, str):
        return True, f"{stage1_repo} is in the local Hugging Face cache"
    if get_token():
        return True, "a Hugging Face token is configured"
    return False, f"{stage1_repo} is not in the local Hugging Face cache and no Hugging Face token is set"


def choose_part_a_model(requested: str, stage1_repo: str, cache_dir: str | None = None) -> tuple[str, str]:
    """Resolve `part_a.model` once, at DAG build: (model, reason). `deepfloyd` never falls back."""
    if requested not in PART_A_MODELS:
        raise ConfigError(f"part_a.model must be one of {PART_A_MODELS}, got {requested!r}")
    if requested != "auto":
        return requested, "set explicitly in the config"
    available, why = deepfloyd_available(stage1_repo, cache_dir)
    return ("deepfloyd" if available else "mnist"), why
