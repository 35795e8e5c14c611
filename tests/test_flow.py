"""Flow matching (2025 edition): interpolation, target, Euler sampler, conditioning, training."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import yaml

from fundiff import flow, recipes, train
from fundiff.device import resolve
from fundiff.unet import UNet, UNetConfig

from .test_workflow import SMOKE


def test_interpolation_and_target_match_numpy():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(4, 1, 28, 28, generator=g), torch.rand(4, 1, 28, 28, generator=g)
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    got = flow.interpolate(x0, x1, t).numpy()
    a, b, tt = x0.numpy().astype(np.float64), x1.numpy().astype(np.float64), t.numpy().astype(np.float64)
    want = (1 - tt[:, None, None, None]) * a + tt[:, None, None, None] * b
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # the ends of the path are the noise and the data themselves
    assert torch.equal(flow.interpolate(x0, x1, torch.zeros(4)), x0)
    assert torch.equal(flow.interpolate(x0, x1, torch.ones(4)), x1)
    np.testing.assert_allclose(flow.velocity_target(x0, x1).numpy(), b - a, atol=1e-6)


def test_euler_step_by_hand():
    x = torch.tensor([[1.0, -2.0]])
    u = torch.tensor([[3.0, 0.5]])
    # 1 + 0.1 * 3 = 1.3, -2 + 0.1 * 0.5 = -1.95
    assert torch.allclose(flow.euler_step(x, u, 0.1), torch.tensor([[1.3, -1.95]]))


def test_euler_sampler_integrates_a_constant_field_exactly():
    """With u(x, t) = c the Euler path from x0 ends at x0 + c, whatever the step count."""
    target = torch.full((3, 1, 28, 28), 0.7)

    def model(x, t, c):
        return target - 0.0 * x

    for steps in (1, 7, 50):
        g = torch.Generator().manual_seed(1)
        x0 = torch.randn((3, 1, 28, 28), generator=torch.Generator().manual_seed(1))
        out, frames = flow.sample(model, (3, 1, 28, 28), steps, g, record=3)
        assert torch.allclose(out, x0 + target, atol=1e-5)
        assert len(frames) == min(3, steps) and torch.equal(frames[-1], out)


def test_guided_velocity_one_batched_call():
    calls = []

    def model(x, t, c):
        calls.append((x.shape[0], c.clone()))
        return torch.where(c.sum(dim=1)[:, None, None, None] > 0, torch.ones_like(x), torch.zeros_like(x))

    x = torch.zeros(5, 1, 28, 28)
    c = torch.nn.functional.one_hot(torch.arange(5), 10).float()
    u = flow.guided_velocity(model, x, torch.zeros(5), c, guidance=5.0)
    assert len(calls) == 1 and calls[0][0] == 10
    assert calls[0][1][5:].abs().sum() == 0 and torch.equal(calls[0][1][:5], c)
    # u_uncond + 5 (u_cond - u_uncond) = 0 + 5 (1 - 0)
    assert torch.allclose(u, torch.full_like(x, 5.0))


def _modulation_inputs(model, t, c):
    (s1, b1), (s2, b2) = model._modulation(t, c)
    return s1, b1, s2, b2


def test_multiplicative_time_conditioning():
    torch.manual_seed(0)
    model = UNet(UNetConfig(hidden=4, conditioning="time", time_combine="mul")).eval()
    t = torch.tensor([0.0, 0.3])
    s1, b1, s2, b2 = _modulation_inputs(model, t, None)
    # unflatten * t1, up1 * t2: scale is the FC embedding of t, shift is zero
    assert s1.shape == (2, 8, 1, 1) and s2.shape == (2, 4, 1, 1)
    assert torch.equal(s1, model.fc1_t(t[:, None])[:, :, None, None]) and b1 == 0.0
    assert torch.equal(s2, model.fc2_t(t[:, None])[:, :, None, None]) and b2 == 0.0
    # and it changes the output (t = 0 gives FC(0) = bias path, not zero)
    x = torch.rand(2, 1, 28, 28)
    assert model(x, t).shape == (2, 1, 28, 28)
    assert not torch.allclose(model(x, torch.tensor([0.0, 0.0])), model(x, torch.tensor([1.0, 1.0])))


def test_class_conditioning_with_zero_class():
    torch.manual_seed(0)
    model = UNet(UNetConfig(hidden=4, conditioning="class")).eval()
    t = torch.tensor([0.5])
    s1, b1, s2, b2 = _modulation_inputs(model, t, torch.zeros(1, 10))
    # c = 0: c1 = fc1_c(0) (the MLP's response to zeros), shift t1
    assert torch.equal(s1, model.fc1_c(torch.zeros(1, 10))[:, :, None, None])
    assert torch.equal(b1, model.fc1_t(t[:, None])[:, :, None, None])
    assert torch.equal(b2, model.fc2_t(t[:, None])[:, :, None, None])


def _smoke_config():
    return yaml.safe_load(SMOKE.read_text())


def _synthetic(n=256):
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 10, (n,), generator=g)
    images = torch.zeros(n, 1, 28, 28)
    for i, k in enumerate(labels.tolist()):  # a bar whose position is the class
        images[i, 0, 2 * k + 4 : 2 * k + 7, 4:24] = 1.0
    return images, labels


@pytest.mark.parametrize("model", ["flow/time_cond", "flow/class_cond", "flow/class_cond_constant_lr"])
def test_flow_training_lowers_loss_and_resumes_bit_identically(tmp_path, model):
    cfg = _smoke_config()
    settings = recipes.model_settings(cfg, model)
    settings.update(hidden=8, batch_size=32, epochs=3, lr=3e-3)
    recipe = recipes.recipe(cfg, model)
    images, labels = _synthetic()
    runtime = resolve("cpu", "fp32")

    straight = train.init_checkpoint(recipe, model, seed=5)
    for _ in range(3):
        straight = train.train_epoch(straight, images, labels, runtime)
    losses = straight["losses"].view(3, -1).mean(dim=1)
    assert losses[-1] < 0.8 * losses[0], losses

    resumed = train.init_checkpoint(recipe, model, seed=5)
    resumed = train.train_epoch(resumed, images, labels, runtime)
    train.save_checkpoint(resumed, tmp_path / "epoch_001.pt")
    resumed = train.load_checkpoint(tmp_path / "epoch_001.pt", expect_recipe=recipe)
    for _ in range(2):
        resumed = train.train_epoch(resumed, images, labels, runtime)
    for key in ("model", "ema"):
        if straight[key] is None:
            assert resumed[key] is None
            continue
        for name, tensor in straight[key].items():
            assert torch.equal(tensor, resumed[key][name]), (key, name)
    assert torch.equal(straight["losses"], resumed["losses"])
    assert torch.equal(straight["generator"], resumed["generator"])


def test_ema_weights_are_used_for_sampling():
    cfg = _smoke_config()
    recipe = recipes.recipe(cfg, "flow/class_cond_constant_lr")
    assert recipe["ema_decay"] == cfg["part_b"]["flow"]["class_cond_constant_lr"]["ema_decay"]
    recipe["batch_size"] = 16  # 4 steps: the first update copies the weights, later ones average
    images, labels = _synthetic(64)
    state = train.train_epoch(train.init_checkpoint(recipe, "m", seed=1), images, labels, resolve("cpu", "fp32"))
    plain, ema = train.build_model(state), train.build_model(state, use_ema=True)
    w_plain, w_ema = plain.conv_out.weight, ema.conv_out.weight
    assert not torch.equal(w_plain, w_ema)
    assert torch.equal(w_ema, state["ema"]["module.conv_out.weight"])
    # without an EMA in the recipe, use_ema falls back to the trained weights themselves
    recipe2 = copy.deepcopy(recipe)
    recipe2["ema_decay"] = None
    state2 = train.init_checkpoint(recipe2, "m", seed=1)
    assert state2["ema"] is None
    assert torch.equal(train.build_model(state2, use_ema=True).conv_out.weight, train.build_model(state2).conv_out.weight)


def test_flow_recipes_follow_the_2025_spec():
    cfg = yaml.safe_load((SMOKE.parent / "config.yaml").read_text())
    tc, cc = recipes.recipe(cfg, "flow/time_cond"), recipes.recipe(cfg, "flow/class_cond")
    assert tc["objective"] == "flow" and tc["time_combine"] == "mul" and tc["conditioning"] == "time"
    assert (tc["batch_size"], tc["hidden"], tc["lr"], tc["epochs"], tc["lr_decay"]) == (64, 64, 1e-2, 10, 0.1)
    assert cc["conditioning"] == "class" and cc["p_uncond"] == 0.1
    assert recipes.recipe(cfg, "flow/class_cond_constant_lr")["lr_decay"] is None
    assert recipes.recipe(cfg, "ddpm/time_cond")["time_combine"] == "add"
    assert recipes.recipe(cfg, "pure_noise")["pure_noise"] is True
