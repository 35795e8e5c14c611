"""Rule part_a_setup (section 0): the three course prompts through stage I (64 px) then stage II (256 px)."""

import torch

from fundiff import figures, part_a, seeds
from fundiff.scriptutil import finish, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
ctx = part_a.open_context(p.model, snakemake.input, p, runtime)
steps = int(snakemake.wildcards.steps)
prompts = list(ctx.m["setup_prompts"])
dev = runtime.device
generator = torch.Generator().manual_seed(seeds.stream_seed(p.seed, f"part_a/setup/{steps}"))
# the pipeline's own sampler (with its thresholding and CFG 7), from precomputed embeddings
low = ctx.pipe(prompt_embeds=ctx.condition(prompts).to(dev), negative_prompt_embeds=ctx.uncond.expand(len(prompts), -1, -1).to(dev),
               num_inference_steps=steps, generator=generator, output_type="pt").images.float().cpu()
part_a.log.info("stage I: %d images of %s in %d steps", len(prompts), tuple(low.shape[1:]), steps)
high = ctx.upsample(low, prompts, generator, steps=steps)
part_a.log.info("stage II: %d images of %s in %d steps", len(prompts), tuple(high.shape[1:]), steps)
big = torch.nn.functional.interpolate(low, size=high.shape[-1], mode="nearest")
figures.image_table([ctx.display(big), ctx.display(high)], snakemake.output.png, row_labels=["stage I (64 px)", "stage II (256 px)"],
                    col_labels=prompts, title=f"num_inference_steps = {steps}, seed {p.seed}", cell=2.0)
finish()
