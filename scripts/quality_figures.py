"""Rule quality_figures: per generative model, every setting's metrics in one CSV, quality against
epoch, and for class-conditioned models accuracy per digit and the guidance trade-off."""

import pandas as pd

from fundiff import evaluate, figures
from fundiff.paths import at_gamma
from fundiff.io import atomic_path
from fundiff.scriptutil import finish, setup

setup(snakemake.log[0])
ref = pd.read_csv(snakemake.input.reference).iloc[0]
REAL = "real test digits"


def vs_epoch(model, table, guidance, path):
    shown = at_gamma(table, guidance).sort_values("epoch")
    epochs = shown.epoch.astype(int).tolist()
    label = "samples" if guidance is None else f"samples, γ = {guidance:g}"
    if guidance is None:
        left = {"ylabel": "entropy of the predicted digit (bits)", "series": {label: (epochs, shown.class_entropy_bits.tolist())},
                "hlines": {f"uniform over 10 digits ({evaluate.MAX_ENTROPY_BITS:.2f})": evaluate.MAX_ENTROPY_BITS, f"{REAL} ({ref.class_entropy_bits:.2f})": ref.class_entropy_bits}, "ylim": (0, 3.5)}
    else:
        left = {"ylabel": "classifier accuracy (intended digit)", "series": {label: (epochs, shown.accuracy.tolist())}, "hlines": {REAL: ref.accuracy}, "ylim": (0, 1.08)}
    right = {"ylabel": "Frechet distance to the test split", "series": {label: (epochs, shown.frechet_distance.tolist())}, "hlines": {REAL: ref.frechet_distance}}
    n = int(table.num_samples.iloc[0])
    figures.metric_panels([left, right], path, "epoch", f"{model}: {n} samples per epoch, scored by the MNIST classifier", integer_x=True)


def per_class(model, table, guidance, epoch, path):
    row = at_gamma(table[table.epoch == epoch], guidance).iloc[0]
    digits = list(range(10))
    series = {
        f"samples (epoch {epoch}, γ = {guidance:g}, {int(row.num_samples)} in all)": [row[f"acc_{k}"] for k in digits],
        f"{REAL} ({int(ref.num_samples)})": [ref[f"acc_{k}"] for k in digits],
    }
    figures.grouped_bars(digits, series, path, "intended digit", "classifier accuracy", f"{model}: accuracy per digit", ylim=(0, 1.05))


def tradeoff(model, table, epoch, path):
    final = table[table.epoch == epoch].sort_values("guidance")
    gammas = final.guidance.tolist()
    panels = [
        {"ylabel": "classifier accuracy (intended digit)", "series": {"samples": (gammas, final.accuracy.tolist())}, "hlines": {REAL: ref.accuracy}, "ylim": (0, 1.08)},
        {"ylabel": "within-class diversity (feature L2)", "series": {"samples": (gammas, final.diversity.tolist())}, "hlines": {REAL: ref.diversity}},
        {"ylabel": "Frechet distance to the test split", "series": {"samples": (gammas, final.frechet_distance.tolist())}, "hlines": {REAL: ref.frechet_distance}},
    ]
    n = int(final.num_samples.iloc[0])
    figures.metric_panels(panels, path, "CFG scale γ", f"{model}, epoch {epoch}: guidance trade-off ({n} samples per γ)", xticks=gammas)


for model, q in snakemake.params.models.items():
    out = q["outputs"]
    table = evaluate.metrics_frame(pd.concat([pd.read_csv(f) for f in q["metrics"]]).to_dict("records"))
    table = table.sort_values(["epoch", "guidance"]).reset_index(drop=True)
    with atomic_path(out["csv"]) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    vs_epoch(model, table, q["guidance"], out["vs_epoch"])
    if "per_class" in out:
        per_class(model, table, q["guidance"], q["final_epoch"], out["per_class"])
    if "tradeoff" in out:
        tradeoff(model, table, q["final_epoch"], out["tradeoff"])
finish()
