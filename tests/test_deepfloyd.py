"""DeepFloyd IF's code path on tiny random IF models built offline: the cache layout, the
production loading calls, prompt embeddings, the UNet adapter, the samplers against diffusers'
own scheduler, the colour inputs, and every way fetching the real weights can fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from PIL import Image

from fundiff import deepfloyd, inputs, models, part_a, samplers

REPOS = {"stage1": "DeepFloyd/IF-I-XL-v1.0", "stage2": "DeepFloyd/IF-II-L-v1.0"}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cache = tmp_path_factory.mktemp("hf_cache")
    manifest = deepfloyd.build_tiny(cache, REPOS, seed=0)
    return manifest


def test_tiny_models_sit_in_a_hub_cache_layout(tiny):
    from huggingface_hub import try_to_load_from_cache

    cache = Path(tiny["cache_dir"])
    for role, repo in REPOS.items():
        root = cache / f"models--{repo.replace('/', '--')}"
        revision = (root / "refs" / "main").read_text()
        assert revision == tiny["revisions"][role] and len(revision) == 40
        index = json.loads((root / "snapshots" / revision / "model_index.json").read_text())
        assert index["_class_name"] == ("IFPipeline" if role == "stage1" else "IFSuperResolutionPipeline")
        # the hub client itself resolves it, as it would the real download
        assert try_to_load_from_cache(repo, "model_index.json", cache_dir=str(cache)) == str(root / "snapshots" / revision / "model_index.json")
        # fp16-variant weight files only, as fetch_deepfloyd downloads
        weights = list((root / "snapshots" / revision).rglob("*.safetensors"))
        assert weights and all(".fp16." in w.name for w in weights)
    # the same seed builds the same weights: the smoke run is reproducible
    assert deepfloyd.build_tiny(cache.parent / "again", REPOS, seed=0)["revisions"] == tiny["revisions"]


def test_production_loader_reads_the_tiny_cache(tiny):
    from diffusers import IFPipeline, IFSuperResolutionPipeline

    stage1 = deepfloyd.load_pipeline(tiny, "stage1", torch.device("cpu"))
    stage2 = deepfloyd.load_pipeline(tiny, "stage2", torch.device("cpu"), cpu_offload=True)  # ignored without a GPU
    assert isinstance(stage1, IFPipeline) and isinstance(stage2, IFSuperResolutionPipeline)
    assert stage1.text_encoder is None and stage1.tokenizer is None  # T5 is never held next to a UNet
    assert stage1.unet.config.out_channels == 6 and stage1.unet.dtype == torch.float32
    assert stage1.scheduler.config.variance_type == "learned_range" and stage1.scheduler.config.thresholding


def test_prompt_embeddings(tiny):
    prompts = ["a rocket ship", "a high quality photo", "a rocket ship"]
    embeds = deepfloyd.encode_prompts(tiny, prompts, torch.device("cpu"))
    assert list(embeds) == ["", "a rocket ship", "a high quality photo"]  # "" first, no duplicates
    for e in embeds.values():
        assert e.shape == (1, deepfloyd.MAX_TOKENS, 32) and e.dtype == torch.float32
    assert not torch.allclose(embeds["a rocket ship"], embeds["a high quality photo"])
    again = deepfloyd.encode_prompts(tiny, ["a rocket ship"], torch.device("cpu"))
    assert torch.equal(again["a rocket ship"], embeds["a rocket ship"])


@pytest.fixture(scope="module")
def if_model(tiny):
    pipe = deepfloyd.load_pipeline(tiny, "stage1", torch.device("cpu"))
    embeds = deepfloyd.encode_prompts(tiny, ["a rocket ship", "an oil painting of an old man"], torch.device("cpu"))
    return pipe, models.IFModel(pipe.unet, torch.device("cpu")), embeds


def test_unet_adapter_splits_and_batches(if_model):
    _, model, embeds = if_model
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 64, 64, generator=g)
    cond = torch.cat([embeds["a rocket ship"], embeds[""]])
    eps, var = model(x, 500, cond)
    assert eps.shape == var.shape == (2, 3, 64, 64)
    # one batched call equals separate calls
    e0, v0 = model(x[:1], 500, cond[:1])
    e1, v1 = model(x[1:], 500, cond[1:])
    assert torch.allclose(eps, torch.cat([e0, e1]), atol=1e-5) and torch.allclose(var, torch.cat([v0, v1]), atol=1e-5)
    assert model.calls >= 3 and model.images >= 4


def test_cfg_anagram_hybrid_cost_one_call_per_step(if_model):
    _, model, embeds = if_model
    c1, c2, u = embeds["a rocket ship"], embeds["an oil painting of an old man"], embeds[""]
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    ts = samplers.course_timesteps(990, 330)  # 990, 660, 330, 0: three steps
    for name, fn in [
        ("cfg", lambda x, t: samplers.cfg_call(model, x, t, c1, u, 7.0)),
        ("anagram", lambda x, t: samplers.anagram_call(model, x, t, c1, c2, u, 7.0)),
        ("hybrid", lambda x, t: samplers.hybrid_call(model, x, t, c1, c2, u, 7.0, 33, 2.0)),
    ]:
        before = model.calls
        out, trace = samplers.iterative_denoise(fn, x, ts, 0, _abar(if_model), generator=torch.Generator().manual_seed(2))
        assert model.calls - before == len(ts) - 1 == trace.calls, name
        assert out.shape == x.shape and torch.isfinite(out).all(), name


def _abar(if_model):
    return if_model[0].scheduler.alphas_cumprod


def test_loop_equals_diffusers_scheduler_on_the_tiny_unet(if_model):
    """With thresholding on, our strided loop is the IF scheduler's own loop after set_timesteps(timesteps=strided)."""
    pipe, model, embeds = if_model
    scheduler = pipe.scheduler
    ts = samplers.course_timesteps(990, 90)
    cond = embeds["a rocket ship"]
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    cfg = scheduler.config
    ours, _ = samplers.iterative_denoise(lambda x, t: model(x, t, cond), x, ts, 0, scheduler.alphas_cumprod,
                                         generator=torch.Generator().manual_seed(4), threshold=(cfg.dynamic_thresholding_ratio, cfg.sample_max_value))
    scheduler.set_timesteps(timesteps=ts)
    ref, g = x.clone(), torch.Generator().manual_seed(4)
    for t in ts[:-1]:
        eps, var = model(ref, t, cond)
        ref = scheduler.step(torch.cat([eps, var], 1), t, ref, generator=g).prev_sample
    assert torch.allclose(ours, ref, atol=1e-4), (ours - ref).abs().max()


