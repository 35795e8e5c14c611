"""Rule reference_metrics: the sample metrics of real MNIST test digits (the ceiling for the samples),
and the classifier-feature statistics of the test split that every sample set's Frechet distance uses."""

from fundiff import data, evaluate, seeds
from fundiff.io import atomic_path, save_torch
from fundiff.scriptutil import finish, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
model = evaluate.load_classifier(snakemake.input.classifier, runtime, min_test_accuracy=p.min_test_accuracy)
images, labels = data.load_split(p.data_root, "test", limit=p.test_limit)
save_torch(evaluate.image_stats(model, images, runtime), snakemake.output.stats)
row = evaluate.reference_row(model, images, labels, p.num_samples, seeds.stream_seed(p.seed, "evaluation/reference"), runtime)
with atomic_path(snakemake.output.csv) as tmp:
    evaluate.metrics_frame([row]).to_csv(tmp, index=False, float_format="%.6g")
finish()
