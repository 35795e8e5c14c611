"""Rule part_a_noising: forward process (1.1), Gaussian blur (1.2) and one-step estimates (1.3)."""

import pandas as pd
import torch

from fundiff import figures, metrics, part_a, samplers, seeds
from fundiff.io import atomic_path
from fundiff.scriptutil import finish, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
ctx = part_a.open_context(p.model, snakemake.input, p, runtime)
generator = torch.Generator().manual_seed(seeds.stream_seed(p.seed, "part_a/noising"))
x0 = ctx.image("test")
eps_fn = ctx.eps_fn(ctx.generic, None)
k, s = ctx.blur
rows, labels, records = [], [], []
for t_ref in p.pa["forward_t"]:
    t = ctx.scaled(t_ref)
    x_t = samplers.forward(x0, t, ctx.abar, torch.randn(x0.shape, generator=generator))
    blurred = samplers.blur(x_t, k, s)
    estimate = samplers.one_step(eps_fn, x_t, t, ctx.abar)
    rows.append(ctx.display(torch.cat([x0, x_t, blurred, estimate])))
    labels.append(f"t = {t_ref}\n(model t = {t})")
    for name, img in (("noisy", x_t), ("gaussian blur", blurred), ("one-step", estimate)):
        records.append({"t": t_ref, "model_t": t, "estimate": name, **metrics.image_quality(ctx.display(img), ctx.display(x0))})
ctx.log_calls("one-step estimates", len(rows), len(rows))
figures.image_table(rows, snakemake.output.png, row_labels=labels, col_labels=["clean", "noisy x_t", f"blur k={k} σ={s:.2f}", "one-step x̂0"])
with atomic_path(snakemake.output.csv) as tmp:
    pd.DataFrame(records).to_csv(tmp, index=False, float_format="%.4f")
finish()
