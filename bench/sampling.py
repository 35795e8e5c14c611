"""python -m bench sampling: the class-conditioned samplers with classifier-free guidance, project
against a course-style loop, step by step interleaved, from the same weights and the same seeded
noise:
    project     fundiff.part_b.sample_checkpoint (fundiff.ddpm.sample / fundiff.flow.sample):
                one batched UNet call per step over [x; x] with [c; 0], the runtime of
                resolve(--device, --precision) (bf16 autocast + channels_last where it has bf16)
    course      two UNet calls per step (eps(x, t, c) and eps(x, t, 0)), fp32, default layout,
                the DDPM posterior step (or the Euler step) written out as in the course notebook
Both draw x_T and every step's z from a torch.Generator seeded alike, in the same order, so
their samples must agree up to floating-point rounding (see SAMPLE_TOLERANCE: max |difference|
within 1e-3 of max(1, max |sample|) in fp32, 5e-2 with bf16 autocast).
"""

from __future__ import annotations

import math
import statistics

import torch
import torch.nn.functional as F

from fundiff import train
from fundiff.recipes import recipe as make_recipe

from .common import clock, forward_flop_per_image, start, sync, timed

# Agreement of the project's and the course loop's final samples (same weights, same noise):
# max |project - course| <= rtol * max(1, max |course|). In fp32 the two differ only by rounding
# (channels_last vs default-layout convolution kernels, one batched call vs two), ~1e-7
# relative per operation, which the chain of T steps carries and CFG amplifies by gamma: measured
# 0 to 2e-6 on samples of size ~4-24 (300 steps, random weights); rtol 1e-3 leaves room for
# that and still catches other noise or another schedule, which moves samples by O(1).
# With bf16 autocast every UNet output carries ~2^-8 = 4e-3 relative error, at most ~2 gamma
# times that in the guided estimate; measured 1.5e-3 on samples up to 20 (D=16, 300 steps,
# random weights, --precision bf16 on this CPU); rtol 5e-2 is the per-step bound, not a
# measurement on trained weights.
SAMPLE_TOLERANCE = {"fp32": 1e-3, "bf16": 5e-2}


# no_grad as a decorator: torch applies it around each resumption of the generator (a `with`
# block inside it would stay entered, grad off, in the caller between steps)
@torch.no_grad()
def course_ddpm(model, schedule, cond, guidance, generator, device):
    """The course notebook's CFG sampler, one step per next(): two UNet calls, eps_u + gamma (eps_c - eps_u),
    x0_hat, the posterior mean of DDPM eq. 7 plus sqrt(beta_t) z (no noise on the last step)."""
    n = cond.shape[0]
    T = schedule.num_steps
    x = torch.randn((n, 1, 28, 28), generator=generator, device=device)
    uncond = torch.zeros_like(cond)
    for t in range(T, 0, -1):
        t_in = torch.full((n,), t / T, device=device)
        eps_cond = model(x, t_in, cond)
        eps_uncond = model(x, t_in, uncond)
        eps = eps_uncond + guidance * (eps_cond - eps_uncond)
        abar, abar_prev = schedule.alphas_cumprod[t].item(), schedule.alphas_cumprod[t - 1].item()
        alpha, beta = schedule.alphas[t].item(), schedule.betas[t].item()
        x0 = (x - math.sqrt(1 - abar) * eps) / math.sqrt(abar)
        if t > 1:
            z = torch.randn(x.shape, generator=generator, device=device)
            x = math.sqrt(abar_prev) * beta / (1 - abar) * x0 + math.sqrt(alpha) * (1 - abar_prev) / (1 - abar) * x + math.sqrt(beta) * z
        else:
            x = x0
        yield x


@torch.no_grad()
def course_flow(model, num_steps, cond, guidance, generator, device):
    """The course's Euler sampler with CFG, one step per next(): two UNet calls, x <- x + u / T."""
    n = cond.shape[0]
    x = torch.randn((n, 1, 28, 28), generator=generator, device=device)
    uncond = torch.zeros_like(cond)
    for i in range(num_steps):
        t = torch.full((n,), i / num_steps, device=device)
        u_cond = model(x, t, cond)
        u_uncond = model(x, t, uncond)
        x = x + (u_uncond + guidance * (u_cond - u_uncond)) / num_steps
        yield x


def sampling_state(config: dict, model: str, hidden: int, steps: int, seed: int) -> dict:
    """A fresh class-conditioned checkpoint of `model` at width `hidden` (weights do not change the timing)."""
    r = {**make_recipe(config, model), "hidden": hidden}
    if r["objective"] == "ddpm":
        r["num_steps"] = steps
    return train.init_checkpoint(r, model, seed)


def agreement(project: torch.Tensor, course: torch.Tensor, precision: str) -> dict:
    diff = (project.float() - course.float()).abs().max().item()
    scale = course.abs().max().item()
    bound = SAMPLE_TOLERANCE[precision] * max(1.0, scale)
    return {"max_abs_diff": diff, "max_abs_course": scale, "rel_rms_diff": ((project.float() - course.float()).norm() / course.norm()).item(),
            "tolerance": bound, "precision": precision, "agree": diff <= bound}


