"""Rule part_a_illusion: visual anagrams (1.8, upside down or turned half round) and hybrid images (1.9)."""

import torch

from fundiff import figures, part_a, samplers, seeds
from fundiff.views import VIEW_NAMES, illusion_views
from fundiff.io import save_torch
from fundiff.scriptutil import finish, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
ctx = part_a.open_context(p.model, snakemake.input, p, runtime)
kind, index = snakemake.wildcards.kind, int(snakemake.wildcards.index)
gamma = p.pa["cfg_scale"]
generator = torch.Generator().manual_seed(seeds.stream_seed(p.seed, f"part_a/{kind}/{index}"))
x = ctx.noise(1, generator)
view = ctx.m["anagram_view"]  # the schema fills in "flip"
if kind == "anagram":
    pair = ctx.m["anagrams"][index]
    prompts = (pair["upright"], pair["flipped"])
    c1, c2 = ctx.condition(list(prompts)).split(1)
    eps_fn = lambda x, t: samplers.anagram_call(ctx.model, x, t, c1, c2, ctx.uncond, gamma, samplers.ANAGRAM_VIEWS[view])  # noqa: E731
else:
    pair = ctx.m["hybrids"][index]
    prompts = (pair["low"], pair["high"])
    c1, c2 = ctx.condition(list(prompts)).split(1)
    k, s = ctx.hybrid_blur
    eps_fn = lambda x, t: samplers.hybrid_call(ctx.model, x, t, c1, c2, ctx.uncond, gamma, k, s)  # noqa: E731
out, _ = samplers.iterative_denoise(eps_fn, x, ctx.timesteps, 0, ctx.abar, generator=generator, **ctx.sampling)
ctx.log_calls(f"{kind} {prompts}", len(ctx.timesteps) - 1, 1)
views = illusion_views(ctx.display(out), kind, ctx.hybrid_blur, view, ctx.far_sigma)
if kind == "anagram":
    labels = [f"upright: {prompts[0]!r}", f"{VIEW_NAMES[view]}: {prompts[1]!r}"]
else:
    far = "seen from afar" if ctx.far_sigma is None else f"from afar (blur σ {ctx.far_sigma:g} px)"
    labels = ["hybrid (up close)", f"low-pass ({prompts[0]!r})", f"high-pass + 0.5 ({prompts[1]!r})", far]
record = {"image": out, "views": views, "prompts": prompts, "kind": kind, "view": view if kind == "anagram" else None}
rows, row_labels = [views], []
if ctx.m.get("upsample"):  # DeepFloyd: stage II with the same views, so the illusion survives at 256 px
    up = ctx.upsample_illusion(out, kind, (c1, c2), gamma, torch.Generator().manual_seed(seeds.stream_seed(p.seed, f"part_a/{kind}/{index}/stage2")))
    big = illusion_views(ctx.display(up), kind, ctx.hybrid_blur_at(up.shape[-1]), view)
    rows = [torch.nn.functional.interpolate(views, size=up.shape[-1], mode="nearest"), big]
    row_labels = ["stage I (64 px)", "stage II (256 px)"]
    record["upsampled"] = up
save_torch(record, snakemake.output.tensors)
figures.image_table(rows, snakemake.output.png, row_labels=row_labels, col_labels=labels, cell=1.4 if p.model == "mnist" else 2.0)
finish()
