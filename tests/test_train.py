"""Training: class dropout, losses, learning, checkpoint round trips and resume bit-identity."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from fundiff import device, machine, recipes, train

REPO = Path(__file__).resolve().parents[1]
SMOKE = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())

FP32 = device.resolve("cpu", "fp32")


def small_recipe(model: str, **override) -> dict:
    """The smoke config's recipe for `model`, shrunk: D = 4, batches of 32, 2 epochs."""
    r = recipes.recipe(SMOKE, model)
    r.update({"hidden": 4, "batch_size": 32, "epochs": 2, **override})
    return r


OBJECTIVES = {
    "denoise": "single_step",
    "pure_noise": "pure_noise",
    "ddpm_time": "ddpm/time_cond",
    "ddpm_class": "ddpm/class_cond",
    "flow_time": "flow/time_cond",
    "flow_class_ema": "flow/class_cond_constant_lr",
}


def synthetic(n: int = 128, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Digit-like images in [0, 1]: class k is a bright bar at row 2 + 2k, plus a little noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    images = torch.zeros(n, 1, 28, 28)
    for k in range(10):
        images[labels == k, 0, 2 + 2 * k : 4 + 2 * k, 4:24] = 1.0
    images = (images + 0.05 * torch.rand(images.shape, generator=g)).clamp(0, 1)
    return images, labels


def assert_same(a, b, where="state"):
    """Recursive, bit-exact comparison of two checkpoints (tensors with torch.equal)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f"{where} differs (max |diff| {(a.double() - b.double()).abs().max().item()})"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(map(str, a))} vs {sorted(map(str, b))}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


# ---------------------------------------------------------------- class dropout


def test_one_hot_with_dropout_rate():
    labels = torch.randint(0, 10, (20000,), generator=torch.Generator().manual_seed(0))
    c = train.one_hot_with_dropout(labels, 0.1, torch.Generator().manual_seed(1))
    assert c.shape == (20000, 10) and c.dtype == torch.float32
    dropped = c.sum(dim=1) == 0
    assert abs(dropped.float().mean().item() - 0.1) < 0.01
    assert torch.equal(c[~dropped], F.one_hot(labels[~dropped], 10).float())
    assert torch.equal(c[dropped], torch.zeros(int(dropped.sum()), 10))


def test_one_hot_with_dropout_extremes_and_determinism():
    labels = torch.arange(100) % 10
    assert torch.equal(train.one_hot_with_dropout(labels, 0.0, torch.Generator().manual_seed(0)), F.one_hot(labels, 10).float())
    assert torch.equal(train.one_hot_with_dropout(labels, 1.0, torch.Generator().manual_seed(0)), torch.zeros(100, 10))
    a = train.one_hot_with_dropout(labels, 0.5, torch.Generator().manual_seed(3))
    b = train.one_hot_with_dropout(labels, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


# ---------------------------------------------------------------- losses


@pytest.mark.parametrize("kind", sorted(OBJECTIVES))
def test_training_loss_finite(kind):
    r = small_recipe(OBJECTIVES[kind])
    state = train.init_checkpoint(r, kind, seed=1)
    model = train.build_model(state)
    x, labels = synthetic(16)
    loss = train.training_loss(model, x, labels, r, train.schedule_for(r), torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    # eps / velocity targets have unit variance: an untrained net scores around 1, not 0 or 1e3
    assert 0.01 < loss.item() < 20
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_denoise_loss_is_mse_to_clean():
    """With an identity 'model', the denoising loss is E[(sigma eps)^2] = sigma^2."""
    r = small_recipe("single_step")
    x, labels = synthetic(64)
    loss = train.training_loss(lambda z: z, x, labels, r, None, torch.Generator().manual_seed(0))
    assert loss.item() == pytest.approx(r["sigma"] ** 2, rel=0.05)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    assert loss.item() == pytest.approx(F.mse_loss(x + r["sigma"] * noise, x).item(), rel=1e-6)


def test_ddpm_loss_of_perfect_model_is_zero():
    """A model that returns the true noise scores 0: the loss target is eps and t ~ U{1..T}."""
    r = small_recipe("ddpm/time_cond")
    sched = train.schedule_for(r)
    x, labels = synthetic(32)
    g = torch.Generator().manual_seed(5)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    g2 = torch.Generator().manual_seed(5)
    torch.randn(x.shape, generator=g2)
    t = torch.randint(1, r["num_steps"] + 1, (x.shape[0],), generator=g2)
    seen = {}

    def oracle(x_t, t_in, c):
        seen["t_in"] = t_in
        return noise

    loss = train.training_loss(oracle, x, labels, r, sched, g)
    assert loss.item() == 0.0
    assert torch.equal(seen["t_in"], t.float() / r["num_steps"])
    assert seen["t_in"].min() > 0 and seen["t_in"].max() <= 1


@pytest.mark.parametrize("kind", ["denoise", "ddpm_time", "flow_time"])
def test_loss_goes_down(kind):
    r = small_recipe(OBJECTIVES[kind], hidden=8, epochs=4, lr=1e-2 if kind != "denoise" else 3e-3)
    images, labels = synthetic(256)
    state = train.init_checkpoint(r, kind, seed=0)
    for _ in range(4):
        state = train.train_epoch(state, images, labels, FP32)
    assert state["epoch"] == 4 and state["epoch_ends"] == [8, 16, 24, 32]
    losses = state["losses"]
    assert losses.shape == (32,) and torch.isfinite(losses).all()
    first, last = losses[:8].mean().item(), losses[-8:].mean().item()
    assert last < 0.6 * first, (first, last)  # observed: 0.065 -> 0.004, 0.66 -> 0.22, 0.70 -> 0.25


# ---------------------------------------------------------------- checkpoints and resume


def resume_matches(r, name, runtime, tmp_path):
    images, labels = synthetic(64)
    start = train.init_checkpoint(r, name, seed=180)
    assert start["epoch"] == 0 and start["losses"].numel() == 0
    one_go = train.train_epoch(train.train_epoch(start, images, labels, runtime), images, labels, runtime)

    first = train.train_epoch(start, images, labels, runtime)
    assert not torch.equal(first["generator"], start["generator"])  # the data stream moved on
    path = tmp_path / name / "epoch_001.pt"
    train.save_checkpoint(first, path)
    loaded = train.load_checkpoint(path, expect_recipe=r)
    resumed = train.train_epoch(loaded, images, labels, runtime)

    assert one_go["epoch"] == resumed["epoch"] == 2
    assert one_go["losses"].shape == (4,) and resumed["epoch_ends"] == [2, 4]
    assert_same(one_go, resumed)
    # and it is not trivially equal: training changed the weights
    assert any(not torch.equal(start["model"][k], one_go["model"][k]) for k in start["model"] if start["model"][k].is_floating_point())
    return one_go


@pytest.mark.parametrize("kind", ["denoise", "ddpm_time", "ddpm_class", "flow_class_ema"])
def test_resume_is_bit_identical(kind, tmp_path):
    r = small_recipe(OBJECTIVES[kind])
    state = resume_matches(r, kind, FP32, tmp_path)
    if kind == "flow_class_ema":
        assert state["ema"] is not None and "n_averaged" in state["ema"]
        assert state["ema"]["n_averaged"].item() == 4


def test_resume_is_bit_identical_auto_precision(tmp_path):
    """resolve('cpu', 'auto'): channels_last, plus bf16 autocast on CPUs with AMX/AVX512-bf16."""
    runtime = device.resolve("cpu", "auto")
    assert runtime.device.type == "cpu" and runtime.channels_last
    assert runtime.bf16 == machine.cpu_has_fast_bf16()
    state = resume_matches(small_recipe("ddpm/class_cond"), "auto", runtime, tmp_path)
    assert torch.isfinite(state["losses"]).all()
    assert all(v.is_contiguous() for v in state["model"].values())


def test_same_seed_same_run_other_seed_differs():
    r = small_recipe("ddpm/time_cond")
    images, labels = synthetic(32)
    a = train.train_epoch(train.init_checkpoint(r, "m", 1), images, labels, FP32)
    b = train.train_epoch(train.init_checkpoint(r, "m", 1), images, labels, FP32)
    c = train.train_epoch(train.init_checkpoint(r, "m", 2), images, labels, FP32)
    d = train.train_epoch(train.init_checkpoint(r, "other", 1), images, labels, FP32)
    assert_same(a, b)
    assert not torch.equal(a["losses"], c["losses"]) and not torch.equal(a["losses"], d["losses"])


def test_train_epoch_leaves_its_input_alone():
    """train_epoch(state) must not modify `state` (e.g. Adam's moments loaded by reference)."""
    r = small_recipe("ddpm/time_cond", epochs=3)
    images, labels = synthetic(32)
    s1 = train.train_epoch(train.init_checkpoint(r, "m", 0), images, labels, FP32)
    snapshot = copy.deepcopy(s1)
    s2 = train.train_epoch(s1, images, labels, FP32)
    assert_same(s1, snapshot)
    s2_again = train.train_epoch(s1, images, labels, FP32)
    assert_same(s2, s2_again)


def test_train_epoch_refuses_past_the_last_epoch():
    r = small_recipe("single_step", epochs=1)
    images, labels = synthetic(32)
    state = train.train_epoch(train.init_checkpoint(r, "m", 0), images, labels, FP32)
    with pytest.raises(ValueError, match="already has 1 of 1 epochs"):
        train.train_epoch(state, images, labels, FP32)


@pytest.mark.parametrize("kind", ["ddpm_class", "flow_class_ema"])
def test_epoch_zero_without_optimizer_trains_as_one_with_a_fresh_adam(kind):
    """Epoch 0 stores no Adam or LR-schedule state (building them only to save their initial state
    cost every init job a torch._dynamo import); epoch 1 from it equals epoch 1 from a checkpoint
    that carries a fresh Adam's and ExponentialLR's state dicts, the earlier format."""
    r = small_recipe(OBJECTIVES[kind], epochs=2)
    images, labels = synthetic(32)
    start = train.init_checkpoint(r, "m", 3)
    assert start["optimizer"] is None and start["lr_scheduler"] is None
    model = train.UNet(train.model_config(r))
    adam = torch.optim.Adam(model.parameters(), lr=r["lr"])
    sched = train.make_lr_scheduler(adam, r)
    explicit = {**start, "optimizer": adam.state_dict(), "lr_scheduler": sched.state_dict()}
    a, b = train.train_epoch(start, images, labels, FP32), train.train_epoch(explicit, images, labels, FP32)
    assert_same(a, b)
    assert_same(train.train_epoch(a, images, labels, FP32), train.train_epoch(b, images, labels, FP32))


def test_init_checkpoint_does_not_import_dynamo():
    recipe = json.dumps(small_recipe("flow/class_cond_constant_lr"))
    code = f"import json, sys\nfrom fundiff import train\ntrain.init_checkpoint(json.loads({recipe!r}), 'm', 0)\nprint('torch._dynamo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False"]


def test_init_checkpoint_rejects_unknown_objective():
    with pytest.raises(ValueError, match="objective"):
        train.init_checkpoint({**small_recipe("single_step"), "objective": "gan"}, "m", 0)


def test_build_model_round_trip(tmp_path):
    r = small_recipe("ddpm/class_cond")
    state = train.init_checkpoint(r, "m", 0)
    train.save_checkpoint(state, tmp_path / "c.pt")
    model = train.build_model(train.load_checkpoint(tmp_path / "c.pt"))
    assert model.config.hidden == 4 and model.config.conditioning == "class"
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["model"][k]), k
    assert not list(tmp_path.glob(".*"))  # the atomic write left no temporary behind


