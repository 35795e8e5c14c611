"""Rule part_a_readings: the evaluation classifier's reading of the 1.5 samples and of every anagram and hybrid view (MNIST model)."""

import pandas as pd
import torch

from fundiff import evaluate
from fundiff.io import atomic_path
from fundiff.scriptutil import finish, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
model = evaluate.load_classifier(snakemake.input.classifier, runtime, min_test_accuracy=p.min_test_accuracy)
record = torch.load(snakemake.input.samples, map_location="cpu", weights_only=True)  # the MNIST model's range is [0, 1]
records = []
for path in snakemake.input.illusions:
    rec = torch.load(path, map_location="cpu", weights_only=True)
    rec["index"] = int(path.rsplit("/", 1)[1].split(".")[0])
    records.append(rec)
frame = pd.DataFrame(evaluate.part_a_readings(model, record["samples"], records, runtime, sample_prompts=record["prompts"]))
hits = frame[(frame.kind != "sample") & (frame.hit != "")]
read = frame[frame.kind == "sample"]
evaluate.log.info("1.5 samples read with p >= %g: %d of %d; illusion views read as intended: %d of %d", evaluate.CONFIDENT,
                  int((read.p_predicted >= evaluate.CONFIDENT).sum()), len(read), int(hits.hit.astype(bool).sum()), len(hits))
with atomic_path(snakemake.output[0]) as tmp:
    frame.to_csv(tmp, index=False, float_format="%.4f")
finish()
