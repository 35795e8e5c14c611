"""Rule sample_metrics: classifier accuracy, confidence, diversity, class entropy and Frechet distance of one sample set."""

import torch

from fundiff import evaluate
from fundiff.io import atomic_path
from fundiff.scriptutil import finish, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
model = evaluate.load_classifier(snakemake.input.classifier, runtime, min_test_accuracy=p.min_test_accuracy)
sample_set = torch.load(snakemake.input.samples, map_location="cpu", weights_only=True)
reference = torch.load(snakemake.input.reference_stats, map_location="cpu", weights_only=True)  # the test split's features
row = evaluate.sample_metrics(model, sample_set["samples"], sample_set["labels"], reference, runtime)
name = snakemake.wildcards.gen_model
row.update(model=name, edition=name.split("/")[0], epoch=sample_set["epoch"], guidance=sample_set["guidance"])
with atomic_path(snakemake.output[0]) as tmp:
    evaluate.metrics_frame([row]).to_csv(tmp, index=False, float_format="%.6g")
finish()
