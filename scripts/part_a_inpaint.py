"""Rule part_a_inpaint: RePaint-style inpainting of a rectangle (1.7.2)."""

import torch

from fundiff import figures, part_a, samplers, seeds
from fundiff.scriptutil import finish, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
ctx = part_a.open_context(p.model, snakemake.input, p, runtime)
index = int(snakemake.wildcards.index)
entry = ctx.m["inpaint"][index]
x0 = ctx.image(entry["image"])
mask = ctx.mask(entry)
generator = torch.Generator().manual_seed(seeds.stream_seed(p.seed, f"part_a/inpaint/{index}"))
eps_fn = ctx.eps_fn(ctx.generic, p.pa["cfg_scale"])
out, _ = samplers.inpaint(eps_fn, x0, mask, ctx.timesteps, ctx.abar, generator, **ctx.sampling)
ctx.log_calls(f"inpainting {entry['image']}", len(ctx.timesteps) - 1, 1)
changed_outside = ((out - x0).abs() * (1 - mask)).max().item()
part_a.log.info("largest change outside the hole: %.2e (the last step pastes the known pixels back)", changed_outside)
where = f"rows {entry['rect'][0]}:{entry['rect'][1]}, cols {entry['rect'][2]}:{entry['rect'][3]}" if "rect" in entry else f"mask {entry['mask']}"
shown = [ctx.display(x0), mask.expand_as(x0), ctx.display(x0) * (1 - mask), ctx.display(out)]
figures.image_table([torch.cat(shown)], snakemake.output.png, col_labels=["original", "mask", "to fill", "inpainted"], title=f"{entry['image']}, {where}")
finish()
