"""Rule part_a_sample: sampling from pure noise (1.5, no guidance) or with CFG at gamma (1.6)."""

import torch

from fundiff import figures, part_a, samplers, train
from fundiff.io import save_torch
from fundiff.scriptutil import setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
ctx = part_a.Context(train.load_checkpoint(snakemake.input.checkpoint), p.pa, p.data_root, runtime, p.base_dir)
generator = torch.Generator().manual_seed(train.stream_seed(p.seed, "part_a/samples"))  # same noise for every gamma
if p.guidance is None:  # 1.5: the generic prompt, no guidance
    prompts = [ctx.m.get("generic_prompt", "")] * p.pa["num_samples"]
else:  # 1.6: each configured prompt with classifier-free guidance
    prompts = list(ctx.m["sample_prompts"])
cond = part_a.prompt_condition(prompts)
x = torch.randn((len(prompts), 1, 28, 28), generator=generator)
out, _ = samplers.iterative_denoise(ctx.eps_fn(cond, p.guidance), x, ctx.timesteps, 0, ctx.abar, generator=generator)
ctx.log_calls("sampling", len(ctx.timesteps) - 1, len(prompts))
save_torch({"samples": out, "prompts": prompts, "guidance": p.guidance}, snakemake.output.tensors)
figures.image_table([out], snakemake.output.png, col_labels=[q or "(no prompt)" for q in prompts])