# ---------------------------------------------------------------- colour inputs and masks


def test_rgb_inputs_skimage_crop_and_range():
    x = inputs.load_rgb({"source": "skimage:astronaut", "crop": [0, 300, 100, 400]})
    assert x.shape == (1, 3, 64, 64) and 0 <= x.min() and x.max() <= 1 and x.std() > 0.1
    centre = inputs.load_rgb({"source": "skimage:chelsea"})  # default: the central square
    assert centre.shape == (1, 3, 64, 64)
    with pytest.raises(ValueError, match="goes past"):
        inputs.load_rgb({"source": "skimage:astronaut", "crop": [0, 600, 0, 100]})
    with pytest.raises(ValueError, match="no photo called"):
        inputs.load_rgb({"source": "skimage:not_a_photo"})


def test_rgb_inputs_files_and_urls(tmp_path):
    import hashlib

    png = tmp_path / "drawing.png"
    Image.new("RGBA", (80, 60), (200, 30, 30, 255)).save(png)
    x = inputs.load_rgb({"source": str(png)})
    assert x.shape == (1, 3, 64, 64) and abs(x[0, 0].mean().item() - 200 / 255) < 0.01
    # the URL path, offline through file://, checked against its sha256
    digest = hashlib.sha256(png.read_bytes()).hexdigest()
    assert torch.equal(inputs.load_rgb({"source": png.as_uri(), "sha256": digest}), x)
    with pytest.raises(ValueError, match="sha256"):
        inputs.load_rgb({"source": png.as_uri(), "sha256": "0" * 64})
    with pytest.raises(ValueError, match="could not be downloaded"):
        inputs.load_rgb({"source": (tmp_path / "gone.png").as_uri(), "sha256": digest})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        inputs.load_rgb({"source": "nowhere.png"}, base_dir=tmp_path)
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ValueError, match="corrupt, not an image or too large"):
        inputs.load_rgb({"source": str(bad)})


def test_mask_files(tmp_path):
    ok = tmp_path / "mask.png"
    im = Image.new("L", (64, 64), 0)
    im.paste(255, (10, 20, 30, 40))
    im.save(ok)
    mask = inputs.load_mask(ok, 64)
    assert mask.shape == (1, 1, 64, 64) and mask.sum() == 20 * 20 and mask[0, 0, 20, 10] == 1
    Image.new("L", (28, 28), 255).save(tmp_path / "small.png")
    with pytest.raises(ValueError, match="is 28x28, but the images are 64x64"):
        inputs.load_mask(tmp_path / "small.png", 64)
    Image.new("L", (64, 64), 0).save(tmp_path / "empty.png")
    with pytest.raises(ValueError, match="no white pixel"):
        inputs.load_mask(tmp_path / "empty.png", 64)