def _write_good(tmp_path):
    r = small_recipe("ddpm/time_cond")
    path = tmp_path / "ckpt" / "epoch_000.pt"
    train.save_checkpoint(train.init_checkpoint(r, "m", 0), path)
    return r, path


def test_load_checkpoint_missing(tmp_path):
    path = tmp_path / "nope" / "epoch_003.pt"
    with pytest.raises(train.CheckpointError) as err:
        train.load_checkpoint(path)
    msg = str(err.value)
    assert str(path) in msg and "does not exist" in msg and "rerun" in msg.lower()


def test_load_checkpoint_truncated(tmp_path):
    _, path = _write_good(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(train.CheckpointError) as err:
        train.load_checkpoint(path)
    msg = str(err.value)
    assert str(path) in msg and "delete it and rerun" in msg and "truncated" in msg


def test_load_checkpoint_not_a_checkpoint(tmp_path):
    for i, obj in enumerate([{"weights": torch.zeros(3)}, [torch.zeros(1)], {"model": {}}]):
        path = tmp_path / f"other{i}.pt"
        torch.save(obj, path)
        with pytest.raises(train.CheckpointError) as err:
            train.load_checkpoint(path)
        msg = str(err.value)
        assert str(path) in msg and "not a fun-with-diffusion checkpoint" in msg and "Delete it and rerun" in msg
    text = tmp_path / "text.pt"
    text.write_text("hello")
    with pytest.raises(train.CheckpointError, match="delete it and rerun"):
        train.load_checkpoint(text)


def test_load_checkpoint_recipe_mismatch(tmp_path):
    r, path = _write_good(tmp_path)
    assert train.load_checkpoint(path, expect_recipe=r)["recipe"] == r
    with pytest.raises(train.CheckpointError) as err:
        train.load_checkpoint(path, expect_recipe={**r, "hidden": 8})
    msg = str(err.value)
    assert str(path) in msg and "hidden: checkpoint 4 vs config 8" in msg
    assert "Delete" in msg and "rerun" in msg
    with pytest.raises(train.CheckpointError, match="lr: checkpoint 0.001 vs config 0.002"):
        train.load_checkpoint(path, expect_recipe={**r, "lr": 2e-3})


# ---------------------------------------------------------------- LR schedule


@pytest.mark.parametrize("epochs", [1, 5, 20])
def test_lr_scheduler_decays_to_lr_times_decay(epochs):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1e-3)
    sched = train.make_lr_scheduler(opt, {"lr_decay": 0.1, "epochs": epochs})
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(epochs):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == 1e-3
    assert lrs[-1] == pytest.approx(1e-4, rel=1e-9)
    assert all(b < a for a, b in zip(lrs, lrs[1:]))
    if epochs > 1:
        assert lrs[1] == pytest.approx(1e-3 * 0.1 ** (1 / epochs), rel=1e-9)


