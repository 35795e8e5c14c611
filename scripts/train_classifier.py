"""Rule train_classifier: the evaluation classifier on MNIST, checked against the accuracy floor."""

import logging
import time

import pandas as pd

from fundiff import data, evaluate, seeds
from fundiff.io import atomic_path
from fundiff.scriptutil import finish, progress, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
images, labels = data.load_split(p.data_root, "train", limit=p.train_limit)
test_images, test_labels = data.load_split(p.data_root, "test", limit=p.test_limit)
start = time.perf_counter()
model, acc = evaluate.train_classifier(
    images, labels, test_images, test_labels, seed=seeds.stream_seed(p.seed, "evaluation/classifier"),
    epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, runtime=runtime, progress=progress("classifier"),
)
logging.getLogger("fundiff").info("classifier trained and tested in %.1f s", time.perf_counter() - start)
evaluate.check_accuracy(acc, p.min_test_accuracy, test_labels.shape[0])  # nothing is written below the floor
evaluate.save_classifier(model, snakemake.output.model, acc)
# no wall time in here: every file under results/ is byte-identical between runs (the time is in
# the log and in benchmarks/evaluation/train_classifier.tsv, which the report reads)
table = pd.DataFrame([{
    "test_accuracy": acc, "num_test": test_labels.shape[0], "num_train": labels.shape[0], "epochs": p.epochs,
    "batch_size": p.batch_size, "lr": p.lr, "min_test_accuracy": p.min_test_accuracy, "runtime": runtime.describe(),
}])
with atomic_path(snakemake.output.csv) as tmp:
    table.to_csv(tmp, index=False, float_format="%.6g")
finish()