# ---------------------------------------------------------------- fetching: every failure explained


def _response(status):
    return types.SimpleNamespace(headers={}, status_code=status, request=None, url="https://huggingface.co/api/models/x")


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: __import__("huggingface_hub.errors", fromlist=["x"]).GatedRepoError("403 gated", response=_response(403)), ["gated", "accept the DeepFloyd license", "hf auth login", "HF_TOKEN"]),
        (lambda: __import__("huggingface_hub.errors", fromlist=["x"]).RepositoryNotFoundError("404", response=_response(404)), ["not found", "repo id"]),
        (lambda: __import__("huggingface_hub.errors", fromlist=["x"]).LocalEntryNotFoundError("no cache"), ["not in the local Hugging Face cache", "offline"]),
        (lambda: __import__("huggingface_hub.errors", fromlist=["x"]).OfflineModeIsEnabled("offline"), ["HF_HUB_OFFLINE"]),
        (lambda: _wrapped(ConnectionError("Name or service not known")), ["unreachable", "network"]),
    ],
)
def test_fetch_failures_are_explained(monkeypatch, make, words):
    import huggingface_hub

    def fail(*args, **kwargs):
        raise make()

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fail)
    with pytest.raises(deepfloyd.DeepFloydAccessError) as info:
        deepfloyd.fetch(REPOS, token="hf_SECRET_never_shown")
    message = str(info.value)
    for w in words:
        assert w in message, (w, message)
    assert "hf_SECRET" not in message and "\n" not in message  # one paragraph, no token


def _wrapped(cause):
    try:
        try:
            raise cause
        except Exception as inner:
            raise OSError("Cannot load model DeepFloyd/IF-I-XL-v1.0") from inner
    except OSError as err:
        return err


