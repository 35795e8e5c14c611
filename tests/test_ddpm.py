"""DDPM: schedule, forward noising, the reverse step (against numpy and diffusers), CFG, sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fundiff import ddpm

T = 300


def np_schedule(num_steps=T, beta_start=1e-4, beta_end=0.02):
    """Independent float64 reference, 1-based with entry 0 the clean state."""
    betas = np.concatenate([[0.0], np.linspace(beta_start, beta_end, num_steps)])
    alphas = 1.0 - betas
    return betas, alphas, np.cumprod(alphas)


@pytest.fixture(scope="module")
def sched():
    return ddpm.make_schedule(T, 1e-4, 0.02)


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- schedule


def test_schedule_values(sched):
    betas, alphas, abar = np_schedule()
    assert sched.num_steps == T
    for v in (sched.betas, sched.alphas, sched.alphas_cumprod):
        assert v.shape == (T + 1,)
    assert sched.betas[0].item() == 0.0
    assert sched.alphas_cumprod[0].item() == 1.0
    assert sched.betas[1].item() == pytest.approx(1e-4, rel=1e-6)
    assert sched.betas[T].item() == pytest.approx(0.02, rel=1e-6)
    np.testing.assert_allclose(sched.betas.double().numpy(), betas, rtol=0, atol=1e-8)
    np.testing.assert_allclose(sched.alphas.double().numpy(), alphas, rtol=0, atol=1e-7)
    np.testing.assert_allclose(sched.alphas_cumprod.double().numpy(), abar, rtol=0, atol=1e-6)
    # the course's T = 300 schedule ends near abar_T = 0.0486 (not pure noise)
    assert sched.alphas_cumprod[T].item() == pytest.approx(abar[T], rel=1e-5)
    assert 0.048 < abar[T] < 0.049
    assert torch.all(sched.alphas_cumprod[1:] < sched.alphas_cumprod[:-1])


def test_schedule_other_sizes():
    s = ddpm.make_schedule(20, 1e-4, 0.2)
    _, _, abar = np_schedule(20, 1e-4, 0.2)
    assert s.num_steps == 20 and s.betas.shape == (21,)
    np.testing.assert_allclose(s.alphas_cumprod.double().numpy(), abar, rtol=0, atol=1e-6)
    one = ddpm.make_schedule(1, 0.5, 0.5)
    assert one.betas.tolist() == [0.0, 0.5] and one.alphas_cumprod.tolist() == [1.0, 0.5]


@pytest.mark.parametrize(
    "args",
    [(0, 1e-4, 0.02), (-3, 1e-4, 0.02), (300, 0.0, 0.02), (300, -1e-4, 0.02), (300, 0.03, 0.02), (300, 1e-4, 1.0), (300, 1e-4, 1.5)],
)
def test_schedule_rejects_bad_args(args):
    with pytest.raises(ValueError):
        ddpm.make_schedule(*args)


# ---------------------------------------------------------------- forward noise / x0


def test_forward_noise_matches_numpy(sched):
    _, _, abar = np_schedule()
    x0, eps = rand(5, 1, 6, 6, seed=1), rand(5, 1, 6, 6, seed=2)
    t = torch.tensor([1, 2, 50, 150, T])
    got = ddpm.forward_noise(x0, t, sched, eps)
    a = abar[t.numpy()][:, None, None, None]
    want = np.sqrt(a) * x0.double().numpy() + np.sqrt(1 - a) * eps.double().numpy()
    np.testing.assert_allclose(got.double().numpy(), want, rtol=1e-5, atol=2e-6)
    # t = 0 (clean) leaves x0 untouched
    assert torch.equal(ddpm.forward_noise(x0, torch.zeros(5, dtype=torch.long), sched, eps), x0)


def test_predict_x0_inverts_forward_noise(sched):
    x0, eps = rand(5, 1, 6, 6, seed=3), rand(5, 1, 6, 6, seed=4)
    t = torch.tensor([1, 7, 100, 299, T])
    x_t = ddpm.forward_noise(x0, t, sched, eps)
    torch.testing.assert_close(ddpm.predict_x0(x_t, t, eps, sched), x0, rtol=0, atol=1e-4)
    # a wrong noise estimate does not
    assert (ddpm.predict_x0(x_t, t, eps * 0, sched) - x0).abs().max() > 0.1


# ---------------------------------------------------------------- reverse step


def np_step(x_t, eps, t, z):
    """x_{t-1} = sqrt(abar_{t-1}) beta_t/(1-abar_t) x0_hat + sqrt(alpha_t)(1-abar_{t-1})/(1-abar_t) x_t + sqrt(beta_t) z."""
    betas, alphas, abar = np_schedule()
    x_t, eps, z = (v.double().numpy() for v in (x_t, eps, z))
    x0_hat = (x_t - np.sqrt(1 - abar[t]) * eps) / np.sqrt(abar[t])
    mean = np.sqrt(abar[t - 1]) * betas[t] / (1 - abar[t]) * x0_hat + np.sqrt(alphas[t]) * (1 - abar[t - 1]) / (1 - abar[t]) * x_t
    return mean + (np.sqrt(betas[t]) * z if t > 1 else 0.0), x0_hat


@pytest.mark.parametrize("t", [1, 2, 3, 10, 100, 299, T])
def test_ddpm_step_matches_numpy(sched, t):
    x_t, eps, z = rand(4, 1, 5, 5, seed=t), rand(4, 1, 5, 5, seed=1000 + t), rand(4, 1, 5, 5, seed=2000 + t)
    got, x0_hat = ddpm.ddpm_step(x_t, t, eps, sched, noise=z)
    want, want_x0 = np_step(x_t, eps, t, z)
    # float32 schedule vs float64 reference: x0_hat divides by sqrt(abar_t) and the mean's
    # coefficients are ratios of small numbers near t = 1, hence the loose-ish tolerance
    np.testing.assert_allclose(x0_hat.double().numpy(), want_x0, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got.double().numpy(), want, rtol=1e-4, atol=5e-4)
    assert got.shape == x_t.shape and got.dtype == x_t.dtype


def test_ddpm_step_noise_scale(sched):
    """The injected z enters with weight sqrt(beta_t), exactly linearly."""
    x_t, eps, z = rand(2, 1, 5, 5, seed=5), rand(2, 1, 5, 5, seed=6), rand(2, 1, 5, 5, seed=7)
    for t in (2, 50, T):
        a, _ = ddpm.ddpm_step(x_t, t, eps, sched, noise=z)
        b, _ = ddpm.ddpm_step(x_t, t, eps, sched, noise=torch.zeros_like(z))
        torch.testing.assert_close(a - b, sched.betas[t].sqrt() * z, rtol=1e-5, atol=1e-6)


def test_ddpm_step_last_step_is_x0_hat(sched):
    x_t, eps = rand(3, 1, 5, 5, seed=8), rand(3, 1, 5, 5, seed=9)
    out, x0_hat = ddpm.ddpm_step(x_t, 1, eps, sched, noise=rand(3, 1, 5, 5, seed=10))
    # no noise at t = 1 (injected z ignored, generator untouched) and the posterior mean is x0_hat
    assert torch.equal(out, x0_hat)
    g = torch.Generator().manual_seed(11)
    before = g.get_state()
    out2, _ = ddpm.ddpm_step(x_t, 1, eps, sched, generator=g)
    assert torch.equal(out2, x0_hat) and torch.equal(g.get_state(), before)
    _, _, abar = np_schedule()
    want = (x_t.double().numpy() - np.sqrt(1 - abar[1]) * eps.double().numpy()) / np.sqrt(abar[1])
    np.testing.assert_allclose(x0_hat.double().numpy(), want, rtol=1e-5, atol=1e-5)


def test_ddpm_step_generator_draw(sched):
    """Without injected noise z = torch.randn(shape, generator): same as injecting that draw."""
    x_t, eps = rand(2, 1, 5, 5, seed=12), rand(2, 1, 5, 5, seed=13)
    a, _ = ddpm.ddpm_step(x_t, 40, eps, sched, generator=torch.Generator().manual_seed(3))
    z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(3))
    b, _ = ddpm.ddpm_step(x_t, 40, eps, sched, noise=z)
    assert torch.equal(a, b)


def test_ddpm_step_strided(sched):
    """With t_prev: alpha = abar_t / abar_t', beta = 1 - alpha (course Part A 1.4)."""
    _, _, abar = np_schedule()
    x_t, eps, z = rand(2, 1, 5, 5, seed=14), rand(2, 1, 5, 5, seed=15), rand(2, 1, 5, 5, seed=16)
    t, tp = 200, 170
    got, _ = ddpm.ddpm_step(x_t, t, eps, sched, noise=z, t_prev=tp)
    alpha = abar[t] / abar[tp]
    beta = 1 - alpha
    xt, e = x_t.double().numpy(), eps.double().numpy()
    x0 = (xt - np.sqrt(1 - abar[t]) * e) / np.sqrt(abar[t])
    want = np.sqrt(abar[tp]) * beta / (1 - abar[t]) * x0 + np.sqrt(alpha) * (1 - abar[tp]) / (1 - abar[t]) * xt + np.sqrt(beta) * z.double().numpy()
    np.testing.assert_allclose(got.double().numpy(), want, rtol=1e-4, atol=2e-4)
    # a stride to 0 returns x0_hat
    out, x0_hat = ddpm.ddpm_step(x_t, t, eps, sched, noise=z, t_prev=0)
    assert torch.equal(out, x0_hat)