def test_lr_scheduler_constant_without_decay():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=2e-3)
    sched = train.make_lr_scheduler(opt, {"lr_decay": None, "epochs": 10})
    for _ in range(10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == 2e-3


def test_lr_decays_across_resumed_epochs(tmp_path):
    """Through train_epoch and a checkpoint round trip, epoch e runs at lr * decay^(e/epochs)."""
    r = small_recipe("ddpm/time_cond", epochs=3, lr=1e-3, lr_decay=0.1)
    images, labels = synthetic(32)
    state = train.init_checkpoint(r, "m", 0)
    for e in range(1, 4):
        state = train.train_epoch(state, images, labels, FP32)
        train.save_checkpoint(state, tmp_path / "c.pt")
        state = train.load_checkpoint(tmp_path / "c.pt")
        assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-3 * 0.1 ** (e / 3), rel=1e-9)


# ---------------------------------------------------------------- CUDA graphs (run where there is a GPU)


def _two_epochs_each_way(rt, kind: str, flag: str, **fixed):
    """Two epochs of a small recipe (warm-up on, a smaller last batch) with train_epoch's keyword
    argument <flag> True, then False, from the same start, the keyword arguments `fixed` passed
    alike to both: (recipe, images, labels, {flag value: (state, dynamo's stats)})."""
    import torch._dynamo

    r = small_recipe(OBJECTIVES[kind], hidden=8, warmup_steps=4, lr=3e-3)
    images, labels = synthetic(200)
    images, labels = images.to(rt.device), labels.to(rt.device)
    runs = {}
    for value in (True, False):
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        state = train.init_checkpoint(r, kind, seed=3)
        for _ in range(2):
            state = train.train_epoch(state, images, labels, rt, **fixed, **{flag: value})
        runs[value] = (state, dict(torch._dynamo.utils.counters["stats"]))
    return r, images, labels, runs


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the captured step exists on CUDA only)")
@pytest.mark.parametrize("kind", ["ddpm_class", "flow_class_ema", "denoise"])
def test_cuda_graph_step_matches_eager(kind):
    """Two epochs with the step replayed as a CUDA graph equal two eager epochs on the same GPU
    (fp32, warm-up on, an EMA where the recipe has one, a smaller last batch): same losses at
    every step and same weights, to float rounding."""
    rt = device.resolve("cuda", "fp32")
    r, images, labels, runs = _two_epochs_each_way(rt, kind, "cuda_graphs")
    runs = {key: state for key, (state, _) in runs.items()}
    g, e = runs[True], runs[False]
    assert g["losses"].shape == e["losses"].shape == (2 * 7,)
    torch.testing.assert_close(g["losses"], e["losses"], rtol=1e-4, atol=1e-5)
    # the same function: outputs on a fixed batch with batch statistics (weights are not compared one
    # by one: a convolution's bias before a BatchNorm gets a gradient of pure rounding noise, which
    # Adam turns into full-size steps, so those biases wander differently between any two runs)
    x, y = images[:32], labels[:32]
    t = torch.linspace(0.05, 1.0, 32, device=rt.device)
    c = F.one_hot(y, 10).float()
    outs = {}
    for key, st in runs.items():
        for use_ema in (False, True):
            net = train.build_model(st, rt, use_ema=use_ema).train()
            with torch.no_grad():
                outs[key, use_ema] = net(x) if r["objective"] == "denoise" else net(x, t, c if r.get("conditioning") == "class" else None)
    for use_ema in (False, True):
        torch.testing.assert_close(outs[True, use_ema], outs[False, use_ema], rtol=1e-3, atol=1e-3)
    assert g["optimizer"]["param_groups"][0]["lr"] == pytest.approx(e["optimizer"]["param_groups"][0]["lr"])


