"""Rule part_a_sample: sampling from pure noise (1.5, no guidance) or with CFG at gamma (1.6: on DeepFloyd
num_samples images of the generic prompt; the configured sample_prompts form an extra figure)."""

import torch

from fundiff import figures, part_a, samplers, seeds
from fundiff.io import save_torch
from fundiff.scriptutil import finish, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
ctx = part_a.open_context(p.model, snakemake.input, p, runtime)
generator = torch.Generator().manual_seed(seeds.stream_seed(p.seed, "part_a/samples"))  # same noise for every gamma
generic = [ctx.generic_prompt] * p.pa["num_samples"]
if p.guidance is None:  # 1.5: no guidance; the generic prompt (MNIST: a digit drawn for each sample, its own stream)
    prompts = ctx.noise_prompts(p.pa["num_samples"], seeds.generator(p.seed, "part_a/samples/prompts"))
elif p.extra_prompts or p.model == "mnist":  # an extra on DeepFloyd; on MNIST 1.6 itself (its generic prompt "" is the unconditional one, which CFG leaves unguided)
    prompts = list(ctx.m["sample_prompts"])
else:  # 1.6 on DeepFloyd: num_samples images of "a high quality photo" with CFG (course)
    prompts = generic
cond = ctx.condition(prompts)
x = ctx.noise(len(prompts), generator)
out, _ = samplers.iterative_denoise(ctx.eps_fn(cond, p.guidance), x, ctx.timesteps, 0, ctx.abar, generator=generator, **ctx.sampling)
ctx.log_calls("sampling", len(ctx.timesteps) - 1, len(prompts))
record = {"samples": out, "prompts": prompts, "guidance": p.guidance}
rows, row_labels = [ctx.display(out)], ["64 px (stage I)" if p.model != "mnist" else "28 px"]
if ctx.m.get("upsample"):  # DeepFloyd: stage II to 256 px, same prompts, seeded
    generator2 = torch.Generator().manual_seed(seeds.stream_seed(p.seed, "part_a/samples/stage2"))
    record["upsampled"] = ctx.upsample(out.clamp(-1, 1), prompts, generator2, steps=min(ctx.m["num_inference_steps"]))
    rows.append(ctx.display(record["upsampled"]))
    row_labels.append("256 px (stage II)")
save_torch(record, snakemake.output.tensors)
figures.image_table(rows, snakemake.output.png, row_labels=row_labels if len(rows) > 1 else (), col_labels=[q or "(no prompt)" for q in prompts], cell=0.9 if len(rows) == 1 else 1.6)
finish()
