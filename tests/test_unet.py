"""The course UNet: shapes, the per-level widths, and how the conditioning is combined."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fundiff.unet import UNet, UNetConfig

D = 4
N = 3


def make(conditioning="none", time_combine="add", hidden=D, seed=0):
    torch.manual_seed(seed)
    model = UNet(UNetConfig(hidden=hidden, conditioning=conditioning, time_combine=time_combine))
    return model.eval()


def inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 1, 28, 28, generator=g)
    t = torch.rand(N, generator=g)
    c = F.one_hot(torch.tensor([3, 0, 9]), 10).float()
    return x, t, c


VARIANTS = [("none", "add"), ("time", "add"), ("time", "mul"), ("class", "add")]


@pytest.mark.parametrize("conditioning,time_combine", VARIANTS)
def test_output_shape(conditioning, time_combine):
    model = make(conditioning, time_combine)
    x, t, c = inputs()
    out = model(x, None if conditioning == "none" else t, c if conditioning == "class" else None)
    assert out.shape == (N, 1, 28, 28)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("conditioning,time_combine", VARIANTS)
def test_intermediate_widths(conditioning, time_combine):
    model = make(conditioning, time_combine)
    shapes = {}
    handles = [
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape)))
        for name in ("conv_in", "down1", "down2", "flatten", "unflatten", "up1", "up2", "conv_mid")
    ]
    in_shapes = {}
    handles += [
        getattr(model, name).register_forward_pre_hook(lambda m, a, name=name: in_shapes.__setitem__(name, tuple(a[0].shape)))
        for name in ("up1", "up2", "conv_mid")
    ]
    x, t, c = inputs()
    model(x, None if conditioning == "none" else t, c if conditioning == "class" else None)
    for h in handles:
        h.remove()
    assert shapes == {
        "conv_in": (N, D, 28, 28),
        "down1": (N, D, 14, 14),
        "down2": (N, 2 * D, 7, 7),
        "flatten": (N, 2 * D, 1, 1),
        "unflatten": (N, 2 * D, 7, 7),
        "up1": (N, D, 14, 14),
        "up2": (N, D, 28, 28),
        "conv_mid": (N, D, 28, 28),
    }
    # the skip connections concatenate: [bottleneck, down2], [up1, down1], [up2, conv_in]
    assert in_shapes == {"up1": (N, 4 * D, 7, 7), "up2": (N, 2 * D, 14, 14), "conv_mid": (N, 2 * D, 28, 28)}


def test_operations_are_the_course_ones():
    model = make("none")
    conv = model.conv_in[0][0]
    assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 3), (1, 1), (1, 1))
    down = model.down1[0][0]
    assert (down.kernel_size, down.stride, down.padding) == ((3, 3), (2, 2), (1, 1))
    up = model.up1[0][0]
    assert isinstance(up, torch.nn.ConvTranspose2d)
    assert (up.kernel_size, up.stride, up.padding) == ((4, 4), (2, 2), (1, 1))
    unflat = model.unflatten[0]
    assert (unflat.kernel_size, unflat.stride, unflat.padding) == ((7, 7), (7, 7), (0, 0))
    assert isinstance(model.flatten[0], torch.nn.AvgPool2d) and model.flatten[0].kernel_size == 7
    assert isinstance(model.conv_out, torch.nn.Conv2d) and model.conv_out.out_channels == 1


def test_fc_layers_per_variant():
    def fc_names(model):
        return sorted(name for name, _ in model.named_children() if name.startswith("fc"))

    assert fc_names(make("none")) == []
    assert fc_names(make("time")) == ["fc1_t", "fc2_t"]
    cls = make("class")
    assert fc_names(cls) == ["fc1_c", "fc1_t", "fc2_c", "fc2_t"]
    # FCBlock: Linear(in, out), GELU, Linear(out, out)
    assert (cls.fc1_t[0].in_features, cls.fc1_t[2].out_features) == (1, 2 * D)
    assert (cls.fc2_t[0].in_features, cls.fc2_t[2].out_features) == (1, D)
    assert (cls.fc1_c[0].in_features, cls.fc1_c[2].out_features) == (10, 2 * D)
    assert (cls.fc2_c[0].in_features, cls.fc2_c[2].out_features) == (10, D)
    # parameter counts grow with the conditioning
    n = [sum(p.numel() for p in make(k).parameters()) for k in ("none", "time", "class")]
    assert n[0] < n[1] < n[2]


def test_class_model_depends_on_c():
    model = make("class")
    x, t, c = inputs()
    with torch.no_grad():
        cond = model(x, t, c)
        uncond = model(x, t, torch.zeros_like(c))
        other = model(x, t, F.one_hot(torch.tensor([1, 2, 3]), 10).float())
    assert (cond - uncond).abs().max() > 1e-6
    assert (cond - other).abs().max() > 1e-6


def test_time_model_depends_on_t():
    for combine in ("add", "mul"):
        model = make("time", combine)
        x, t, _ = inputs()
        with torch.no_grad():
            assert (model(x, t) - model(x, t * 0.5)).abs().max() > 1e-6


def test_bad_config_and_missing_inputs():
    with pytest.raises(ValueError, match="conditioning"):
        UNetConfig(hidden=4, conditioning="text")
    with pytest.raises(ValueError, match="time_combine"):
        UNetConfig(hidden=4, conditioning="time", time_combine="concat")
    with pytest.raises(ValueError, match="hidden"):
        UNetConfig(hidden=0)
    x, t, c = inputs()
    with pytest.raises(ValueError, match="needs t"):
        make("time")(x)
    with pytest.raises(ValueError, match="needs t"):
        make("class")(x, None, c)
    with pytest.raises(ValueError, match="needs c"):
        make("class")(x, t)


def _capture(model):
    """Record unflatten's output, up1's output, and the inputs of up1 and up2 (conditioned levels)."""
    seen = {}
    hooks = [
        model.unflatten.register_forward_hook(lambda m, i, o: seen.__setitem__("unflatten", o.detach().clone())),
        model.up1.register_forward_hook(lambda m, i, o: seen.__setitem__("up1", o.detach().clone())),
        model.up1.register_forward_pre_hook(lambda m, a: seen.__setitem__("up1_in", a[0].detach().clone())),
        model.up2.register_forward_pre_hook(lambda m, a: seen.__setitem__("up2_in", a[0].detach().clone())),
    ]
    return seen, hooks


@pytest.mark.parametrize("combine", ["add", "mul"])
def test_time_combination_matches_manual(combine):
    model = make("time", combine)
    x, t, _ = inputs()
    seen, hooks = _capture(model)
    with torch.no_grad():
        model(x, t)
        t1 = model.fc1_t(t.reshape(-1, 1))[:, :, None, None]
        t2 = model.fc2_t(t.reshape(-1, 1))[:, :, None, None]
    for h in hooks:
        h.remove()
    assert t1.shape == (N, 2 * D, 1, 1) and t2.shape == (N, D, 1, 1)
    bottleneck = seen["up1_in"][:, : 2 * D]  # cat([bottleneck, skip3])
    level2 = seen["up2_in"][:, :D]  # cat([up1, skip2])
    if combine == "add":
        want1, want2 = seen["unflatten"] + t1, seen["up1"] + t2
        other1 = seen["unflatten"] * t1
    else:
        want1, want2 = seen["unflatten"] * t1, seen["up1"] * t2
        other1 = seen["unflatten"] + t1
    torch.testing.assert_close(bottleneck, want1, rtol=0, atol=1e-6)
    torch.testing.assert_close(level2, want2, rtol=0, atol=1e-6)
    assert (bottleneck - other1).abs().max() > 1e-3  # the two modes really differ


def test_class_combination_matches_manual():
    model = make("class")
    x, t, c = inputs()
    seen, hooks = _capture(model)
    with torch.no_grad():
        model(x, t, c)
        t1 = model.fc1_t(t.reshape(-1, 1))[:, :, None, None]
        t2 = model.fc2_t(t.reshape(-1, 1))[:, :, None, None]
        c1 = model.fc1_c(c)[:, :, None, None]
        c2 = model.fc2_c(c)[:, :, None, None]
    for h in hooks:
        h.remove()
    torch.testing.assert_close(seen["up1_in"][:, : 2 * D], c1 * seen["unflatten"] + t1, rtol=0, atol=1e-6)
    torch.testing.assert_close(seen["up2_in"][:, :D], c2 * seen["up1"] + t2, rtol=0, atol=1e-6)


def test_unconditional_passes_bottleneck_through():
    model = make("none")
    x, _, _ = inputs()
    seen, hooks = _capture(model)
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    assert torch.equal(seen["up1_in"][:, : 2 * D], seen["unflatten"])
    assert torch.equal(seen["up2_in"][:, :D], seen["up1"])


def test_backward_reaches_every_parameter():
    model = make("class").train()
    x, t, c = inputs()
    model(x, t, c).pow(2).mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []


def test_final_model_round_trips_through_safetensors_and_samples(tmp_path):
    """export_final writes the weights the samples use (the EMA where the recipe keeps one) as
    safetensors + JSON; load_final gives back a UNet with those weights, which samples."""
    import json

    from fundiff import ddpm, train
    from fundiff.unet import final_info, load_final

    from .test_train import small_recipe

    recipe = small_recipe("ddpm/class_cond", ema_decay=0.9)
    state = train.init_checkpoint(recipe, "ddpm/class_cond", seed=3)
    # make the EMA differ from the raw weights, as after training
    state["ema"] = {k: (v + 0.5 if k.startswith("module.") and v.is_floating_point() else v) for k, v in state["ema"].items()}
    train.export_final(state, tmp_path / "final.safetensors")
    assert (tmp_path / "final.json").is_file()
    assert (tmp_path / "final.safetensors").stat().st_mode & 0o777 == 0o666 & ~_umask()  # not safetensors' private 0600
    info = final_info(tmp_path)
    assert info["architecture"] == {**state["model_config"]} and info["ema_weights"] is True and info["model"] == "ddpm/class_cond"
    assert json.loads((tmp_path / "final.json").read_text())["recipe"]["num_steps"] == recipe["num_steps"]
    model = load_final(tmp_path / "final.safetensors")
    expected = train.build_model(state, use_ema=True).eval()
    for (k, a), b in zip(model.state_dict().items(), expected.state_dict().values()):
        assert torch.equal(a, b), k
    assert not torch.equal(model.state_dict()["conv_out.weight"], state["model"]["conv_out.weight"])  # the EMA, not the raw weights
    x, c = torch.randn(4, 1, 28, 28), torch.eye(10)[:4]
    t = torch.full((4,), 0.5)
    with torch.no_grad():
        assert torch.equal(model(x, t, c), expected(x, t, c))
        samples, _ = ddpm.sample(model, (4, 1, 28, 28), train.schedule_for(info["recipe"]), torch.Generator().manual_seed(0), cond=c, guidance=2.0, num_inference_steps=3)
    assert samples.shape == (4, 1, 28, 28) and torch.isfinite(samples).all()
    (tmp_path / "final.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="is not a fundiff-unet description"):
        load_final(tmp_path)


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask
