"""Part A samplers against independent computations and diffusers; the MNIST model's mapping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from fundiff import config_checks, inputs, part_a, part_a_model, prompts, recipes, samplers, timesteps, views
from fundiff.recipes import ConfigError, PromptError

from .test_workflow import DEFAULT, SMOKE


def _abar(T=1000):
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    return torch.cumprod(1 - betas, 0).float()


def _np(x):
    return x.double().numpy()


def test_strided_timesteps_course_values():
    ts = samplers.course_timesteps(990, 30)
    assert ts[:3] == [990, 960, 930] and ts[-1] == 0 and len(ts) == 34
    assert ts[10] == 690  # the course's i_start = 10
    with pytest.raises(ValueError):
        samplers.course_timesteps(100, 30)


def test_forward_and_estimate_invert():
    abar = _abar()
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.rand(2, 3, 8, 8, generator=g), torch.randn(2, 3, 8, 8, generator=g)
    x_t = samplers.forward(x0, 500, abar, eps)
    a = abar[500].double().item()
    np.testing.assert_allclose(_np(x_t), np.sqrt(a) * _np(x0) + np.sqrt(1 - a) * _np(eps), atol=1e-6)
    np.testing.assert_allclose(_np(samplers.estimate_x0(x_t, 500, eps, abar)), _np(x0), atol=1e-4)


def test_step_matches_course_formula_fixed_variance():
    abar = _abar()
    g = torch.Generator().manual_seed(1)
    x_t, eps, z = (torch.randn(1, 3, 8, 8, generator=g) for _ in range(3))
    t, tp = 690, 660
    got, x0_hat = samplers.step(x_t, t, tp, eps, None, abar, noise=z)
    a_t, a_p = abar[t].double().item(), abar[tp].double().item()
    alpha, beta = a_t / a_p, 1 - a_t / a_p
    x0 = (_np(x_t) - np.sqrt(1 - a_t) * _np(eps)) / np.sqrt(a_t)
    want = np.sqrt(a_p) * beta / (1 - a_t) * x0 + np.sqrt(alpha) * (1 - a_p) / (1 - a_t) * _np(x_t) + np.sqrt(beta) * _np(z)
    np.testing.assert_allclose(_np(got), want, atol=1e-4)
    np.testing.assert_allclose(_np(x0_hat), x0, atol=1e-4)


@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_fixed_variance_is_part_bs_strided_step(variance):
    """Part A's step on the MNIST model's schedule equals Part B's ddpm_step with the same strided
    t -> t' and the same `variance` (one formula, diffusion.step_variance), and the two choices differ
    by the factor (1 - abar_t') / (1 - abar_t) on the noise."""
    from fundiff import ddpm

    sched = ddpm.make_schedule(300)
    g = torch.Generator().manual_seed(2)
    x_t, eps, z = (torch.randn(2, 1, 28, 28, generator=g) for _ in range(3))
    for t, tp in [(297, 288), (27, 18), (18, 9)]:
        got, _ = samplers.step(x_t, t, tp, eps, None, sched.alphas_cumprod, noise=z, variance=variance)
        want, _ = ddpm.ddpm_step(x_t, t, eps, sched, noise=z, t_prev=tp, variance=variance)
        np.testing.assert_allclose(_np(got), _np(want), atol=1e-5)
        a_t, a_p = sched.alphas_cumprod[t].item(), sched.alphas_cumprod[tp].item()
        beta = 1 - a_t / a_p
        mean, _ = samplers.step(x_t, t, tp, eps, None, sched.alphas_cumprod, noise=torch.zeros_like(z))
        std = ((got - mean) / z).mean().item()
        assert std == pytest.approx(np.sqrt(beta if variance == "beta" else (1 - a_p) / (1 - a_t) * beta), rel=1e-4)
    with pytest.raises(ValueError, match="variance must be one of"):
        samplers.step(x_t, 27, 18, eps, None, sched.alphas_cumprod, noise=z, variance="small")


def test_step_lands_on_clean_estimate_at_abar_one():
    abar = torch.cat([torch.ones(1), _abar(300)])  # Part B layout: abar_0 = 1
    x_t, eps = torch.randn(1, 1, 4, 4), torch.randn(1, 1, 4, 4)
    out, x0_hat = samplers.step(x_t, 9, 0, eps, None, abar, noise=torch.randn(1, 1, 4, 4))
    assert torch.allclose(out, x0_hat, atol=1e-5)  # no noise, mean = x0_hat


def _tiny_if_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", variance_type="learned_range",
        prediction_type="epsilon", thresholding=True, dynamic_thresholding_ratio=0.95, sample_max_value=1.5, clip_sample=False,
    )