# ---------------------------------------------------------------- torch.compile (python -m bench recipe --compile)


def test_training_options_default_to_the_pipeline_behaviour():
    """train_epoch and EpochRun take the CUDA-graph and compile choices as keyword arguments
    (no module state): by default the step is graphed on CUDA and the UNet runs eagerly."""
    import inspect

    for fn in (train.train_epoch, train.EpochRun):
        params = inspect.signature(fn).parameters
        assert params["cuda_graphs"].default is True and params["compile_unet"].default is False
        assert params["cuda_graphs"].kind is params["compile_unet"].kind is inspect.Parameter.KEYWORD_ONLY
    assert not hasattr(train, "CUDA_GRAPHS") and not hasattr(train, "COMPILE")


def test_compiled_training_matches_eager():
    """train_epoch(compile_unet=True) (python -m bench recipe --compile): two epochs of a
    class-conditioned DDPM with the UNet compiled by inductor give the losses of two eager epochs
    (fp32, to float rounding), and the UNet is compiled once per batch shape (full batches and the
    smaller last one), not per epoch."""
    rt = device.resolve("cpu", "fp32")
    *_, runs = _two_epochs_each_way(rt, "ddpm_class", "compile_unet")
    (c, stats), (e, _) = runs[True], runs[False]
    assert c["losses"].shape == e["losses"].shape == (2 * 7,)
    torch.testing.assert_close(c["losses"], e["losses"], rtol=1e-4, atol=1e-5)
    assert 1 <= stats.get("unique_graphs", 0) <= 2, stats


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (compile inside the captured step)")
def test_compiled_cuda_graph_step_matches_eager():
    """The compiled UNet inside the captured CUDA graph step (what python -m bench recipe --compile
    runs on a GPU) gives the eager losses: nothing recompiles during the capture."""
    rt = device.resolve("cuda", "bf16")
    *_, runs = _two_epochs_each_way(rt, "flow_class_ema", "compile_unet", cuda_graphs=True)
    (c, _), (e, _) = runs[True], runs[False]
    torch.testing.assert_close(c["losses"], e["losses"], rtol=5e-2, atol=5e-3)


