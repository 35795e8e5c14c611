"""Rule sample_model: the evaluation's sample set of one (epoch, gamma) setting of a DDPM or flow
checkpoint (CFG for class models), in batches; its first part_b.num_samples make the grid."""

from fundiff import figures, part_b, train
from fundiff.io import save_torch
from fundiff.scriptutil import finish, progress, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
state = train.load_checkpoint(snakemake.input.checkpoint)
model = snakemake.wildcards.gen_model
seed = part_b.eval_seed(p.seed, model)
guide = part_b.load_guide(snakemake.input.guide, p.guide_weight)
out = part_b.draw_eval_samples(
    state, runtime, p.num_samples, p.batch_size, seed, guidance=p.guidance, num_steps=p.num_steps, variance=p.variance, guide=guide,
    progress=lambda desc: progress(f"sampling {model} {desc}"),
)
save_torch({**out, "model": model}, snakemake.output.eval_samples)
grid = {**out, "samples": out["samples"][: p.grid_samples], "labels": None if out["labels"] is None else out["labels"][: p.grid_samples]}
save_torch(grid, snakemake.output.tensors)
figures.save_png(figures.tile(grid["samples"], nrow=10), snakemake.output.png)
finish()
