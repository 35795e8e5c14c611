"""Rule part_a_illusion: visual anagrams (1.8, upside down) and hybrid images (1.9)."""

import torch

from fundiff import figures, part_a, samplers, train
from fundiff.io import save_torch
from fundiff.scriptutil import setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
ctx = part_a.Context(train.load_checkpoint(snakemake.input.checkpoint), p.pa, p.data_root, runtime, p.base_dir)
kind, index = snakemake.wildcards.kind, int(snakemake.wildcards.index)
gamma = p.pa["cfg_scale"]
generator = torch.Generator().manual_seed(train.stream_seed(p.seed, f"part_a/{kind}/{index}"))
x = torch.randn((1, 1, 28, 28), generator=generator)
if kind == "anagram":
    pair = ctx.m["anagrams"][index]
    prompts = (pair["upright"], pair["flipped"])
    c1, c2 = part_a.prompt_condition(list(prompts)).split(1)
    eps_fn = lambda x, t: samplers.anagram_call(ctx.model, x, t, c1, c2, ctx.uncond, gamma)  # noqa: E731
else:
    pair = ctx.m["hybrids"][index]
    prompts = (pair["low"], pair["high"])
    c1, c2 = part_a.prompt_condition(list(prompts)).split(1)
    k, s = ctx.hybrid_blur
    eps_fn = lambda x, t: samplers.hybrid_call(ctx.model, x, t, c1, c2, ctx.uncond, gamma, k, s)  # noqa: E731
out, _ = samplers.iterative_denoise(eps_fn, x, ctx.timesteps, 0, ctx.abar, generator=generator)
ctx.log_calls(f"{kind} {prompts}", len(ctx.timesteps) - 1, 1)
if kind == "anagram":
    views, labels = torch.cat([out, samplers.flip(out)]), [f"upright: {prompts[0]!r}", f"flipped: {prompts[1]!r}"]
else:
    k, s = ctx.hybrid_blur
    low = samplers.blur(out, k, s)
    views, labels = torch.cat([out, low, out - low + 0.5]), ["hybrid", f"low-pass ({prompts[0]!r})", f"high-pass + 0.5 ({prompts[1]!r})"]
save_torch({"image": out, "views": views, "prompts": prompts, "kind": kind}, snakemake.output.tensors)
figures.image_table([views], snakemake.output.png, col_labels=labels, cell=1.4)