def test_ddpm_step_rejects_bad_t(sched):
    x = torch.zeros(1, 1, 2, 2)
    for t in (0, -1, T + 1):
        with pytest.raises(ValueError, match="t must be in"):
            ddpm.ddpm_step(x, t, x, sched)
    for tp in (5, 6, -1):
        with pytest.raises(ValueError, match="t_prev"):
            ddpm.ddpm_step(x, 5, x, sched, t_prev=tp)


# ---------------------------------------------------------------- against diffusers


def _diffusers_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=T,
        beta_start=1e-4,
        beta_end=0.02,
        beta_schedule="linear",
        variance_type="fixed_large",
        clip_sample=False,
        prediction_type="epsilon",
    )


def test_randn_tensor_is_torch_randn_on_cpu():
    from diffusers.utils.torch_utils import randn_tensor

    a = randn_tensor((3, 1, 5, 5), generator=torch.Generator().manual_seed(42), device=torch.device("cpu"), dtype=torch.float32)
    b = torch.randn((3, 1, 5, 5), generator=torch.Generator().manual_seed(42))
    assert torch.equal(a, b)


def test_schedule_matches_diffusers(sched):
    ref = _diffusers_scheduler()
    # diffusers is 0-based: its index k is our t = k + 1 (our entry 0 is the clean state)
    torch.testing.assert_close(sched.betas[1:], ref.betas, rtol=0, atol=1e-8)
    torch.testing.assert_close(sched.alphas_cumprod[1:], ref.alphas_cumprod, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("k", [0, 1, 2, 9, 149, T - 1])
def test_ddpm_step_matches_diffusers(sched, k):
    """Our step at t = k + 1 against DDPMScheduler.step at timestep k.

    Subtleties (diffusers 0.42, scheduling_ddpm.py): with no set_timesteps() the previous step
    of k is k - 1, with alphas_cumprod[-1] = 1 ("self.one"); the step's beta is recomputed as
    1 - abar_k / abar_{k-1} in float32 rather than read from the betas table, and 'fixed_large'
    variance is that beta (not the posterior variance beta~), i.e. sigma_t^2 = beta_t as in our
    step. The noise is randn_tensor(shape, generator, dtype) = torch.randn on the CPU, drawn
    only when k > 0, which is our "no noise at t = 1". Both schedules are float32 but built
    differently (ours in float64, then cast), so values agree to ~1e-5, not bit for bit.
    """
    ref = _diffusers_scheduler()
    x_t, eps = rand(3, 1, 6, 6, seed=20 + k), rand(3, 1, 6, 6, seed=400 + k)
    out = ref.step(eps, k, x_t, generator=torch.Generator().manual_seed(7))
    ours, x0_hat = ddpm.ddpm_step(x_t, k + 1, eps, sched, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(x0_hat, out.pred_original_sample, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours, out.prev_sample, rtol=1e-4, atol=1e-4)
    # the same with our noise injected explicitly (the draw diffusers makes)
    z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(7))
    injected, _ = ddpm.ddpm_step(x_t, k + 1, eps, sched, noise=z)
    torch.testing.assert_close(injected, out.prev_sample, rtol=1e-4, atol=1e-4)
    if k == 0:
        assert torch.equal(out.prev_sample, out.pred_original_sample)
    else:
        # the noise really is in there: a different seed moves diffusers' result by sqrt(beta) z
        other = ref.step(eps, k, x_t, generator=torch.Generator().manual_seed(8)).prev_sample
        assert (other - out.prev_sample).abs().max() > 0.5 * sched.betas[k + 1].sqrt().item()


@pytest.mark.parametrize("t, t_prev", [(300, 292), (50, 43), (9, 1), (2, 1)])
def test_posterior_variance_step_matches_diffusers_fixed_small(sched, t, t_prev):
    """variance="posterior" on a strided step equals DDPMScheduler(variance_type="fixed_small")
    stepping over the custom timesteps [t - 1, t_prev - 1] (its 0-based k is our t = k + 1):
    sigma^2 = (1 - abar_t')/(1 - abar_t) (1 - abar_t / abar_t')."""
    from diffusers import DDPMScheduler

    ref = DDPMScheduler(num_train_timesteps=T, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                        variance_type="fixed_small", clip_sample=False, prediction_type="epsilon")
    ref.set_timesteps(timesteps=[t - 1, t_prev - 1])
    x_t, eps = rand(3, 1, 6, 6, seed=50 + t), rand(3, 1, 6, 6, seed=600 + t)
    out = ref.step(eps, t - 1, x_t, generator=torch.Generator().manual_seed(9))
    ours, x0_hat = ddpm.ddpm_step(x_t, t, eps, sched, generator=torch.Generator().manual_seed(9), t_prev=t_prev, variance="posterior")
    torch.testing.assert_close(x0_hat, out.pred_original_sample, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours, out.prev_sample, rtol=1e-4, atol=1e-4)
    # and it is a different step from the course's beta_t one whenever noise is added
    course, _ = ddpm.ddpm_step(x_t, t, eps, sched, generator=torch.Generator().manual_seed(9), t_prev=t_prev)
    assert (course - ours).abs().max() > 1e-3
    with pytest.raises(ValueError, match="variance"):
        ddpm.ddpm_step(x_t, t, eps, sched, t_prev=t_prev, variance="learned")


def test_forward_noise_matches_diffusers_add_noise(sched):
    ref = _diffusers_scheduler()
    x0, eps = rand(4, 1, 5, 5, seed=30), rand(4, 1, 5, 5, seed=31)
    k = torch.tensor([0, 10, 150, T - 1])
    torch.testing.assert_close(ddpm.forward_noise(x0, k + 1, sched, eps), ref.add_noise(x0, eps, k), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- CFG


def test_cfg_combine():
    u, c = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([3.0, 0.0, 0.5])
    assert torch.equal(ddpm.cfg_combine(u, c, 0.0), u)
    assert torch.equal(ddpm.cfg_combine(u, c, 1.0), c)
    assert ddpm.cfg_combine(u, c, 5.0).tolist() == [11.0, 8.0, 0.5]  # u + 5 (c - u)
    assert ddpm.cfg_combine(u, c, 7.5).tolist() == [16.0, 13.0, 0.5]


class CountingModel:
    """eps = x * (1 + sum(c)) + t, recording every call's batch."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, t, c):
        self.calls.append((x.clone(), t.clone(), None if c is None else c.clone()))
        scale = torch.ones(x.shape[0]) if c is None else 1.0 + c.sum(dim=1)
        return x * scale.reshape(-1, 1, 1, 1) + t.reshape(-1, 1, 1, 1)


def test_guided_eps_is_one_batched_call():
    x = rand(3, 1, 4, 4, seed=40)
    t = torch.full((3,), 0.25)
    cond = torch.nn.functional.one_hot(torch.tensor([1, 5, 9]), 10).float() * 2  # sum 2 -> scale 3
    model = CountingModel()
    eps = ddpm.guided_eps(model, x, t, cond, 5.0)
    assert len(model.calls) == 1
    bx, bt, bc = model.calls[0]
    assert bx.shape == (6, 1, 4, 4) and bt.shape == (6,) and bc.shape == (6, 10)
    assert torch.equal(bx[:3], x) and torch.equal(bx[3:], x)
    assert torch.equal(bt, torch.full((6,), 0.25))
    assert torch.equal(bc[:3], cond) and torch.equal(bc[3:], torch.zeros_like(cond))
    eps_c, eps_u = 3 * x + 0.25, x + 0.25
    torch.testing.assert_close(eps, eps_u + 5.0 * (eps_c - eps_u), rtol=0, atol=1e-6)


def test_guided_eps_without_guidance():
    x, t = rand(2, 1, 4, 4, seed=41), torch.full((2,), 0.5)
    cond = torch.nn.functional.one_hot(torch.tensor([0, 3]), 10).float()
    model = CountingModel()
    assert torch.equal(ddpm.guided_eps(model, x, t, cond, None), 2 * x + 0.5)
    assert torch.equal(ddpm.guided_eps(model, x, t, None, None), x + 0.5)
    assert torch.equal(ddpm.guided_eps(model, x, t, None, 5.0), x + 0.5)  # no cond: no CFG
    assert [c[0].shape[0] for c in model.calls] == [2, 2, 2]


# ---------------------------------------------------------------- sampler


def toy_model(x, t, c):
    return 0.3 * x + t.reshape(-1, 1, 1, 1) - 0.1


def test_sample_deterministic_and_records_frames():
    s = ddpm.make_schedule(12, 1e-4, 0.2)
    shape = (2, 1, 4, 4)
    x1, f1 = ddpm.sample(toy_model, shape, s, torch.Generator().manual_seed(5), record=4)
    x2, f2 = ddpm.sample(toy_model, shape, s, torch.Generator().manual_seed(5), record=4)
    x3, _ = ddpm.sample(toy_model, shape, s, torch.Generator().manual_seed(6), record=4)
    assert x1.shape == shape and torch.isfinite(x1).all()
    assert torch.equal(x1, x2) and all(torch.equal(a, b) for a, b in zip(f1, f2))
    assert (x1 - x3).abs().max() > 1e-3
    assert len(f1) == 4 and all(f.shape == shape for f in f1)
    assert torch.equal(f1[-1], x1)  # the last recorded frame is the final x_0
    _, none = ddpm.sample(toy_model, shape, s, torch.Generator().manual_seed(5))
    assert none == []


def test_sample_equals_manual_loop():
    """x_T ~ randn(generator), then ddpm_step(t = T..1) with z from the same generator."""
    s = ddpm.make_schedule(10, 1e-4, 0.2)
    shape = (3, 1, 4, 4)
    calls = []

    def model(x, t, c):
        calls.append(t[0].item())
        return toy_model(x, t, c)

    got, _ = ddpm.sample(model, shape, s, torch.Generator().manual_seed(9))
    assert calls == pytest.approx([t / 10 for t in range(10, 0, -1)])
    g = torch.Generator().manual_seed(9)
    x = torch.randn(shape, generator=g)
    for t in range(10, 0, -1):
        eps = toy_model(x, torch.full((3,), t / 10), None)
        x, _ = ddpm.ddpm_step(x, t, eps, s, generator=g)
    assert torch.equal(got, x)


def test_sample_with_guidance_and_strides():
    s = ddpm.make_schedule(20, 1e-4, 0.2)
    cond = torch.nn.functional.one_hot(torch.tensor([0, 1]), 10).float()
    model = CountingModel()
    x, frames = ddpm.sample(model, (2, 1, 4, 4), s, torch.Generator().manual_seed(1), cond=cond, guidance=3.0, num_inference_steps=5, record=2)
    assert len(model.calls) == 5 and all(c[0].shape[0] == 4 for c in model.calls)
    assert [round(c[1][0].item() * 20) for c in model.calls] == ddpm.strided_timesteps(20, 5) == [20, 15, 10, 6, 1]
    assert torch.isfinite(x).all() and len(frames) == 2


def test_strided_timesteps():
    assert ddpm.strided_timesteps(10, 10) == list(range(10, 0, -1))
    assert ddpm.strided_timesteps(300, 1) == [300]
    assert ddpm.strided_timesteps(300, 2) == [300, 1]
    steps = ddpm.strided_timesteps(300, 50)
    assert len(steps) == len(set(steps)) == 50 and steps[0] == 300 and steps[-1] == 1
    with pytest.raises(ValueError):
        ddpm.strided_timesteps(10, 11)
    with pytest.raises(ValueError):
        ddpm.strided_timesteps(10, 0)


def test_strided_timesteps_equal_torch_linspace_rounded():
    """The torch-free list is torch.linspace(start, end, count).round(), independently computed,
    including the half-way cases where float32 rounding decides (e.g. 26 -> 1 in 23 steps)."""
    from fundiff.timesteps import strided_timesteps

    for start in [*range(2, 60), 299, 300, 990, 1000]:
        for end in (0, 1):
            for count in range(1, start - end + 2):
                expected = [start] if count == 1 else torch.linspace(start, end, count).round().long().tolist()
                assert strided_timesteps(start, count, end) == expected, (start, end, count)
