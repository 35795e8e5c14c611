"""Rule init_model: epoch 0 checkpoint (seeded weights, optimizer, generators)."""

from fundiff import train
from fundiff.scriptutil import finish, setup

setup(snakemake.log[0])
model = snakemake.wildcards.model
state = train.init_checkpoint(dict(snakemake.params.recipe), model, snakemake.params.seed)
train.save_checkpoint(state, snakemake.output[0])
finish()
