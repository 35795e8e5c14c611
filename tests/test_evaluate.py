"""Sample evaluation: the MNIST classifier, its accuracy floor, the sample metrics and the targets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from fundiff import data, device, evaluate, metrics, models, part_b, paths, recipes, train, views

REPO = Path(__file__).resolve().parents[1]
SMOKE = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
RUNTIME = device.resolve("cpu", "auto")  # bf16 autocast where the CPU has it: 2-3x faster training
NUM_EVAL = 2000  # test digits used by the cheaper checks


@pytest.fixture(scope="session")
def mnist(mnist_root):
    train_x, train_y = data.load_split(mnist_root, "train", limit=20_000)
    test_x, test_y = data.load_split(mnist_root, "test")
    return {"train": (train_x, train_y), "test": (data.to_float(test_x), test_y)}


@pytest.fixture(scope="session")
def classifier(mnist):
    """Trained once per session at a fraction of the pipeline's cost: 20k images, one epoch, no
    augmentation (~10 s); about 98.7 % on the 10k test digits (the pipeline's reaches ~99.5 %)."""
    (x, y), (tx, ty) = mnist["train"], mnist["test"]
    model, acc = evaluate.train_classifier(x, y, tx, ty, seed=0, epochs=1, batch_size=64, lr=3e-3, runtime=RUNTIME, max_shift=0)
    return model, acc


def test_real_test_digits_score_as_real_digits(classifier, mnist):
    model, acc = classifier
    tx, ty = mnist["test"]
    assert acc >= 0.98
    row = evaluate.sample_metrics(model, tx, ty, evaluate.image_stats(model, tx[:NUM_EVAL], RUNTIME), RUNTIME)  # all 10k test digits as "samples"
    assert row["accuracy"] >= 0.98 and row["accuracy"] == pytest.approx(acc, abs=1e-9)
    assert all(row[f"acc_{k}"] >= 0.95 for k in range(10))
    assert row["mean_confidence"] > 0.9
    assert row["class_entropy_bits"] == pytest.approx(math.log2(10), abs=0.05)
    assert sum(row[f"frac_{k}"] for k in range(10)) == pytest.approx(1.0)
    assert row["diversity"] > 0 and row["num_samples"] == 10_000 and row["fd_reference_images"] == NUM_EVAL
    assert 0 <= row["frechet_distance"] < 5
    assert set(row) | {"model", "edition", "epoch", "guidance"} == set(evaluate.COLUMNS)


def test_pure_noise_scores_near_chance(classifier):
    model, _ = classifier
    noise = torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    labels = part_b.sample_labels(500)
    out = evaluate.classify(model, noise, RUNTIME)
    assert out["probs"].shape == (500, 10) and out["features"].shape == (500, model.num_features)
    row = evaluate.conditional_metrics(out["probs"], out["features"], labels)
    assert 0.0 <= row["accuracy"] <= 0.3
    unc = evaluate.unconditional_metrics(out["probs"], out["features"])
    fracs = [unc[f"frac_{k}"] for k in range(10)]
    assert sum(fracs) == pytest.approx(1.0) and all(0 <= f <= 1 for f in fracs)
    assert 0.0 <= unc["class_entropy_bits"] <= evaluate.MAX_ENTROPY_BITS + 1e-9
    assert unc["class_entropy_bits"] == pytest.approx(evaluate.entropy_bits(fracs))


def test_frechet_distance_is_zero_on_itself_and_grows_with_noise(classifier, mnist):
    model, _ = classifier
    real = mnist["test"][0][:NUM_EVAL]
    g = torch.Generator().manual_seed(2)
    same = evaluate.frechet_distance(model, real, real, RUNTIME)
    noisy = [evaluate.frechet_distance(model, real, real + s * torch.randn(real.shape, generator=g), RUNTIME) for s in (0.1, 0.3, 0.6)]
    assert abs(same) < 1e-2 * noisy[0]
    assert noisy[0] < noisy[1] < noisy[2], noisy


class _Features(torch.nn.Module):
    """The classifier's features as torchmetrics' custom FID feature extractor (float64, eval mode)."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier, self.num_features = classifier.eval(), classifier.num_features

    def train(self, mode: bool = True):
        return super().train(False)

    @torch.no_grad()
    def forward(self, x):
        return self.classifier.features(x.float().clamp(0, 1)).double()


@pytest.mark.parametrize("num_fake", [100, 1000])
def test_frechet_distance_equals_torchmetrics_fid(classifier, mnist, num_fake):
    """Our FD from cached statistics against torchmetrics' FrechetInceptionDistance with the same
    features, on full-rank (1,000 samples) and rank-deficient (100 samples, 128 features) covariances."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    model, _ = classifier
    real = mnist["test"][0][:NUM_EVAL]
    g = torch.Generator().manual_seed(3)
    fake = (mnist["test"][0][NUM_EVAL : NUM_EVAL + num_fake] + 0.3 * torch.randn((num_fake, 1, 28, 28), generator=g)).clamp(0, 1)
    fp32 = device.resolve("cpu", "fp32")
    metric = FrechetInceptionDistance(feature=_Features(model), normalize=True, input_img_size=(1, 28, 28))
    metric.update(real, real=True)
    metric.update(fake, real=False)
    ours = evaluate.frechet_from_stats(evaluate.image_stats(model, real, fp32), evaluate.image_stats(model, fake, fp32))
    assert ours > 1.0
    assert ours == pytest.approx(float(metric.compute()), rel=1e-4)


def test_accuracy_floor_stops_a_broken_classifier(tmp_path, mnist):
    tx, ty = mnist["test"]
    broken = models.MnistClassifier()
    with torch.no_grad():  # constant logits: every image is a 0
        broken.head.weight.zero_()
        broken.head.bias.copy_(torch.eye(10)[0])
    broken.eval()
    acc = evaluate.accuracy(broken, tx[:1000], ty[:1000], RUNTIME)
    assert acc == pytest.approx((ty[:1000] == 0).float().mean().item())
    assert acc < 0.2
    with pytest.raises(evaluate.AccuracyFloorError) as err:
        evaluate.check_accuracy(acc, 0.99, 1000)
    text = str(err.value)
    for word in (f"{acc:.4f}", "0.99", "evaluation.min_test_accuracy", "evaluation.classifier.epochs", "MNIST data"):
        assert word in text, word
    evaluate.check_accuracy(0.995, 0.99)  # above the floor: no error
    # a saved classifier is checked again when loaded under a (raised) floor
    evaluate.save_classifier(broken, tmp_path / "clf.pt", acc)
    with pytest.raises(evaluate.AccuracyFloorError):
        evaluate.load_classifier(tmp_path / "clf.pt", min_test_accuracy=0.99)
    assert isinstance(evaluate.load_classifier(tmp_path / "clf.pt", min_test_accuracy=0.0), models.MnistClassifier)


def test_metric_helpers():
    assert evaluate.entropy_bits([0.1] * 10) == pytest.approx(math.log2(10))
    single = evaluate.entropy_bits([1.0] + [0.0] * 9)
    assert single == 0.0 and math.copysign(1, single) == 1  # not -0.0 in the CSV
    # two groups: {0, 3} at distance 3; {0, 4, 4} pairs 4, 4, 0 -> mean 8/3
    feats = torch.tensor([[0.0], [3.0], [0.0], [4.0], [4.0], [9.0]])
    groups = torch.tensor([0, 0, 1, 1, 1, 2])  # group 2 has one sample and is skipped
    assert evaluate.diversity(feats, groups) == pytest.approx((3 + 8 / 3) / 2)
    shifted = evaluate.random_shift(torch.ones(4, 1, 28, 28), 2, torch.Generator().manual_seed(0))
    assert shifted.shape == (4, 1, 28, 28) and shifted.max() == 1 and shifted.min() >= 0


def test_confident_fraction_counts_probabilities_at_or_above_the_bar():
    probs = torch.tensor([[0.9, 0.1] + [0.0] * 8, [0.89, 0.11] + [0.0] * 8, [0.05, 0.95] + [0.0] * 8, [0.5, 0.5] + [0.0] * 8])
    assert evaluate.CONFIDENT == 0.9
    assert evaluate.confident_fraction(probs) == pytest.approx(0.5)  # 0.9 and 0.95 count, 0.89 and 0.5 do not
    assert evaluate.confident_fraction(probs, 0.5) == 1.0
    assert evaluate.unconditional_metrics(probs, torch.randn(4, 3))["confident_fraction"] == pytest.approx(0.5)


def test_metrics_frame_columns():
    row = {"model": "ddpm/time_cond", "edition": "ddpm", "epoch": 1, "guidance": None, "num_samples": 10, "frac_3": 1.0}
    frame = evaluate.metrics_frame([row])
    assert list(frame.columns) == evaluate.COLUMNS
    assert list(frame.columns[:11]) == ["model", "edition", "epoch", "guidance", "num_samples", "accuracy", "mean_confidence", "confident_fraction", "diversity", "class_entropy_bits", "frechet_distance"]
    assert [f"acc_{k}" for k in range(10)] + [f"frac_{k}" for k in range(10)] == list(frame.columns[-20:])
    assert pd.isna(frame.accuracy.iloc[0]) and frame.frac_3.iloc[0] == 1.0


@pytest.mark.parametrize("model", ["ddpm/class_cond", "flow/time_cond"])
def test_eval_samples_are_batched_seeded_and_balanced(model):
    r = recipes.recipe(SMOKE, model)
    r.update(hidden=4)
    state = train.init_checkpoint(r, model, seed=0)
    steps = recipes.sampling_steps(SMOKE, model) if model.startswith("flow/") else None
    guidance = 5.0 if "class" in model else None
    fp32 = device.resolve("cpu", "fp32")
    out = part_b.draw_eval_samples(state, fp32, 30, 10, seed=7, guidance=guidance, num_steps=steps)
    assert out["samples"].shape == (30, 1, 28, 28) and out["epoch"] == 0
    if "class" in model:
        assert torch.equal(out["labels"], part_b.sample_labels(30))
        with pytest.raises(ValueError, match="multiple of 10"):
            part_b.draw_eval_samples(state, fp32, 30, 15, seed=7, guidance=guidance, num_steps=steps)
    else:
        assert out["labels"] is None
    again = part_b.draw_eval_samples(state, fp32, 30, 10, seed=7, guidance=guidance, num_steps=steps)
    assert torch.equal(out["samples"], again["samples"])
    # batch b is the single run seeded with seed + b
    second = part_b.sample_checkpoint(state, fp32, 10, 8, guidance=guidance, num_steps=steps)["samples"]
    assert torch.equal(out["samples"][10:20], second)


@pytest.mark.parametrize("model", ["ddpm/time_cond", "flow/time_cond"])
def test_autoguided_samples_combine_the_two_checkpoints(model, tmp_path):
    """guide = (earlier checkpoint, w): every call is out_guide + w (out - out_guide), so w = 0 samples the
    guide alone and w = 1 the model alone (the same noise); other weights move the samples off both."""
    r = dict(recipes.recipe(SMOKE, model), hidden=4)
    guide_state = dict(train.init_checkpoint(r, model, seed=0), epoch=1)
    state = dict(train.init_checkpoint(r, model, seed=1), epoch=2)
    fp32 = device.resolve("cpu", "fp32")
    steps = recipes.sampling_steps(SMOKE, model)

    def draw(st, guide=None):
        return part_b.sample_checkpoint(st, fp32, 6, 3, num_steps=steps, guide=guide)["samples"]

    plain, guide_alone = draw(state), draw(guide_state)
    assert torch.equal(draw(state, (guide_state, 0.0)), guide_alone)
    assert torch.allclose(draw(state, (guide_state, 1.0)), plain, atol=1e-5)
    pushed = draw(state, (guide_state, 3.0))
    assert (pushed - plain).abs().max() > 1e-2 and (pushed - guide_alone).abs().max() > 1e-2
    torch.save(guide_state, tmp_path / "guide.pt")
    assert part_b.load_guide(tmp_path / "guide.pt", None) is None  # the rules pass no weight where nothing is guided
    loaded = part_b.load_guide(tmp_path / "guide.pt", 3.0)
    assert loaded[1] == 3.0 and torch.equal(draw(state, loaded), pushed)
    out = part_b.draw_eval_samples(state, fp32, 6, 3, seed=3, num_steps=steps, guide=(guide_state, 3.0))
    first = part_b.sample_checkpoint(state, fp32, 3, 3, num_steps=steps, guide=(guide_state, 3.0))["samples"]
    assert (out["guide_epoch"], out["guide_weight"]) == (1, 3.0) and torch.equal(out["samples"][:3], first)
    with pytest.raises(ValueError, match="earlier epoch of the same run"):
        draw(guide_state, (state, 3.0))
    cc = dict(recipes.recipe(SMOKE, "ddpm/class_cond"), hidden=4)
    with pytest.raises(ValueError, match="time-conditioned models"):
        part_b.sample_checkpoint(dict(train.init_checkpoint(cc, "ddpm/class_cond", seed=1), epoch=2), fp32, 10, 3, guidance=5.0, guide=(guide_state, 3.0))


def test_evaluation_targets_follow_the_sample_grids():
    for cfg in (SMOKE, DEFAULT):
        targets = paths.evaluation_targets(cfg)
        assert targets[:2] == ["results/evaluation/classifier.csv", "results/evaluation/reference_metrics.csv"]
        assert len(targets) == len(set(targets))
        for model in recipes.generative_models(cfg):
            grids = paths.sample_files(cfg, model)
            metrics = paths.metrics_files(cfg, model)
            assert [p.replace("samples", "metrics").replace(".png", ".csv") for p in grids] == metrics
            assert set(metrics) <= set(targets)
            assert f"results/part_b/{model}/metrics.csv" in targets and f"results/part_b/{model}/quality_vs_epoch.png" in targets
            m = recipes.model_settings(cfg, model)
            assert (f"results/part_b/{model}/per_class_accuracy.png" in targets) == ("guidance" in m)
            assert (f"results/part_b/{model}/guidance_tradeoff.png" in targets) == bool(m.get("guidance_sweep"))
    assert "results/part_b/ddpm/class_cond/epoch_020/metrics_cfg7.csv" in paths.evaluation_targets(DEFAULT)
    assert "results/part_b/ddpm/time_cond/epoch_015/metrics.csv" in paths.evaluation_targets(DEFAULT)


def test_evaluation_config_schema(tmp_path):
    from snakemake.utils import validate

    schema = str(REPO / "config" / "schema.yaml")
    cfg = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    del cfg["evaluation"]
    validate(cfg, schema)  # the section is optional; defaults fill in
    assert cfg["evaluation"] == {"num_samples": 1000, "batch_size": 500, "min_test_accuracy": 0.99, "classifier": {"epochs": 2, "batch_size": 128, "lr": 3e-3}}
    assert DEFAULT["evaluation"] == cfg["evaluation"]  # config.yaml states the defaults
    for bad in ({"num_samples": 45}, {"batch_size": 25}, {"min_test_accuracy": 1.5}, {"classifier": {"epochs": 0}}, {"samples": 10}):
        cfg = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
        cfg["evaluation"].update(bad)
        with pytest.raises(Exception):
            validate(cfg, schema)


def test_denoiser_test_metrics_score_the_training_sigma_on_every_image(mnist):
    """part_b.test_metrics with other_limit: the training sigma on all images, the others on the
    first N; row counts are stated; every row's PSNR is 10 log10(1 / its MSE) (all three metrics
    of one clipped image); the identity 'denoiser' scores exactly what the noisy input scores, an
    MSE under sigma^2 (clipping to [0, 1] can only bring a pixel closer to the clean one)."""
    images = mnist["test"][0][:600]
    table = part_b.test_metrics(torch.nn.Identity(), images, [0.2, 0.5, 1.0], device.resolve("cpu", "fp32"), torch.Generator().manual_seed(0), full_sigma=0.5, other_limit=100)
    counts = dict(zip(table.sigma, table.num_images))
    assert counts == {0.2: 100, 0.5: 600, 1.0: 100}
    noisy = table[table.image == "noisy input"].set_index("sigma")
    denoised = table[table.image == "denoised"].set_index("sigma")
    assert noisy[["mse", "psnr_db", "ssim"]].equals(denoised[["mse", "psnr_db", "ssim"]])
    assert all(s**2 / 4 < noisy.mse[s] < s**2 for s in (0.2, 0.5, 1.0))  # about half the pixels are background, where clipping halves the error
    assert table.psnr_db.to_numpy() == pytest.approx(10 * np.log10(1 / table.mse.to_numpy()), abs=1e-4)
    full = part_b.test_metrics(torch.nn.Identity(), images, [0.2, 0.5], device.resolve("cpu", "fp32"), torch.Generator().manual_seed(0))
    assert set(full.num_images) == {600}


@pytest.mark.parametrize("sigma", [0.0, 0.1, 0.5, 1.0])
def test_image_quality_against_torchmetrics_and_the_psnr_formula(sigma):
    """Denoising PSNR/SSIM (metrics.image_quality, scikit-image): PSNR = 10 log10(1 / pooled MSE)
    exactly as torchmetrics computes it over a batch; the mean per-image SSIM within 0.01 of
    torchmetrics' (they differ only at the borders), identical images score 1."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    from fundiff import part_b

    g = torch.Generator().manual_seed(7)
    clean = torch.rand(64, 1, 28, 28, generator=g) ** 4
    pred = (clean + sigma * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    q = metrics.image_quality(pred, clean)
    if sigma == 0.0:
        assert q["ssim"] == pytest.approx(1.0) and q["psnr_db"] == float("inf")
        return
    mse = torch.mean((pred - clean) ** 2).item()
    assert q["psnr_db"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-5)
    assert q["psnr_db"] == pytest.approx(peak_signal_noise_ratio(pred, clean, data_range=1.0).item(), rel=1e-5)
    assert q["ssim"] == pytest.approx(structural_similarity_index_measure(pred, clean, data_range=1.0).item(), abs=0.01)
    one = metrics.image_quality(pred[:1], clean[:1])["ssim"]
    assert np.mean([metrics.image_quality(pred[i:i + 1], clean[i:i + 1])["ssim"] for i in range(4)]) == pytest.approx(metrics.image_quality(pred[:4], clean[:4])["ssim"], rel=1e-5)  # a mean over images
    assert 0 < one < 1


@pytest.mark.parametrize("epochs", [[10], [1, 5, 10, 15, 20]])
def test_quality_vs_epoch_axis_has_whole_epochs(tmp_path, monkeypatch, epochs):
    """The quality-against-epoch panels run from epoch 0 and tick the scored epochs, also for a
    model scored at one epoch only (matplotlib's integer locator fell back to ticks like 9.45 ...
    10.5 there)."""
    from fundiff import figures

    seen = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: seen.append(fig))
    panel = {"ylabel": "accuracy", "series": {"samples": (epochs, [0.9] * len(epochs))}, "hlines": {"real": 0.99}}
    figures.metric_panels([panel, panel], tmp_path / "q.png", "epoch", "title", integer_x=True)
    for ax in seen[0].axes:
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert lo == 0 and hi > max(epochs)
        assert [float(t) for t in ticks] == [float(e) for e in epochs]


def test_reference_row_is_class_balanced(classifier, mnist):
    """The real-digit reference plays a class-conditioned sample set: num_samples / 10 test digits
    of every digit, from one half of a seeded split of the test set (the other half is the
    Frechet reference), so that its per-digit accuracies rest on equal counts."""
    model, _ = classifier
    tx, ty = mnist["test"]
    row = evaluate.reference_row(model, tx[:2000], ty[:2000], 100, seed=7, runtime=RUNTIME)
    assert row["num_samples"] == 100 and row["fd_reference_images"] == 1000
    assert [row[f"frac_{k}"] for k in range(10)] == pytest.approx([0.1] * 10, abs=0.03)  # predicted digits of 10 real ones each
    assert row["accuracy"] >= 0.95 and all(row[f"acc_{k}"] >= 0.7 for k in range(10))


def test_gates_pass_real_digits_and_fail_noise_and_blurred_blobs(classifier, mnist):
    """The sample-quality gates on sets the classifier actually reads, 100 images each against
    the reference of 100 real digits: real test digits pass every bar; digits blurred a little
    (sigma 1 px) and two digits averaged into one (scribbles that still score a mean confidence
    above the old 0.7 bar) fail the confident fraction and the Frechet ratio; blobs (sigma 2 px)
    and uniform noise, which this classifier reads confidently as one digit (a CNN is sure of
    things it never saw), fail the Frechet ratio, the class entropy and the accuracy: no one bar
    catches everything, the set of them does."""
    from fundiff import gates
    from fundiff.samplers import gaussian_lowpass

    model, _ = classifier
    tx, ty = mnist["test"]
    ref = pd.Series(evaluate.reference_row(model, tx, ty, 100, seed=0, runtime=RUNTIME))
    assert ref.num_samples == 100 and ref.confident_fraction >= 0.9
    perm = torch.randperm(10_000, generator=torch.Generator().manual_seed(0))  # reference_row's split: first half scored, second the Frechet reference
    stats = evaluate.image_stats(model, tx[perm[5000:]], RUNTIME)
    others = perm[:5000][-100:]  # 100 digits of the first half that the reference did not score
    x, y = tx[others], ty[others]
    sets = {
        "real": x,
        "blurred": gaussian_lowpass(x, 7, 1.0),
        "averaged": (x + x.roll(1, 0)) / 2,
        "blobs": gaussian_lowpass(x, 13, 2.0),
        "noise": torch.rand(100, 1, 28, 28, generator=torch.Generator().manual_seed(3)),
    }
    value, status = {}, {}
    for name, images in sets.items():
        for conditional in (False, True):
            q = pd.Series(evaluate.sample_metrics(model, images, y if conditional else None, stats, RUNTIME))
            for r in gates.sample_rows("m", "s", q, ref, {}, conditional):
                value[name, conditional, r["gate"]], status[name, conditional, r["gate"]] = r["value"], r["status"]
    sure, ratio = "read with p >= 0.9", "Frechet distance / real digits'"
    for conditional in (False, True):
        assert {v for (n, c, _), v in status.items() if n == "real" and c == conditional} == {"PASS", "reported"}
        assert value["real", conditional, sure] >= 0.9 and value["real", conditional, ratio] < 2.5
        for name in ("blurred", "averaged"):
            assert value[name, conditional, sure] < 0.7 and status[name, conditional, sure] == "FAIL"
            assert value[name, False, ratio] > 5 and status[name, False, ratio] == "FAIL"
    assert value["averaged", False, "mean confidence"] > 0.7  # the old bar would have passed these
    for name in ("blobs", "noise"):
        assert value[name, False, ratio] > 20 and status[name, False, ratio] == "FAIL"
        assert value[name, False, "class entropy (bits)"] < 1 and status[name, False, "class entropy (bits)"] == "FAIL"
        assert value[name, True, "accuracy"] < 0.3 and status[name, True, "accuracy"] == "FAIL"


def test_hybrids_are_read_as_perceived(classifier, mnist):
    """A hybrid is read as a viewer sees it: up close the hybrid itself (intended: its high
    digit), from afar the hybrid blurred by hybrid_far_sigma (its low digit); its low- and
    high-pass components, which nobody sees alone, are not read. Records carry their views as
    views.illusion_views made them; here real digits stand in for the views so that the
    readings are known: a 3 up close, a 5 from afar, 8s as the components."""
    from fundiff import gates
    from fundiff.samplers import gaussian_lowpass

    model, _ = classifier
    tx, ty = mnist["test"]
    first = {k: int((ty == k).nonzero()[0]) for k in (3, 5, 8)}
    digit = {k: tx[i : i + 1] for k, i in first.items()}
    # what illusion_views shows and the readings take: the image itself, and its blur at far_sigma
    image = digit[3]
    shown = views.illusion_views(image, "hybrid", (7, 1.5), far_sigma=2.0)
    assert torch.equal(shown[views.HYBRID_CLOSE], image[0])
    torch.testing.assert_close(shown[views.HYBRID_FAR], gaussian_lowpass(image, views.far_kernel(2.0), 2.0)[0])
    assert views.far_kernel(2.0) == 13 and views.far_kernel(0.875) == 7
    torch.testing.assert_close(shown[1] + shown[2] - 0.5, image[0])  # low + high = the hybrid

    stand_in = torch.cat([digit[3], digit[8], digit[8], digit[5]])  # close, low-pass, high-pass, far
    records = [
        {"kind": "hybrid", "index": 0, "views": stand_in, "prompts": ("a 5", "a 3"), "view": None},  # low 5, high 3: works
        {"kind": "hybrid", "index": 1, "views": stand_in, "prompts": ("a 3", "a 5"), "view": None},  # the pair swapped: fails both views
    ]
    rows = pd.DataFrame(evaluate.part_a_readings(model, None, records, RUNTIME))
    assert rows.view.tolist() == ["up close", "from afar"] * 2 and rows.intended.tolist() == [3, 5, 5, 3]
    assert rows.predicted.tolist() == [3, 5, 3, 5] and 8 not in rows.predicted.tolist()
    assert rows.hit.tolist() == [True, True, False, False]
    assert (rows.p_predicted > 0.8).all() and (rows.p_intended[2:] < 0.1).all()
    # the gate counts a hybrid that works both ways
    gate = gates.part_a_rows(rows, gates.DEFAULTS, 0.97)
    assert len(gate) == 1 and gate[0]["value"] == 0.5 and gate[0]["status"] == "FAIL" and gate[0]["note"] == "1 of 2; 0:yes 1:no"


def test_drawn_digit_samples_are_read_for_any_digit(classifier, mnist):
    """1.5 on the MNIST model draws a digit prompt for each sample (part_a.noise_sample_prompts):
    each reading records its drawn digit, but the gate counts a confident reading of any digit,
    as for the unconditional samples, and says which prompts the samples had."""
    from fundiff import gates

    model, _ = classifier
    tx, ty = mnist["test"]
    sure = evaluate.classify(model, tx[:200], RUNTIME)["probs"].max(1).values >= 0.99  # digits it reads for sure
    first = [int(((ty[:200] == k) & sure).nonzero()[0]) for k in (3, 7, 1)]
    samples = tx[first]
    rows = pd.DataFrame(evaluate.part_a_readings(model, samples, [], RUNTIME, sample_prompts=["a 3", "a 7", "a 5"]))
    assert rows.kind.tolist() == ["sample"] * 3 and rows.prompt.tolist() == ["a 3", "a 7", "a 5"]
    assert rows.intended.tolist() == [3, 7, 5] and rows.predicted.tolist() == [3, 7, 1] and rows.hit.tolist() == [True, True, False]
    gate = gates.part_a_rows(rows, gates.DEFAULTS, 0.97)[0]
    assert gate["value"] == 1.0 and gate["status"] == "PASS"  # the 1 drawn as "a 5" is still a digit read for sure
    assert gate["setting"] == "3 samples from noise, a digit drawn for each, no guidance"
    assert gate["note"].startswith("3 of 3; read as a 3: 3 (") and " a 5: 1 (" in gate["note"]
    unprompted = pd.DataFrame(evaluate.part_a_readings(model, samples, [], RUNTIME))
    assert unprompted.prompt.tolist() == [""] * 3 and unprompted.hit.tolist() == [""] * 3
    assert gates.part_a_rows(unprompted, gates.DEFAULTS, 0.97)[0]["setting"] == "3 samples from noise, no prompt"
    with pytest.raises(ValueError):  # one prompt per sample
        evaluate.part_a_readings(model, samples, [], RUNTIME, sample_prompts=["a 3"])
