"""Rule sampling_gif: animation of the final model's sampling run, from noise to digits."""

from fundiff import figures, part_b, seeds, train
from fundiff.scriptutil import finish, progress, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
state = train.load_checkpoint(snakemake.input.checkpoint)
model = snakemake.wildcards.gen_model
seed = seeds.stream_seed(p.seed, f"part_b/{model}/samples")
guide = part_b.load_guide(snakemake.input.guide, p.guide_weight)
out = part_b.sample_checkpoint(
    state, runtime, p.num_samples, seed, guidance=p.guidance, num_steps=p.num_steps, variance=p.variance, guide=guide, record=p.frames, progress=progress(f"sampling {model}")
)
figures.save_gif(out["frames"], snakemake.output[0], nrow=10)
finish()
