"""Rule sample_model: one batched sampling run from a DDPM or flow checkpoint (CFG for class models)."""

from fundiff import figures, part_b, train
from fundiff.io import save_torch
from fundiff.scriptutil import progress, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
state = train.load_checkpoint(snakemake.input.checkpoint)
model = snakemake.wildcards.gen_model
seed = train.stream_seed(p.seed, f"part_b/{model}/samples")  # the same x_T for every epoch and gamma
out = part_b.sample_checkpoint(state, runtime, p.num_samples, seed, guidance=p.guidance, num_steps=p.num_steps, progress=progress(f"sampling {model}"))
save_torch({k: v for k, v in out.items() if k != "frames"}, snakemake.output.tensors)
figures.save_png(figures.tile(out["samples"], nrow=10), snakemake.output.png)