@pytest.mark.parametrize("i", [0, 10, 20, 32])
def test_step_equals_diffusers_ddpm_step_with_thresholding(i):
    """With thresholding on, our stateless step is DeepFloyd's scheduler step on the strided schedule."""
    scheduler = _tiny_if_scheduler()
    ts = samplers.course_timesteps(990, 30)
    scheduler.set_timesteps(timesteps=ts)
    t, tp = ts[i], ts[i + 1]
    g = torch.Generator().manual_seed(i)
    x_t = torch.randn(2, 3, 16, 16, generator=g)
    eps = torch.randn(2, 3, 16, 16, generator=g)
    var = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    ref = scheduler.step(torch.cat([eps, var], 1), t, x_t, generator=torch.Generator().manual_seed(99)).prev_sample
    z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(99))
    got, _ = samplers.step(x_t, t, tp, eps, var, scheduler.alphas_cumprod, noise=z, threshold=(0.95, 1.5))
    assert torch.allclose(got, ref, atol=2e-5), (got - ref).abs().max()


def test_learned_range_matches_scheduler_variance():
    scheduler = _tiny_if_scheduler()
    ts = samplers.course_timesteps(990, 30)
    scheduler.set_timesteps(timesteps=ts)
    var = torch.linspace(-1, 1, 7).reshape(1, 1, 1, 7)
    for t, tp in [(990, 960), (300, 270), (30, 0)]:
        ours = samplers.learned_range_std(var, t, tp, scheduler.alphas_cumprod)
        theirs = torch.exp(0.5 * scheduler._get_variance(t, predicted_variance=var))
        assert torch.allclose(ours, theirs, rtol=1e-5)


