"""Rule sample_eval: `evaluation.num_samples` samples of one (epoch, gamma) setting, in batches, for the metrics."""

from fundiff import evaluate, train
from fundiff.io import save_torch
from fundiff.scriptutil import progress, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
state = train.load_checkpoint(snakemake.input.checkpoint)
model = snakemake.wildcards.gen_model
seed = train.stream_seed(p.seed, f"part_b/{model}/eval")  # apart from the grids' stream; the same noise for every epoch and gamma
out = evaluate.draw_eval_samples(
    state, runtime, p.num_samples, p.batch_size, seed, guidance=p.guidance, num_steps=p.num_steps,
    progress=lambda desc: progress(f"eval samples {model} {desc}"),
)
save_torch({**out, "model": model}, snakemake.output[0])