def bench_one_sampler(kind: str, args, config: dict, runtime, info: dict) -> dict:
    from fundiff import part_b

    model_name = {"ddpm": "ddpm/class_cond", "flow": "flow/class_cond"}[kind]
    state = sampling_state(config, model_name, args.hidden, args.steps, args.seed)
    course_model = train.build_model(state, use_ema=True).to(runtime.device).eval()  # fp32, default layout
    cond = F.one_hot(part_b.sample_labels(args.samples), 10).float().to(runtime.device)
    gen = torch.Generator(device=runtime.device).manual_seed(args.seed)
    if kind == "ddpm":
        course = course_ddpm(course_model, train.schedule_for(state["recipe"]), cond, args.guidance, gen, runtime.device)
    else:
        course = course_flow(course_model, args.steps, cond, args.guidance, gen, runtime.device)
    times = {"project": [], "course": []}
    last = {}

    def course_step():
        last["x"], t = timed(runtime.device, next, course)
        times["course"].append(t)

    def hook(steps):
        for i, s in enumerate(steps):
            if i % 2:  # every other step the course loop goes first: neither always gets the seat after the other
                course_step()
            sync(runtime.device)
            t0 = clock()
            yield s  # the project's sampler runs its step i here
            sync(runtime.device)
            times["project"].append(tuple(b - a for a, b in zip(t0, clock())))
            if not i % 2:
                course_step()

    out = part_b.sample_checkpoint(state, runtime, args.samples, args.seed, guidance=args.guidance,
                                   num_steps=args.steps if kind == "flow" else None, progress=hook)
    precision = "bf16" if runtime.bf16 else "fp32"
    agree = agreement(out["samples"], last["x"].cpu(), precision)
    fwd = forward_flop_per_image(train.model_config(state["recipe"]))
    flop_per_step = 2 * fwd * args.samples  # CFG: a conditional and an unconditional pass per image
    res = {"sampler": kind, "model": model_name, "forward_gflop_per_image": fwd / 1e9, "agreement": agree, "modes": {}}
    for name, ts in times.items():
        wall, cpu = zip(*ts[args.warmup :])
        s = statistics.fmean(wall)
        res["modes"][name] = {"ms_per_step": 1e3 * s, "ms_per_step_median": 1e3 * statistics.median(wall),
                              "cpu_ms_per_step": 1e3 * statistics.fmean(cpu), "images_per_s": args.samples / (s * args.steps),
                              "gflop_per_s": flop_per_step / s / 1e9, "run_s_all_steps": sum(w for w, _ in ts)}
    p, c = res["modes"]["project"], res["modes"]["course"]
    res["ratio"] = p["images_per_s"] / c["images_per_s"]
    res["ratio_step_median"] = statistics.median(b[0] / a[0] for a, b in zip(times["project"][args.warmup :], times["course"][args.warmup :]))
    return res


def bench_sampling(args) -> dict:
    runtime, config, info = start(args)
    project_mode = runtime.describe().split("), ", 1)[-1]
    print(f"setting: {args.samples} samples, {args.steps} steps, D={args.hidden}, CFG gamma {args.guidance}, "
          f"{args.warmup} burn-in steps not timed, step by step interleaved; fresh weights (seed {args.seed})")
    print(f"  project: fundiff.part_b.sample_checkpoint, one batched UNet call per step over [x; x] with [c; 0], {project_mode}")
    print("   course: two UNet calls per step (c and 0), fp32, default layout", flush=True)
    results = {**info, "samples": args.samples, "steps": args.steps, "hidden": args.hidden, "guidance": args.guidance,
               "warmup": args.warmup, "project_mode": project_mode, "samplers": {}}
    for kind in (["ddpm", "flow"] if args.sampler == "both" else [args.sampler]):
        r = bench_one_sampler(kind, args, config, runtime, info)
        results["samplers"][kind] = r
        a = r["agreement"]
        print(f"{kind} ({r['model']}, {r['forward_gflop_per_image']:.3g} GFLOP per forward per image, measured):")
        for name, m in r["modes"].items():
            print(f"  {name:>8}: {m['images_per_s']:8.3f} images/s ({m['ms_per_step']:.1f} ms/step, median {m['ms_per_step_median']:.1f}; "
                  f"CPU time {m['cpu_ms_per_step']:.1f} ms/step; {m['gflop_per_s']:.1f} GFLOP/s)")
        print(f"  ratio project/course: {r['ratio']:.2f}x images/s (median of per-step ratios {r['ratio_step_median']:.2f}x)")
        print(f"  samples agree: max |project - course| = {a['max_abs_diff']:.2e} (samples up to {a['max_abs_course']:.2f}, "
              f"relative RMS {a['rel_rms_diff']:.1e}); tolerance {a['tolerance']:.2e} for {a['precision']}: "
              f"{'AGREE' if a['agree'] else 'DISAGREE'}", flush=True)
    results["all_agree"] = all(r["agreement"]["agree"] for r in results["samplers"].values())
    return results


def add_parser(sub) -> None:
    s = sub.add_parser("sampling", help="time the CFG samplers: project (batched [x; x]) vs course loop (two calls)")
    s.add_argument("--sampler", choices=("ddpm", "flow", "both"), default="both")
    s.add_argument("--samples", type=int, default=40, help="images per run (the sample grids: 40)")
    s.add_argument("--steps", type=int, default=300, help="DDPM T / Euler steps (course: 300)")
    s.add_argument("--hidden", type=int, default=64, help="UNet width D (course: 64)")
    s.add_argument("--guidance", type=float, default=5.0, help="CFG gamma (course: 5)")
    s.add_argument("--warmup", type=int, default=2, help="burn-in steps, run but not timed")
    s.add_argument("--seed", type=int, default=180)
    s.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    s.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto", help="the project's precision")
    s.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    s.add_argument("--config", default="config/config.yaml", help="the class-conditioned recipes come from here")
    s.add_argument("--json", help="also write the results here")
    s.add_argument("--strict", action="store_true", help="exit 1 if the samples disagree")
