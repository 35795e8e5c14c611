"""Rule part_a_iterative: iterative denoising from timesteps[i_start] (1.4) against one step and blur."""

import pandas as pd
import torch

from fundiff import figures, metrics, part_a, samplers, seeds
from fundiff.io import atomic_path
from fundiff.scriptutil import finish, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
ctx = part_a.open_context(p.model, snakemake.input, p, runtime)
generator = torch.Generator().manual_seed(seeds.stream_seed(p.seed, "part_a/iterative"))
x0 = ctx.image("test")
i_start = p.pa["iterative_i_start"]
t = ctx.timesteps[i_start]
x_t = samplers.forward(x0, t, ctx.abar, torch.randn(x0.shape, generator=generator))
eps_fn = ctx.eps_fn(ctx.generic, None)
final, trace = samplers.iterative_denoise(eps_fn, x_t, ctx.timesteps, i_start, ctx.abar, generator=generator, keep_every=p.pa["keep_every"], **ctx.sampling)
ctx.log_calls("iterative denoising", len(ctx.timesteps) - 1 - i_start, 1)
one = samplers.one_step(eps_fn, x_t, t, ctx.abar)
k, s = ctx.blur
blurred = samplers.blur(x_t, k, s)
progression = torch.cat([x_t] + [x for _, x in trace.kept])
labels = [f"t={t}"] + [f"t={ctx.timesteps[i]}" for i, _ in trace.kept]
figures.image_table(
    [ctx.display(progression), ctx.display(torch.cat([x0, final, one, blurred]))],
    snakemake.output.png,
    row_labels=["progression", "comparison"],
    col_labels=labels,
    cell_labels=[None, ["clean", "iterative", "one-step", f"blur (k={k}, σ={s:.2f})"]],
    title=f"iterative denoising from i_start={i_start} (t={t})",
)
records = [{"estimate": n, **metrics.image_quality(ctx.display(img), ctx.display(x0))} for n, img in (("noisy", x_t), ("iterative", final), ("one-step", one), ("gaussian blur", blurred))]
with atomic_path(snakemake.output.csv) as tmp:
    pd.DataFrame(records).assign(i_start=i_start, model_t=t).to_csv(tmp, index=False, float_format="%.4f")
finish()
