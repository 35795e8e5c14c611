"""Rules part_a_sdedit (1.7, 1.7.1: generic prompt) and part_a_text_edit (1.7.3: a given prompt)."""

import torch

from fundiff import figures, part_a, samplers, seeds
from fundiff.scriptutil import finish, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
ctx = part_a.open_context(p.model, snakemake.input, p, runtime)
if "index" in snakemake.wildcards.keys():  # text-conditioned edit
    edit = ctx.m["text_edits"][int(snakemake.wildcards.index)]
    name, prompt = edit["image"], edit["prompt"]
else:
    name, prompt = snakemake.wildcards.image, ctx.generic_prompt
x0 = ctx.image(name)
eps_fn = ctx.eps_fn(ctx.condition([prompt]), p.pa["cfg_scale"])
results = []
for i_start in p.pa["sdedit_i_starts"]:
    generator = torch.Generator().manual_seed(seeds.stream_seed(p.seed, f"part_a/sdedit/{name}/{prompt}/{i_start}"))
    out, _ = samplers.sdedit(eps_fn, x0, ctx.timesteps, i_start, ctx.abar, generator, **ctx.sampling)
    results.append(out)
ctx.log_calls(f"SDEdit of {name}", sum(len(ctx.timesteps) - 1 - i for i in p.pa["sdedit_i_starts"]), len(results))
labels = [f"i_start={i}\n(t={ctx.timesteps[i]})" for i in p.pa["sdedit_i_starts"]] + ["original"]
figures.image_table([ctx.display(torch.cat(results + [x0]))], snakemake.output.png, col_labels=labels, title=f"{name}, " + (f"prompt {prompt!r}, CFG γ={p.pa['cfg_scale']:g}" if prompt else "empty prompt (in effect unconditional: both CFG branches see it)"))
finish()
