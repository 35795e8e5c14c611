"""Rule quality_gates: every gate of the config's quality_gates, measured -> results/quality_gates.csv."""

import logging

from fundiff import gates
from fundiff.io import atomic_path
from fundiff.scriptutil import finish, setup

setup(snakemake.log[0])
frame = gates.evaluate(snakemake.params.config, "results", figures=list(snakemake.input.figures), part_a_model=snakemake.params.part_a_model)
for row in frame.itertuples():
    logging.getLogger("fundiff").info("%-4s %s %s (%s): %s %s %s (real digits: %s) %s", row.status, row.model, row.gate, row.setting, row.value, row.op, row.bar, row.real, row.note)
logging.getLogger("fundiff").info("%s", gates.summary(frame))
with atomic_path(snakemake.output[0]) as tmp:
    frame.to_csv(tmp, index=False)
finish()