# ---------------------------------------------------------------- how t is drawn


def test_p2_probabilities_follow_the_snr_formula():
    """P(t) = (1 + SNR_t)^-gamma / sum, SNR_t = abar_t / (1 - abar_t), computed here from the betas in float64."""
    from fundiff import ddpm

    schedule = ddpm.make_schedule(300, 1e-4, 0.02)
    betas = torch.linspace(1e-4, 0.02, 300, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    for gamma in (0.5, 1.0, 2.0):
        w = (1 + abar / (1 - abar)) ** -gamma
        expected = w / w.sum()
        got = ddpm.p2_probabilities(schedule, gamma).double()
        assert torch.allclose(got, expected, rtol=1e-4, atol=1e-9)
    probs = ddpm.p2_probabilities(schedule, 1.0)
    assert probs[0] < 1e-3 * probs[-1] and torch.all(probs[1:] >= probs[:-1])  # the noisy end gets the training


def test_p2_draws_match_their_distribution():
    from fundiff import ddpm

    schedule = ddpm.make_schedule(300, 1e-4, 0.02)
    t = ddpm.draw_timesteps(200_000, schedule, torch.Generator().manual_seed(0), "p2", 1.0)
    assert t.min() >= 1 and t.max() <= 300
    freq = torch.bincount(t, minlength=301)[1:].double() / t.numel()
    probs = ddpm.p2_probabilities(schedule, 1.0).double()
    # per decile of t: observed share within 0.005 of the expected one
    for lo in range(0, 300, 30):
        assert abs(freq[lo : lo + 30].sum() - probs[lo : lo + 30].sum()) < 0.005
    assert abs(t.double().mean() - (torch.arange(1, 301) * probs).sum()) < 0.5


def test_logit_normal_times():
    from fundiff import flow

    t = flow.draw_t(200_000, torch.Generator().manual_seed(0), "logit_normal", 1.0)
    assert 0 < t.min() and t.max() < 1
    logit = torch.log(t / (1 - t))
    assert abs(logit.mean()) < 0.01 and abs(logit.std() - 1.0) < 0.01
    assert abs(t.median() - 0.5) < 0.005 and ((t > 0.25) & (t < 0.75)).float().mean() > 0.7  # uniform: 0.5


def test_uniform_draws_are_the_course_ones():
    """Without t_sampling the recipe has no key and the draws are torch's randint / rand, as before."""
    from fundiff import ddpm, flow

    for model in ("ddpm/time_cond", "flow/time_cond"):
        assert "t_sampling" not in recipes.recipe(SMOKE, model)
    schedule = ddpm.make_schedule(300)
    assert torch.equal(ddpm.draw_timesteps(50, schedule, torch.Generator().manual_seed(3)),
                       torch.randint(1, 301, (50,), generator=torch.Generator().manual_seed(3)))
    assert torch.equal(flow.draw_t(50, torch.Generator().manual_seed(3)), torch.rand(50, generator=torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match="uniform or p2"):
        ddpm.draw_timesteps(5, schedule, torch.Generator(), "logit_normal")
    with pytest.raises(ValueError, match="uniform or logit_normal"):
        flow.draw_t(5, torch.Generator(), "p2")


@pytest.mark.parametrize("model,kind", [("ddpm/time_cond", "p2"), ("flow/time_cond", "logit_normal")])
def test_t_sampling_reaches_the_training_draws(model, kind):
    cfg = copy.deepcopy(SMOKE)
    edition, name = model.split("/")
    cfg["part_b"][edition][name].update(t_sampling=kind, t_sampling_param=0.5)
    r = recipes.recipe(cfg, model)
    assert (r["t_sampling"], r["t_sampling_param"]) == (kind, 0.5)
    schedule = train.schedule_for(r)
    t = train.draw_batch(r, 4000, torch.Generator().manual_seed(1), schedule)["t"]
    base = train.draw_batch(recipes.recipe(SMOKE, model), 4000, torch.Generator().manual_seed(1), schedule)["t"]
    if kind == "p2":  # more of the noisy half than uniform's 50 %
        half = schedule.num_steps / 2
        assert (t > half).float().mean() > 0.6 and abs((base > half).float().mean() - 0.5) < 0.03
    else:  # more of the middle than uniform's 50 %
        assert ((t > 0.25) & (t < 0.75)).float().mean() > 0.6
