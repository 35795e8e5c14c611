"""Rule export_model: the final checkpoint's UNet (EMA weights where the recipe keeps them) as
final.safetensors + final.json, loadable with fundiff.unet.load_final; and device.txt, where the
model was trained, as its training jobs recorded it (the report lists it)."""

from fundiff import train
from fundiff.io import atomic_path
from fundiff.scriptutil import finish, setup

setup(snakemake.log[0])
state = train.load_checkpoint(snakemake.input.checkpoint)
train.export_final(state, snakemake.output.weights)
with atomic_path(snakemake.output.device) as tmp:
    tmp.write_text(f"{state.get('runtime', 'unknown')}\n")
finish()
