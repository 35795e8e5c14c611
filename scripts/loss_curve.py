"""Rule loss_curve: per-step training loss of the whole run (log y) and per-epoch means."""

import pandas as pd

from fundiff import figures, train
from fundiff.io import atomic_path
from fundiff.scriptutil import finish, setup

setup(snakemake.log[0])
state = train.load_checkpoint(snakemake.input.checkpoint)
losses = state["losses"].numpy()
ends = state["epoch_ends"]
starts = [0, *ends[:-1]]
table = pd.DataFrame({"epoch": range(1, len(ends) + 1), "steps": [e - s for s, e in zip(starts, ends)], "mean_loss": [losses[s:e].mean() for s, e in zip(starts, ends)], "last_step_loss": [losses[e - 1] for e in ends]})
with atomic_path(snakemake.output.csv) as tmp:
    table.to_csv(tmp, index=False, float_format="%.6g")
model = snakemake.wildcards.model
figures.loss_curve({model: (losses, ends)}, snakemake.output.png, f"{model}: training loss over {len(ends)} epochs")
finish()
