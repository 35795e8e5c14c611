"""Rule step_comparison: final class-conditioned models of each edition at several step counts, timed."""

import time

import pandas as pd
import torch

from fundiff import figures, part_b, seeds, train
from fundiff.io import atomic_path
from fundiff.scriptutil import finish, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
rows, grids, labels = [], [], []
for model, path in zip(p.models, snakemake.input.checkpoints):
    state = train.load_checkpoint(path)
    edition = model.split("/")[0]
    seed = seeds.stream_seed(p.seed, f"part_b/{model}/samples")
    for steps in p.steps:
        if runtime.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = part_b.sample_checkpoint(state, runtime, p.num_samples, seed, guidance=p.guidance[edition], num_steps=steps, variance=p.variance)
        if runtime.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        rows.append({"edition": edition, "steps": steps, "num_samples": p.num_samples, "guidance": p.guidance[edition], "wall_time_s": seconds})
        grids.append(out["samples"][:20])
        labels.append(f"{edition}, {steps} steps\n{seconds:.2f} s")
with atomic_path(snakemake.output.csv) as tmp:
    pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.4g")
figures.image_table(grids, snakemake.output.png, row_labels=labels, title=f"{p.num_samples} samples per run" + ("; first 20 shown" if p.num_samples > 20 else "") + (" (digits 0-9 twice)" if p.num_samples >= 20 else " (digits 0-9)"), cell=0.6)
finish()
