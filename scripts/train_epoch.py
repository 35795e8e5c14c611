"""Rule train_epoch: one epoch from the previous checkpoint to the next."""

from fundiff import data, train
from fundiff.scriptutil import finish, progress, setup

runtime = setup(snakemake.log[0], snakemake.threads, snakemake.params.device, snakemake.params.precision)
recipe = dict(snakemake.params.recipe)
state = train.load_checkpoint(snakemake.input.checkpoint, expect_recipe=recipe)
images, labels = data.load_split(snakemake.params.data_root, "train", limit=recipe["train_limit"])
images, labels = data.to_float(images, runtime.device), labels.to(runtime.device)
name = f"{snakemake.wildcards.model} epoch {state['epoch'] + 1}/{recipe['epochs']}"
state = train.train_epoch(state, images, labels, runtime, progress=progress(name))
state["runtime"] = runtime.describe()
train.save_checkpoint(state, snakemake.output[0])
finish()