class _Recorder:
    """A fake model: eps depends on x, t and cond; records every call."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, t, cond):
        self.calls.append((x.clone(), t, cond.clone()))
        w = torch.arange(1, cond.shape[1] + 1, dtype=x.dtype)
        return torch.tanh(x) * 0.5 + (cond @ w)[:, None, None, None] * 0.1 + t * 1e-3, None


def test_cfg_one_batched_call_equals_separate_calls():
    model = _Recorder()
    x = torch.randn(2, 1, 6, 6)
    c, u = torch.eye(10)[:2], torch.zeros(2, 10)
    eps, _ = samplers.cfg_call(model, x, 5, c, u, 7.0)
    assert len(model.calls) == 1 and model.calls[0][0].shape[0] == 4
    e_c, _ = _Recorder()(x, 5, c)
    e_u, _ = _Recorder()(x, 5, u)
    assert torch.allclose(eps, e_u + 7.0 * (e_c - e_u), atol=1e-5)


@pytest.mark.parametrize("view,dims", [("flip", [2]), ("rotate", [2, 3])])
def test_anagram_combination_and_single_call(view, dims):
    """eps = (eps~(x, p1) + v(eps~(v(x), p2))) / 2 for the course's flip and for the half turn,
    each written out independently (rot90 twice for the half turn); one batched call."""
    model = _Recorder()
    x = torch.randn(1, 1, 6, 6)
    c1, c2, u = torch.eye(10)[3:4], torch.eye(10)[7:8], torch.zeros(1, 10)
    eps, _ = samplers.anagram_call(model, x, 5, c1, c2, u, 2.0, samplers.ANAGRAM_VIEWS[view])
    assert len(model.calls) == 1 and model.calls[0][0].shape[0] == 4
    ref = _Recorder()

    def g(xx, c):
        return ref(xx, 5, u)[0] + 2.0 * (ref(xx, 5, c)[0] - ref(xx, 5, u)[0])

    v = (lambda t: torch.flip(t, [2])) if view == "flip" else (lambda t: torch.rot90(t, 2, dims=[2, 3]))
    want = (g(x, c1) + v(g(v(x), c2))) / 2
    assert torch.allclose(eps, want, atol=1e-5)
    # each view is its own inverse (the sampler's formula needs it), and the half turn is not the flip
    assert torch.equal(samplers.ANAGRAM_VIEWS[view](samplers.ANAGRAM_VIEWS[view](x)), x)
    assert torch.equal(samplers.ANAGRAM_VIEWS[view](x), torch.flip(x, dims))
    shown = views.illusion_views(x.sigmoid(), "anagram", (3, 1.0), view)
    assert torch.equal(shown[1:], v(x.sigmoid()))


def test_hybrid_combination():
    model = _Recorder()
    x = torch.randn(1, 1, 16, 16)
    c1, c2, u = torch.eye(10)[0:1], torch.eye(10)[1:2], torch.zeros(1, 10)
    eps, _ = samplers.hybrid_call(model, x, 5, c1, c2, u, 1.0, 5, 1.0)
    assert len(model.calls) == 1
    e1, e2 = _Recorder()(x, 5, c1)[0], _Recorder()(x, 5, c2)[0]
    low = samplers.gaussian_lowpass(e1, 5, 1.0)
    assert torch.allclose(eps, low + e2 - samplers.gaussian_lowpass(e2, 5, 1.0), atol=1e-5)


@pytest.mark.parametrize("shape,k,sigma", [((2, 3, 64, 64), 33, 2.0), ((1, 3, 256, 256), 129, 8.0), ((5, 1, 28, 28), 5, 2.0), ((3, 64, 64), 7, 1.5), ((4, 3, 16, 16), 1, 1.0)])
def test_gaussian_lowpass_equals_torchvision(shape, k, sigma):
    """The separable blur against torchvision's 2-D one (the course's call): same kernel, same padding."""
    from torchvision.transforms.functional import gaussian_blur

    x = torch.randn(shape, generator=torch.Generator().manual_seed(k))
    ours = samplers.gaussian_lowpass(x, k, sigma)
    assert ours.shape == x.shape
    torch.testing.assert_close(ours, gaussian_blur(x, [k, k], [sigma, sigma]), atol=2e-6, rtol=0)


def test_gaussian_lowpass_rejects_what_it_cannot_do():
    with pytest.raises(ValueError, match="odd kernel_size"):
        samplers.gaussian_lowpass(torch.zeros(1, 3, 8, 8), 4, 1.0)
    with pytest.raises(ValueError, match="wider than 8 px"):
        samplers.gaussian_lowpass(torch.zeros(1, 3, 8, 8), 17, 1.0)


def test_inpainting_changes_only_the_hole():
    abar = torch.cat([torch.ones(1), _abar(300)])
    ts = timesteps.scaled_timesteps(990, 90, 300)
    x0 = torch.rand(1, 1, 28, 28)
    mask = inputs.rect_mask([4, 14, 0, 28])
    model = _Recorder()
    fn = samplers.guided(model, torch.zeros(1, 10), torch.zeros(1, 10), 3.0)
    out, trace = samplers.inpaint(fn, x0, mask, ts, abar, torch.Generator().manual_seed(0))
    assert trace.calls == len(ts) - 1 == len(model.calls)
    assert torch.equal(out * (1 - mask), x0 * (1 - mask))  # last step pastes forward(x0, t=0) = x0
    assert not torch.allclose(out * mask, x0 * mask)


def test_sdedit_small_i_start_stays_close():
    abar = torch.cat([torch.ones(1), _abar(300)])
    ts = timesteps.scaled_timesteps(990, 30, 300)
    x0 = torch.rand(1, 1, 28, 28)

    def perfect(x, t):  # knows x0: the exact noise estimate
        a = abar[t].item()
        return (x - a**0.5 * x0) / (1 - a) ** 0.5, None

    near, _ = samplers.sdedit(perfect, x0, ts, len(ts) - 3, abar, torch.Generator().manual_seed(0))
    assert torch.allclose(near, x0, atol=1e-4)


def test_iterative_denoise_keeps_every_kth_and_validates():
    abar = _abar()
    ts = samplers.course_timesteps(990, 30)
    model = _Recorder()
    fn = samplers.guided(model, torch.zeros(1, 10), torch.zeros(1, 10), None)
    _, trace = samplers.iterative_denoise(fn, torch.randn(1, 1, 4, 4), ts, 10, abar, torch.Generator().manual_seed(0), keep_every=5)
    assert [i for i, _ in trace.kept] == [15, 20, 25, 30]
    assert trace.calls == len(ts) - 1 - 10
    with pytest.raises(ValueError):
        samplers.iterative_denoise(fn, torch.randn(1, 1, 4, 4), ts, 33, abar)


# ---------------------------------------------------------------- the MNIST model option


@pytest.mark.parametrize("prompt, k", [("3", 3), ("a 3", 3), ("The digit 7", 7), ("  a 0 ", 0), ("", None), ("number 9", 9)])
def test_prompt_to_class(prompt, k):
    assert prompts.prompt_to_class(prompt) == k


@pytest.mark.parametrize("prompt", ["a rocket ship", "a 12", "3 3", "a high quality photo"])
def test_prompt_to_class_rejects(prompt):
    with pytest.raises(PromptError, match="digit prompts"):
        prompts.prompt_to_class(prompt)


def test_prompt_condition_one_hot_and_null():
    c = part_a.prompt_condition(["a 2", "", "9"])
    assert c.shape == (3, 10) and c[0, 2] == 1 and c[1].sum() == 0 and c[2, 9] == 1 and c.sum() == 2


def test_drawn_digit_prompts_sample_every_digit_uniformly():
    draw = part_a.drawn_digit_prompts(5000, torch.Generator().manual_seed(0))
    assert draw[:5] == part_a.drawn_digit_prompts(5, torch.Generator().manual_seed(0))  # the generator decides
    classes = [prompts.prompt_to_class(q) for q in draw]
    counts = np.bincount(classes, minlength=10)
    assert counts.sum() == 5000 and (abs(counts - 500) < 5 * np.sqrt(450)).all()  # uniform within 5 sigma
    assert draw[:20] != part_a.drawn_digit_prompts(20, torch.Generator().manual_seed(1))


@pytest.mark.parametrize("setting", ["drawn_digits", "generic"])
def test_mnist_noise_prompts_follow_the_setting(setting):
    ctx = part_a.MnistContext.__new__(part_a.MnistContext)  # noise_prompts reads only the config section
    ctx.m = {"generic_prompt": "", "noise_sample_prompts": setting}
    drawn = ctx.noise_prompts(4, torch.Generator().manual_seed(3))
    if setting == "generic":
        assert drawn == [""] * 4
    else:
        assert drawn == part_a.drawn_digit_prompts(4, torch.Generator().manual_seed(3))


def test_schedule_scaling():
    ts = timesteps.scaled_timesteps(990, 30, 300)
    assert ts[:3] == [297, 288, 279] and ts[-1] == 0 and len(ts) == 34 and ts[10] == 207
    assert timesteps.scale_t(500, 300) == 150 and timesteps.scale_t(250, 300) == 75
    assert part_a.scale_kernel(33, 2.0) == (15, pytest.approx(0.875))
    assert part_a.scale_kernel(5, 2.0)[0] == 3
    with pytest.raises(ConfigError, match="too fine"):
        timesteps.scaled_timesteps(990, 30, 20)


def test_auto_choice(monkeypatch, tmp_path):
    import huggingface_hub

    repo = "DeepFloyd/IF-I-XL-v1.0"
    # without a cache entry or a token: the MNIST model
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    model, why = part_a_model.choose_part_a_model("auto", repo)
    assert model == "mnist" and "not in the local Hugging Face cache" in why
    # a fake cached DeepFloyd: chosen
    fake = tmp_path / "model_index.json"
    fake.write_text("{}")
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: str(fake))
    assert part_a_model.choose_part_a_model("auto", repo) == ("deepfloyd", f"{repo} is in the local Hugging Face cache")
    # a token alone also counts
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_xxx")
    assert part_a_model.choose_part_a_model("auto", repo) == ("deepfloyd", "a Hugging Face token is configured")
    # explicit choices never fall back, whatever is cached
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    for model in ("mnist", "deepfloyd", "tiny"):
        assert part_a_model.choose_part_a_model(model, repo) == (model, "set explicitly in the config")
    with pytest.raises(ConfigError, match="must be one of"):
        part_a_model.choose_part_a_model("imagen", repo)


def test_shipped_part_a_configs_check():
    for path in (DEFAULT, SMOKE):
        config_checks.check(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m, pa: m["text_edits"].append({"image": "nope", "prompt": "a 1"}), "nope"),
        (lambda m, pa: m["anagrams"].append({"upright": "a cat", "flipped": "a 1"}), "a cat"),
        (lambda m, pa: pa.update(sdedit_i_starts=[40]), "sdedit_i_starts"),
        (lambda m, pa: pa["hybrid_blur"].update(kernel_size=32), "odd"),
        (lambda m, pa: m["inpaint"].append({"image": "test", "rect": [10, 5, 0, 28]}), "y0 < y1"),
        (lambda m, pa: m["inpaint"].append({"image": "test", "rect": [0, 29, 0, 28]}), "<= 28"),
        (lambda m, pa: m.update(epoch=30), "part_a.mnist.epoch is 30"),
        # the DeepFloyd section
        (lambda m, pa: pa["deepfloyd"]["sdedit_images"].append("campanile"), "campanile"),
        (lambda m, pa: pa["deepfloyd"]["images"].update(web={"source": "https://example.org/campanile.jpg"}), "needs its sha256"),
        (lambda m, pa: pa["deepfloyd"]["images"]["test"].update(crop=[300, 0, 100, 400]), "y0 < y1 and x0 < x1"),
        (lambda m, pa: pa["deepfloyd"]["inpaint"].append({"image": "test", "rect": [0, 64, 60, 70]}), "x0 < x1 <= 64"),
    ],
)
def test_bad_part_a_config(edit, match):
    cfg = yaml.safe_load(DEFAULT.read_text())
    edit(cfg["part_a"]["mnist"], cfg["part_a"])
    with pytest.raises(ConfigError, match=match):
        config_checks.check(cfg)


def test_load_png_converts_and_rejects(tmp_path):
    from PIL import Image

    rgba = Image.new("RGBA", (56, 56), (255, 255, 255, 255))
    rgba.paste((0, 0, 0, 255), (20, 10, 36, 46))
    rgba.save(tmp_path / "rgba.png")
    x = inputs.load_png(tmp_path / "rgba.png")
    assert x.shape == (1, 1, 28, 28) and x.max() > 0.9 and x.mean() < 0.5  # dark stroke -> white digit
    sixteen = Image.fromarray((np.random.default_rng(0).random((28, 28)) * 65535).astype(np.uint16))
    sixteen.save(tmp_path / "g16.png")
    assert inputs.load_png(tmp_path / "g16.png").shape == (1, 1, 28, 28)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ValueError, match="cannot be read"):
        inputs.load_png(tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        inputs.load_png(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="inside the 28x28"):
        inputs.rect_mask([0, 30, 0, 28])


def test_anagram_view_setting_in_the_schema():
    """part_a.<model>.anagram_view: flip by default (the course), rotate accepted, anything else refused."""
    from snakemake.utils import validate

    schema = str(SMOKE.parent / "schema.yaml")
    cfg = yaml.safe_load(SMOKE.read_text())
    for section in ("mnist", "deepfloyd"):
        cfg["part_a"][section].pop("anagram_view", None)
    validate(cfg, schema)
    assert cfg["part_a"]["mnist"]["anagram_view"] == cfg["part_a"]["deepfloyd"]["anagram_view"] == "flip"
    cfg["part_a"]["mnist"]["anagram_view"] = "rotate"
    validate(cfg, schema)
    cfg["part_a"]["mnist"]["anagram_view"] = "mirror"
    with pytest.raises(Exception, match="mirror"):
        validate(cfg, schema)