def test_fetch_downloads_fp16_only_and_writes_no_token(monkeypatch, tmp_path):
    import huggingface_hub

    seen = []

    def fake_download(repo, **kwargs):
        seen.append((repo, kwargs))
        path = tmp_path / repo.replace("/", "--") / "0123456789abcdef0123456789abcdef01234567"
        path.mkdir(parents=True)
        return str(path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    manifest = deepfloyd.fetch(REPOS, cache_dir=str(tmp_path), token="hf_SECRET_never_shown")
    assert [r for r, _ in seen] == list(REPOS.values())
    for repo, kw in seen:
        assert "*fp16*.safetensors" in kw["allow_patterns"] and not any(p == "*.safetensors" for p in kw["allow_patterns"])
        assert "safety_checker/*" in kw["ignore_patterns"]
        assert ("text_encoder/*" in kw["ignore_patterns"]) == (repo == REPOS["stage2"])  # T5 comes with stage I only
    assert manifest["revisions"]["stage1"] == "0123456789abcdef0123456789abcdef01234567"
    deepfloyd.write_manifest(manifest, tmp_path / "manifest.json")
    assert "hf_SECRET" not in (tmp_path / "manifest.json").read_text()


def test_fetch_rule_offline_fails_clearly_and_leaves_nothing(tmp_path):
    """The real rule and the real hub client, offline: one clear paragraph, no manifest, no token in the log."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text((REPO / "config" / "smoke.yaml").read_text().replace("model: tiny ", "model: deepfloyd "))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", HF_TOKEN="hf_SECRET_never_shown")
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    proc = subprocess.run([snakemake, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile", str(cfg), "--cores", "1",
                           "resources/deepfloyd/deepfloyd_manifest.json"], capture_output=True, text=True, env=env, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "fetch_deepfloyd: DeepFloyd/IF-I-XL-v1.0 is not in the local Hugging Face cache" in out, out[-3000:]
    assert not (tmp_path / "resources/deepfloyd/deepfloyd_manifest.json").exists()
    log = (tmp_path / "logs/part_a/fetch_deepfloyd.log").read_text()
    assert "not in the local Hugging Face cache" in log
    assert "hf_SECRET" not in log and "hf_SECRET" not in out


def test_rgb_inputs_odd_modes_are_converted_with_a_note(tmp_path, caplog):
    import logging

    import numpy as np

    caplog.set_level(logging.INFO, logger="fundiff")
    # RGBA: transparency composited on white
    rgba = tmp_path / "rgba.png"
    im = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    im.paste((0, 0, 255, 255), (0, 0, 32, 64))
    im.save(rgba)
    x = inputs.load_rgb({"source": str(rgba)})
    assert torch.allclose(x[0, :, 10, 50], torch.ones(3)) and torch.allclose(x[0, :, 10, 10], torch.tensor([0.0, 0.0, 1.0]))
    # 16-bit grey: scaled to 8 bits, not clipped to white
    grey16 = tmp_path / "grey16.png"
    Image.fromarray(np.full((64, 64), 32768, dtype=np.uint16)).save(grey16)
    x = inputs.load_rgb({"source": str(grey16)})
    assert abs(x.mean().item() - 0.5) < 0.01
    # CMYK JPEG
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (64, 64), (0, 255, 255, 0)).save(cmyk)  # pure red in CMYK
    x = inputs.load_rgb({"source": str(cmyk)})
    assert x[0, 0].mean() > 0.9 and x[0, 1].mean() < 0.1
    # a huge photo: downscaled
    huge = tmp_path / "huge.png"
    Image.new("RGB", (6000, 5000), (10, 200, 30)).save(huge)
    x = inputs.load_rgb({"source": str(huge)})
    assert x.shape == (1, 3, 64, 64) and abs(x[0, 1].mean().item() - 200 / 255) < 0.01
    notes = caplog.text
    for words in ["composited on white", "scaled to 8 bits", "converting CMYK", "a 6000x5000 image, downscaled"]:
        assert words in notes, words


def test_whole_image_masks_are_refused(tmp_path):
    ctx = part_a.DeepFloydContext.__new__(part_a.DeepFloydContext)
    ctx.shape, ctx._base_dir = (3, 64, 64), tmp_path
    Image.new("L", (64, 64), 255).save(tmp_path / "all.png")
    for entry in ({"image": "test", "rect": [0, 64, 0, 64]}, {"image": "test", "mask": "all.png"}):
        with pytest.raises(ValueError, match="covers the whole 64x64 image"):
            ctx.mask(entry)
    assert ctx.mask({"image": "test", "rect": [2, 30, 20, 44]}).sum() == 28 * 24


@pytest.mark.parametrize("kind", ["anagram", "hybrid"])
def test_stage2_upsampling_keeps_the_views(tiny, tmp_path, caplog, kind):
    """Stage II of an illusion runs the same view combination at 256 px: one batched call per step."""
    import logging

    import yaml

    from fundiff.device import resolve

    caplog.set_level(logging.INFO, logger="fundiff")
    manifest = tmp_path / "manifest.json"
    deepfloyd.write_manifest(tiny, manifest)
    prompts = ["an oil painting of an old man", "a lithograph of a skull"]
    embeds = tmp_path / "embeds.pt"
    torch.save(deepfloyd.encode_prompts(tiny, prompts, torch.device("cpu")), embeds)
    pa = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())["part_a"]
    pa["timesteps"] = {"start": 990, "stride": 330}
    ctx = part_a.DeepFloydContext(manifest, embeds, pa, resolve("cpu", "fp32"), REPO)
    low = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    c1, c2 = ctx.condition(prompts).split(1)
    up = ctx.upsample_illusion(low, kind, (c1, c2), 7.0, torch.Generator().manual_seed(1))
    assert up.shape == (1, 3, 256, 256) and torch.isfinite(up).all()
    assert f"stage II {kind}: 3 UNet calls for 3 denoising steps at 256 px" in caplog.text
    # the conditioning channels are the model's input only: zero eps and var there
    model = models.IFStage2Model(ctx.stage2().unet, torch.device("cpu"), 250)
    eps, var = model(torch.randn(2, 6, 256, 256), 500, torch.cat([c1, c2]))
    assert eps.shape == var.shape == (2, 6, 256, 256) and eps[:, 3:].abs().max() == 0 and var[:, 3:].abs().max() == 0


def test_loading_from_a_deleted_cache_says_what_to_do(tiny, tmp_path):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(tiny["cache_dir"], cache)
    manifest = {**tiny, "cache_dir": str(cache)}
    shutil.rmtree(cache)
    for load in (lambda: deepfloyd.load_pipeline(manifest, "stage2", torch.device("cpu")),
                 lambda: deepfloyd.encode_prompts(manifest, ["a rocket ship"], torch.device("cpu"))):
        with pytest.raises(deepfloyd.DeepFloydAccessError) as err:
            load()
        msg = str(err.value)
        assert "not in the local Hugging Face cache" in msg and "delete resources/deepfloyd/tiny_manifest.json and rerun" in msg
