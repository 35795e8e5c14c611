"""From the config to training recipes, config checks, and the list of Part B targets."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from fundiff import config_checks, paths, recipes

REPO = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
SMOKE = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())


def edited(config, edit):
    cfg = copy.deepcopy(config)
    edit(cfg)
    return cfg


# ---------------------------------------------------------------- recipes


COMMON = {"train_limit": None}

EXPECTED = {
    "single_step": dict(
        hidden=128, batch_size=256, lr=1e-4, epochs=5, lr_decay=None, ema_decay=None, objective="denoise", conditioning="none", sigma=0.5, pure_noise=False
    ),
    "pure_noise": dict(
        hidden=128, batch_size=256, lr=1e-4, epochs=5, lr_decay=None, ema_decay=None, objective="denoise", conditioning="none", sigma=None, pure_noise=True
    ),
    "ddpm/time_cond": dict(
        hidden=64, batch_size=128, lr=1e-3, epochs=20, lr_decay=0.1, ema_decay=None, objective="ddpm", conditioning="time",
        time_combine="add", num_steps=300, beta_start=1e-4, beta_end=0.02,
    ),
    "ddpm/class_cond": dict(
        hidden=64, batch_size=128, lr=1e-3, epochs=20, lr_decay=0.1, ema_decay=None, objective="ddpm", conditioning="class",
        time_combine="add", num_steps=300, beta_start=1e-4, beta_end=0.02, p_uncond=0.1,
    ),
    "flow/time_cond": dict(
        hidden=64, batch_size=64, lr=1e-2, epochs=10, lr_decay=0.1, ema_decay=None, objective="flow", conditioning="time", time_combine="mul"
    ),
    "flow/class_cond": dict(
        hidden=64, batch_size=64, lr=1e-2, epochs=10, lr_decay=0.1, ema_decay=None, objective="flow", conditioning="class", time_combine="mul", p_uncond=0.1
    ),
    "flow/class_cond_constant_lr": dict(
        hidden=64, batch_size=64, lr=2e-3, epochs=10, lr_decay=None, ema_decay=0.999, objective="flow", conditioning="class", time_combine="mul", p_uncond=0.1
    ),
}


@pytest.mark.parametrize("model", recipes.ALL_MODELS)
def test_recipe_contents(model):
    assert recipes.recipe(DEFAULT, model) == {**COMMON, **EXPECTED[model]}


def test_all_models_covered():
    assert set(EXPECTED) == set(recipes.ALL_MODELS)
    assert recipes.models(DEFAULT) == list(recipes.ALL_MODELS)
    assert recipes.generative_models(DEFAULT) == [m for m in recipes.ALL_MODELS if "/" in m]


def test_recipe_follows_config():
    cfg = edited(DEFAULT, lambda c: (c["data"].update(train_limit=1000), c["part_b"]["ddpm"].update(num_steps=50)))
    r = recipes.recipe(cfg, "ddpm/class_cond")
    assert r["train_limit"] == 1000 and r["num_steps"] == 50
    assert recipes.recipe(cfg, "flow/time_cond")["train_limit"] == 1000
    # display-only keys are not part of the recipe, so changing them does not retrain
    cfg2 = edited(DEFAULT, lambda c: c["part_b"]["ddpm"]["class_cond"].update(guidance=7.0, show_epochs=[20]))
    assert recipes.recipe(cfg2, "ddpm/class_cond") == recipes.recipe(DEFAULT, "ddpm/class_cond")


def test_unknown_model():
    with pytest.raises(recipes.ConfigError, match="unknown Part B model 'ddpm/text_cond'"):
        recipes.recipe(DEFAULT, "ddpm/text_cond")


def test_models_by_edition():
    only_ddpm = edited(DEFAULT, lambda c: c["part_b"].update(editions=["ddpm"]))
    assert recipes.models(only_ddpm) == ["single_step", "ddpm/time_cond", "ddpm/class_cond"]
    only_flow = edited(DEFAULT, lambda c: c["part_b"].update(editions=["flow"]))
    assert recipes.models(only_flow) == ["single_step", "pure_noise", "flow/time_cond", "flow/class_cond", "flow/class_cond_constant_lr"]


def test_sampling_steps():
    assert recipes.sampling_steps(DEFAULT, "ddpm/class_cond") == 300
    assert recipes.sampling_steps(SMOKE, "ddpm/time_cond") == 20
    assert recipes.sampling_steps(SMOKE, "flow/class_cond") == 10
    # a model's own count wins over its edition's, for that model only, and leaves the weights' recipe alone
    own = edited(DEFAULT, lambda c: (c["part_b"]["ddpm"]["class_cond"].update(sample_steps=20), c["part_b"]["flow"]["class_cond"].update(sample_steps=15)))
    assert recipes.sampling_steps(own, "ddpm/class_cond") == 20 and recipes.sampling_steps(own, "ddpm/time_cond") == 300
    assert recipes.sampling_steps(own, "flow/class_cond") == 15 and recipes.sampling_steps(own, "flow/class_cond_constant_lr") == DEFAULT["part_b"]["flow"]["num_steps"]
    assert recipes.recipe(own, "ddpm/class_cond") == recipes.recipe(DEFAULT, "ddpm/class_cond")
    config_checks.check(own)


def test_check_model_sample_steps():
    cfg = edited(SMOKE, lambda c: c["part_b"]["ddpm"]["class_cond"].update(sample_steps=25))  # T = 20
    with pytest.raises(recipes.ConfigError, match=r"part_b\.ddpm\.class_cond\.sample_steps \(25\) exceeds part_b\.ddpm\.num_steps = 20"):
        config_checks.check(cfg)
    config_checks.check(edited(SMOKE, lambda c: c["part_b"]["flow"]["class_cond"].update(sample_steps=25)))  # Euler: any count
    cfg = edited(SMOKE, lambda c: c["part_b"]["single_step"].update(sample_steps=10))
    with pytest.raises(recipes.ConfigError, match=r"part_b\.single_step\.sample_steps: a denoiser does not sample"):
        config_checks.check(cfg)


# ---------------------------------------------------------------- check


def test_shipped_configs_pass_check():
    config_checks.check(DEFAULT)
    config_checks.check(SMOKE)


def test_check_show_epochs_beyond_epochs():
    cfg = edited(DEFAULT, lambda c: c["part_b"]["ddpm"]["time_cond"].update(show_epochs=[1, 25]))
    with pytest.raises(recipes.ConfigError) as err:
        config_checks.check(cfg)
    msg = str(err.value)
    assert "part_b.ddpm.time_cond.show_epochs has [25]" in msg and "part_b.ddpm.time_cond.epochs = 20" in msg
    cfg = edited(DEFAULT, lambda c: c["part_b"]["single_step"].update(epochs=3))  # show_epochs [1, 5]
    with pytest.raises(recipes.ConfigError, match=r"part_b\.single_step\.show_epochs has \[5\]"):
        config_checks.check(cfg)


def test_check_t_sampling_fits_the_model():
    for model, kind, fix in (("flow.time_cond", "p2", "use uniform or logit_normal"), ("ddpm.class_cond", "logit_normal", "use uniform or p2"),
                             ("single_step", "p2", "a denoiser has no noise level t")):
        def edit(c, model=model, kind=kind):
            block = c["part_b"]
            for part in model.split("."):
                block = block[part]
            block["t_sampling"] = kind
        with pytest.raises(recipes.ConfigError, match=rf"part_b\.{model.replace('.', '[.]')}\.t_sampling = '{kind}' does not apply to this model: {fix}"):
            config_checks.check(edited(DEFAULT, edit))
    config_checks.check(edited(DEFAULT, lambda c: c["part_b"]["ddpm"]["time_cond"].update(t_sampling="p2", t_sampling_param=0.5)))
    with pytest.raises(recipes.ConfigError, match=r"part_b\.flow\.time_cond\.t_sampling_param is set but .* uniform, which takes no parameter: set t_sampling to logit_normal"):
        config_checks.check(edited(DEFAULT, lambda c: c["part_b"]["flow"]["time_cond"].update(t_sampling_param=0.5)))


def test_autoguidance_keys():
    laptop = yaml.safe_load((REPO / "config" / "laptop.yaml").read_text())
    for cfg in (DEFAULT, SMOKE, laptop):
        config_checks.check(cfg)
    cfg = edited(DEFAULT, lambda c: c["part_b"]["ddpm"]["time_cond"].update(guide_epoch=5, guide_weight=3.0))
    config_checks.check(cfg)
    # the samples after the guide epoch are guided by it; the guide epoch and those before it are not
    assert [recipes.autoguide(cfg, "ddpm/time_cond", e) for e in (1, 5, "006", 20)] == [None, None, (5, 3.0), (5, 3.0)]
    assert recipes.autoguide(DEFAULT, "ddpm/time_cond", 20) is None and recipes.autoguide(cfg, "flow/time_cond", 10) is None
    for key, edit, message in (
        ("ddpm.class_cond", dict(guide_epoch=5, guide_weight=3.0), r"part_b\.ddpm\.class_cond\.guide_epoch / guide_weight \(autoguidance\) apply to the time-conditioned models only"),
        ("flow.time_cond", dict(guide_epoch=3), r"part_b\.flow\.time_cond\.guide_weight is missing"),
        ("flow.time_cond", dict(guide_weight=3.0), r"part_b\.flow\.time_cond\.guide_epoch is missing"),
        ("flow.time_cond", dict(guide_epoch=10, guide_weight=3.0), r"part_b\.flow\.time_cond\.guide_epoch = 10 must be below part_b\.flow\.time_cond\.epochs = 10"),
    ):
        edition, name = key.split(".")
        with pytest.raises(recipes.ConfigError, match=message):
            config_checks.check(edited(DEFAULT, lambda c, e=edition, n=name, d=edit: c["part_b"][e][n].update(d)))
    # autoguidance changes how the samples are drawn, not the weights: the recipe (and checkpoints) stay
    assert recipes.recipe(cfg, "ddpm/time_cond") == recipes.recipe(DEFAULT, "ddpm/time_cond")


def test_check_beta_order():
    cfg = edited(DEFAULT, lambda c: c["part_b"]["ddpm"].update(beta_start=0.03))
    with pytest.raises(recipes.ConfigError, match=r"part_b\.ddpm\.beta_start \(0\.03\) must not exceed part_b\.ddpm\.beta_end \(0\.02\)"):
        config_checks.check(cfg)
    config_checks.check(edited(DEFAULT, lambda c: c["part_b"]["ddpm"].update(beta_start=0.02)))  # equal is fine


def test_check_step_comparison_and_test_digits():
    cfg = edited(SMOKE, lambda c: c["part_b"].update(step_comparison=[2, 15, 25]))  # DDPM has T = 20; the Euler sampler takes any count
    with pytest.raises(recipes.ConfigError, match=r"part_b\.step_comparison has \[25\], more than part_b\.ddpm\.num_steps = 20"):
        config_checks.check(cfg)
    cfg = edited(SMOKE, lambda c: c["part_b"].update(num_test_digits=300))  # test_limit 256
    with pytest.raises(recipes.ConfigError, match="num_test_digits"):
        config_checks.check(cfg)


def test_check_grid_is_a_prefix_of_the_evaluated_samples():
    cfg = edited(DEFAULT, lambda c: c["evaluation"].update(num_samples=30))  # grids of 40
    with pytest.raises(recipes.ConfigError, match=r"evaluation\.num_samples \(30\) is below part_b\.num_samples \(40\)"):
        config_checks.check(cfg)
    config_checks.check(edited(DEFAULT, lambda c: c["evaluation"].update(num_samples=40)))


def test_epoch_priority_runs_the_longest_chains_first():
    """Remaining image passes of the chain: falls along a chain, and a 20-epoch DDPM chain outranks
    a 10-epoch flow chain of the same epoch size until their remaining work is equal."""
    laptop = yaml.safe_load((REPO / "config" / "laptop.yaml").read_text())
    for cfg in (DEFAULT, laptop):
        for model in recipes.models(cfg):
            epochs = recipes.model_settings(cfg, model)["epochs"]
            prio = [recipes.epoch_priority(cfg, model, e) for e in range(1, epochs + 1)]
            assert prio == sorted(prio, reverse=True) and prio[-1] > 0, (model, prio)
    laptop["part_b"]["flow"]["class_cond"]["images_per_epoch"] = laptop["part_b"]["ddpm"]["class_cond"]["images_per_epoch"]
    ddpm, flow = recipes.model_settings(laptop, "ddpm/class_cond"), recipes.model_settings(laptop, "flow/class_cond")
    assert ddpm["hidden"] == flow["hidden"] and ddpm["epochs"] == 2 * flow["epochs"]
    assert recipes.epoch_priority(laptop, "ddpm/class_cond", 1) == 2 * recipes.epoch_priority(laptop, "flow/class_cond", 1)
    assert recipes.epoch_priority(laptop, "ddpm/class_cond", 11) == recipes.epoch_priority(laptop, "flow/class_cond", 1)
    # the course recipe: full passes, D = 128 costs 16x D = 32 per image
    assert recipes.epoch_priority(DEFAULT, "single_step", 5) == 60 * 16


def test_check_ignores_editions_not_run():
    cfg = edited(DEFAULT, lambda c: (c["part_b"].update(editions=["ddpm"]), c["part_b"]["flow"]["time_cond"].update(show_epochs=[99])))
    config_checks.check(cfg)


# ---------------------------------------------------------------- targets


def test_fmt_gamma():
    assert paths.fmt_gamma(5.0) == "5"
    assert paths.fmt_gamma(7.5) == "7.5"
    assert paths.fmt_gamma(0.0) == "0"
    assert paths.fmt_gamma(10.0) == "10"
    assert paths.fmt_gamma(5) == "5"


def test_part_b_targets_default():
    targets = paths.part_b_targets(DEFAULT)
    assert len(targets) == len(set(targets))
    t = set(targets)
    assert "results/part_b/ddpm/class_cond/epoch_020/samples_cfg5.png" in t
    # the guidance sweep: one grid per gamma at the final epoch
    for g in DEFAULT["part_b"]["ddpm"]["class_cond"]["guidance_sweep"]:
        assert f"results/part_b/ddpm/class_cond/epoch_020/samples_cfg{paths.fmt_gamma(g)}.png" in t
    sweep20 = sorted(p for p in t if p.startswith("results/part_b/ddpm/class_cond/epoch_020/"))
    assert sweep20 == [f"results/part_b/ddpm/class_cond/epoch_020/samples_cfg{g}.png" for g in ("0", "1", "10", "3", "5", "7")]
    # earlier shown epochs: only the main guidance scale
    assert sorted(p for p in t if p.startswith("results/part_b/ddpm/class_cond/epoch_005/")) == ["results/part_b/ddpm/class_cond/epoch_005/samples_cfg5.png"]
    assert {f"results/part_b/ddpm/time_cond/epoch_{e:03d}/samples.png" for e in (1, 5, 10, 15, 20)} <= t
    assert not any("ddpm/time_cond" in p and "cfg" in p for p in t)
    # flow edition
    assert {f"results/part_b/flow/class_cond/epoch_010/samples_cfg{g}.png" for g in ("0", "1", "3", "5", "7", "10")} <= t
    assert [p for p in t if p.startswith("results/part_b/flow/class_cond_constant_lr/epoch_")] == [
        "results/part_b/flow/class_cond_constant_lr/epoch_010/samples_cfg5.png"
    ]
    # per-model and per-epoch files
    for model in recipes.ALL_MODELS:
        assert {f"results/part_b/{model}/loss_curve.png", f"results/part_b/{model}/losses.csv"} <= t
    for model in recipes.generative_models(DEFAULT):
        assert f"results/part_b/{model}/sampling.gif" in t
    for e in (1, 5):
        for name in ("denoised.png", "ood.png", "test_metrics.csv"):
            assert f"results/part_b/single_step/epoch_{e:03d}/{name}" in t
        assert f"results/part_b/pure_noise/epoch_{e:03d}/mse_to_mean.csv" in t
    assert {
        "results/part_b/single_step/noising_grid.png",
        "results/part_b/single_step/test_mse.png",
        "results/part_b/step_comparison.png",
        "results/part_b/step_comparison.csv",
    } <= t
    # 2 single-step figures + 7 models x 2 loss files + 7 models x 2 final-weight files + 2 x 3 single-step
    # + 2 x 2 pure-noise epoch files + ddpm (5 + gif) + (5 + 5 extra gammas + gif) + flow (3 + gif)
    # + (3 + 5 + gif) + (1 + gif) + 2 step comparison
    assert len(targets) == 2 + 14 + 14 + 6 + 4 + 6 + 11 + 4 + 9 + 2 + 2 == 74
    assert {f"results/part_b/{m}/final.{ext}" for m in recipes.ALL_MODELS for ext in ("safetensors", "json")} <= t


def test_part_b_targets_ddpm_only_and_smoke():
    only_ddpm = edited(DEFAULT, lambda c: c["part_b"].update(editions=["ddpm"]))
    t = paths.part_b_targets(only_ddpm)
    assert not any("/flow/" in p or "pure_noise" in p for p in t)
    smoke = set(paths.part_b_targets(SMOKE))
    assert {"results/part_b/ddpm/class_cond/epoch_002/samples_cfg0.png", "results/part_b/ddpm/class_cond/epoch_002/samples_cfg5.png"} <= smoke
    assert "results/part_b/ddpm/class_cond/epoch_001/samples_cfg5.png" not in smoke  # show_epochs [2]


def test_sample_files_guidance_float_names():
    cfg = edited(DEFAULT, lambda c: c["part_b"]["ddpm"]["class_cond"].update(guidance=7.5, show_epochs=[1], guidance_sweep=[2.5]))
    assert paths.sample_files(cfg, "ddpm/class_cond") == [
        "results/part_b/ddpm/class_cond/epoch_001/samples_cfg7.5.png",
        "results/part_b/ddpm/class_cond/epoch_020/samples_cfg2.5.png",
    ]
