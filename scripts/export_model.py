"""Rule export_model: the final checkpoint's UNet (EMA weights where the recipe keeps them) as
final.safetensors + final.json, loadable with fundiff.unet.load_final."""

from fundiff import train
from fundiff.scriptutil import finish, setup

setup(snakemake.log[0])
state = train.load_checkpoint(snakemake.input.checkpoint)
train.export_final(state, snakemake.output.weights)
finish()
