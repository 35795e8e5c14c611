"""Benchmarks: the project's code against course-style code, and the whole Part B recipe, timed.

    python -m fundiff.bench train     [--hidden 128] [--batch 256] [--steps 10] [--warmup 2]
                                      [--data-root data/mnist] [--synthetic] [--threads T]
                                      [--loss-steps 60] [--json PATH] [--strict]
    python -m fundiff.bench sampling  [--sampler ddpm|flow|both] [--samples 40] [--steps 300]
                                      [--hidden 64] [--guidance 5] [--warmup 2] [--device auto]
                                      [--precision auto] [--threads T] [--json PATH]
    python -m fundiff.bench recipe    [--device auto|cuda|cpu] [--scale F] [--config PATH]
                                      [--synthetic] [--threads T] [--models M,..] [--json PATH]
                                      [--no-cuda-graphs] [--compile] [--concurrent]
    python -m fundiff.bench threads   [--threads 8,2] [--hidden 64] [--batch 128] [--steps 6]
    python -m fundiff.bench dag       [--config config/smoke.yaml] [--cores 2] [--directory DIR]
                                      [--summarize DIR] [--bar 180] [--json PATH] [--strict]

Every command first prints the CPU model, its flags that matter for PyTorch's CPU kernels and
which bf16 path it judged the CPU to have: AMX (amx_bf16), AVX512-bf16 (avx512_bf16 without
AMX) or neither. On neither, `precision: auto` runs fp32 (no bf16 autocast), so the project's
modes below are fp32 there; the text of each command says what every mode actually ran as.

train: the training step, modes all on the same machine, from the same initial weights
(single-step denoiser recipe):
    project     fundiff.train.train_epoch itself (whole split in memory as one float tensor,
                seeded permutation, noise per batch, bf16 autocast + channels_last when
                fundiff.device.resolve("auto", "auto") says so, else fp32 + channels_last); it is
                timed through its progress hook, so what is measured is exactly the pipeline's loop body
    reference   the course notebook: DataLoader(MNIST(transform=ToTensor()), shuffle=True),
                z = x + 0.5 randn_like(x), MSE(model(z), x), Adam; fp32, default layout
    plain_bf16  the reference loop plus bf16 autocast and channels_last (on a CPU without
                AVX512-bf16 or AMX this is bf16 without hardware support for it)
The modes are interleaved step by step (project, reference, plain_bf16, project, plain_bf16,
reference, ...), so that load from other processes hits all of them alike. Burn-in steps are run and dropped; every
timed step is bracketed by a synchronize (on CUDA) and time.perf_counter; the process's CPU time
(time.process_time) is recorded beside it, since on a shared, oversubscribed machine it is the
steadier of the two (with --threads 1 especially).
FLOPs: the UNet at D=128 costs ~1.07 GMAC = 2.14 GFLOP forward per 28x28 image; a training
step (forward + backward for inputs and weights) is taken as 3x that, 6.4 GFLOP per image,
scaling as (D/128)^2 (the first and last convolutions, which scale as D, are negligible).
Bars (issue 14), judged on the median of per-step ratios: on every machine, the project's step
at least as fast as plain bf16 + channels_last; on AMX CPUs also project/reference >= 5 with the
loss after equal steps within 2 % of the reference's. --strict exits 1 when a bar that applies
to this machine fails; without it the verdicts are printed and the exit status is 0.

sampling: the class-conditioned samplers with classifier-free guidance, project against a
course-style loop, step by step interleaved, from the same weights and the same seeded noise:
    project     fundiff.part_b.sample_checkpoint (fundiff.ddpm.sample / fundiff.flow.sample):
                one batched UNet call per step over [x; x] with [c; 0], the runtime of
                resolve(--device, --precision) (bf16 autocast + channels_last where it has bf16)
    course      two UNet calls per step (eps(x, t, c) and eps(x, t, 0)), fp32, default layout,
                the DDPM posterior step (or the Euler step) written out as in the course notebook
Both draw x_T and every step's z from a torch.Generator seeded alike, in the same order, so
their samples must agree up to floating-point rounding (see SAMPLE_TOLERANCE: max |difference|
within 1e-3 of max(1, max |sample|) in fp32, 5e-2 with bf16 autocast).

recipe: every model and every epoch of the config's Part B training recipe (fundiff.recipes
.models / recipe, fundiff.train.init_checkpoint / train_epoch, the training split in memory on
the device), then the Part B sampling jobs the config asks for (the evaluation samples of every
grid setting of recipes.sample_files, evaluation.num_samples per setting in batches of
evaluation.batch_size, the grid being their first part_b.num_samples; the sampling animations;
the step comparison), through the project's
own functions. --scale F runs ceil(F x steps) of each epoch's steps and of each sampling run's
steps, and extrapolates to the full recipe (per-epoch and per-run fixed costs are measured and
added once each). FLOP per image are measured with torch.utils.flop_counter.FlopCounterMode on
one training step (forward and backward counted as run, not 3x a forward) and one forward pass
(sampling); it counts convolutions and matrix products only. --compile runs the UNet through
torch.compile (inductor) in every training step; --concurrent trains all the models at once,
one step of each in turn, each on its own CUDA stream (train_concurrently), and times them
together: one figure for all of Part B training instead of one per model.

threads: training steps of the D=64 class-conditioned DDPM UNet at several torch thread counts
in one process, interleaved, to show what asking for more threads than cores costs.

dag: the whole workflow from nothing, as a user runs it: `snakemake --cores N --configfile
CONFIG` in a fresh directory (a temporary one unless --directory), timed from start to end, then
every job's benchmark file (each rule declares one) summed up: the span, the sum of the jobs'
wall times, how busy the cores were, the slowest jobs and the time per rule. --summarize DIR
only reads the benchmark files of a finished run. The bar (issue 14): the smoke DAG within 180 s
on 2 cores (--bar; --strict exits 1 when the span exceeds it).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import json
import math
import os
import re
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import data, recipes, train
from .device import DeviceError, cpu_flags, cpu_model, resolve
from .machine import GFLOP_TRAIN_IMAGE_D128 as GFLOP_PER_IMAGE_D128
from .recipes import recipe as make_recipe
from .scriptutil import usable_cpus

LOSS_CHECK = {"hidden": 16, "batch": 64, "tolerance": 0.02}  # the AMX bar: within 2 %
COURSE_SINGLE_STEP = {"hidden": 128, "sigma": 0.5, "batch_size": 256, "lr": 1e-4, "epochs": 5, "lr_decay": None}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def load_recipe(config_path: Path, hidden: int, batch: int) -> tuple[dict, int]:
    """The single_step recipe of config/config.yaml (course values if it is missing), resized."""
    import yaml

    if config_path.exists():
        config = yaml.safe_load(config_path.read_text())
    else:
        config = {"seed": 180, "data": {"train_limit": None}, "part_b": {"single_step": COURSE_SINGLE_STEP}}
    return {**make_recipe(config, "single_step"), "hidden": hidden, "batch_size": batch}, config["seed"]


class Uint8Images(torch.utils.data.Dataset):
    """Synthetic stand-in for torchvision's MNIST: uint8 images, converted per item like ToTensor."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i].unsqueeze(0).float().div(255.0), int(self.labels[i])


def load_data(args, n_synthetic: int):
    """(uint8 images [N,28,28], int64 labels [N], per-item dataset for the DataLoader modes)."""
    if args.synthetic:
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (n_synthetic, 28, 28), dtype=torch.uint8, generator=g)
        labels = torch.randint(0, 10, (n_synthetic,), generator=g)
        return images, labels, Uint8Images(images, labels)
    import torchvision

    root = Path(args.data_root)
    if not (root / "MNIST" / "raw").exists():
        print(f"MNIST not under {root}; fetching it", flush=True)
        data.download_mnist(root, root / "mnist_manifest.json")
    images, labels = data.load_split(root, "train")
    ds = torchvision.datasets.MNIST(str(root), train=True, download=False, transform=torchvision.transforms.ToTensor())
    return images, labels, ds


def loader_step(ds, state, runtime, bf16: bool, sampler=None, losses=None):
    """One course-style step per call: DataLoader batch, x + sigma randn_like(x), MSE, Adam."""
    recipe = state["recipe"]
    model = train.build_model(state).to(runtime.device)
    if bf16:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    shuffle = sampler is None
    loader = torch.utils.data.DataLoader(ds, batch_size=recipe["batch_size"], shuffle=shuffle, sampler=sampler)
    batches = iter(loader)

    def step():
        nonlocal batches
        try:
            x, _ = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, _ = next(batches)
        x = x.to(runtime.device)
        if bf16:
            x = x.contiguous(memory_format=torch.channels_last)
        z = x + recipe["sigma"] * torch.randn_like(x)
        with torch.autocast(runtime.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.mse_loss(model(z).float(), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if losses is not None:
            losses.append(loss.item())

    return step


def clock():
    return time.perf_counter(), time.process_time()


def run_interleaved(state, images, labels, runtime, others: dict, n_steps: int) -> tuple[dict, dict]:
    """Run train_epoch for n_steps batches; after each of its steps run one step of every other mode.

    Returns ({mode: [(wall s, CPU s) per step]}, train_epoch's returned checkpoint)."""
    times = {"project": [], **{name: [] for name in others}}

    def lap(name, t0):
        sync(runtime.device)
        times[name].append(tuple(b - a for a, b in zip(t0, clock())))

    def hook(batches):
        for i, start in zip(range(n_steps), batches):
            sync(runtime.device)
            t0 = clock()
            yield start  # train_epoch does the project's step i here
            lap("project", t0)
            # every other round in reverse order: a step runs faster right after the fp32
            # reference (whose big allocations leave the heap grown), so no mode may always get that seat
            for name, step in list(others.items())[:: 1 if i % 2 == 0 else -1]:
                t0 = clock()
                step()
                lap(name, t0)

    if images.shape[0] < n_steps * state["recipe"]["batch_size"]:
        raise ValueError(f"{n_steps} steps of batch {state['recipe']['batch_size']} need more than {images.shape[0]} images")
    new_state = train.train_epoch(state, images, labels, runtime, progress=hook)
    return times, new_state


def paired_ratio(times, other: str, warmup: int) -> float:
    """Median over steps of (other's wall time / the project's step just before it)."""
    return statistics.median(o[0] / p[0] for o, p in zip(times[other][warmup:], times["project"][warmup:]))


def loss_check(args, images, labels, ds, runtime, seed: int, config_path: Path) -> dict:
    """Project step vs fp32 reference from the same weights and the same data order; compare losses."""
    recipe, _ = load_recipe(config_path, LOSS_CHECK["hidden"], LOSS_CHECK["batch"])
    state = train.init_checkpoint(recipe, "single_step", seed)
    x = data.to_float(images, runtime.device)
    order = torch.randperm(x.shape[0], generator=torch.Generator().set_state(state["generator"]))
    ref_losses = []
    ref = loader_step(ds, state, runtime, bf16=False, sampler=order.tolist(), losses=ref_losses)
    _, new_state = run_interleaved(state, x, labels.to(runtime.device), runtime, {"reference": ref}, args.loss_steps)
    tail = min(10, args.loss_steps)
    project = new_state["losses"][-tail:].mean().item()
    reference = statistics.fmean(ref_losses[-tail:])
    rel = abs(project - reference) / reference
    return {"hidden": recipe["hidden"], "batch": recipe["batch_size"], "steps": args.loss_steps, "project_loss": project,
            "reference_loss": reference, "rel_diff": rel, "comparable": rel <= LOSS_CHECK["tolerance"]}




# ------------------------------------------------------------------ the machine

# CPU flags that decide which kernels PyTorch's CPU backend (oneDNN) can use
RELEVANT_FLAGS = ("avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")
CPU_PATHS = {
    "AMX": "AMX (amx_bf16: bf16 matrix tiles, many times fp32's matrix throughput)",
    "AVX512-bf16": "AVX512-bf16 (avx512_bf16, no AMX: bf16 dot products about 2x fp32's)",
    "neither": "neither AMX nor AVX512-bf16 (no bf16 hardware: precision auto runs fp32 here, no autocast)",
}


def cpu_path(flags: set[str] | None = None) -> str:
    """The bf16 path this CPU offers: "AMX", "AVX512-bf16" or "neither"."""
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX512-bf16"
    return "neither"


def machine(runtime) -> dict:
    flags = cpu_flags()
    gpu = runtime.device.type == "cuda"
    return {"cpu": cpu_model(), "cpu_flags": [f for f in RELEVANT_FLAGS if f in flags], "cpu_path": cpu_path(flags),
            "gpu": torch.cuda.get_device_name(runtime.device) if gpu else None, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "usable_cpus": usable_cpus(), "runtime": runtime.describe()}


def print_machine(info: dict) -> None:
    print(f"cpu: {info['cpu']}; flags: {' '.join(info['cpu_flags']) or '(none of ' + ' '.join(RELEVANT_FLAGS) + ')'}")
    print(f"cpu bf16 path judged: {CPU_PATHS[info['cpu_path']]}")
    if info["gpu"]:
        print(f"gpu: {info['gpu']}")
    print(f"torch {info['torch']}, {info['threads']} threads on {info['usable_cpus']} usable CPUs; project runtime: {info['runtime']}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)


def timed(device, fn, *args, **kwargs):
    """(fn's result, (wall s, CPU s)), bracketed by synchronize on CUDA."""
    sync(device)
    t0 = clock()
    out = fn(*args, **kwargs)
    sync(device)
    return out, tuple(b - a for a, b in zip(t0, clock()))


# ------------------------------------------------------------------ train


def train_bars(info: dict, ratio_median: float, plain_median: float, lc: dict | None) -> tuple[list[dict], list[str]]:
    """The bars of issue 14 that apply to this machine, judged, and the ones that do not, named."""
    bars = [{"bar": "project >= plain bf16 + channels_last (median per-step time ratio plain/project >= 1)",
             "value": plain_median, "pass": plain_median >= 1.0}]
    skipped = []
    if info["cpu_path"] == "AMX" and not info["gpu"]:
        bars.append({"bar": "project/reference median per-step ratio >= 5 (AMX CPUs)", "value": ratio_median, "pass": ratio_median >= 5.0})
        ok = lc is not None and lc["rel_diff"] <= LOSS_CHECK["tolerance"]
        bars.append({"bar": f"loss after equal steps within {100 * LOSS_CHECK['tolerance']:.0f} % of the reference (AMX CPUs)",
                     "value": None if lc is None else lc["rel_diff"], "pass": ok})
    else:
        where = f"the GPU ({info['gpu']})" if info["gpu"] else f"this CPU ({info['cpu_path']})"
        skipped.append(f"project/reference >= 5 and the loss within {100 * LOSS_CHECK['tolerance']:.0f} %: "
                       f"set for AMX CPUs only, not judged on {where} (ratio and loss check printed for information)")
    return bars, skipped


def mode_descriptions(runtime, info: dict) -> dict:
    bf16_note = "" if info["gpu"] or info["cpu_path"] != "neither" else " (this CPU has no bf16 hardware: bf16 here is converted or emulated)"
    project = runtime.describe().split("), ", 1)[-1]
    why = ""
    if not info["gpu"]:
        why = " (precision auto: bf16 autocast on this CPU)" if runtime.bf16 else " (precision auto: no bf16 autocast on this CPU, so fp32)"
    return {"project": f"train_epoch, data in memory, {project}{why}",
            "reference": "course loop, DataLoader + ToTensor, fp32, default layout",
            "plain_bf16": f"course loop, DataLoader + ToTensor, bf16 autocast + channels_last{bf16_note}"}


def bench_train(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    runtime = resolve("auto", "auto")
    recipe, seed = load_recipe(Path(args.config), args.hidden, args.batch)
    n_steps = args.warmup + args.steps
    images, labels, ds = load_data(args, max(n_steps * args.batch, LOSS_CHECK["batch"] * args.loss_steps))
    info = machine(runtime)
    print_machine(info)
    described = mode_descriptions(runtime, info)
    print(f"setting: D={args.hidden}, batch {args.batch}, {args.warmup} burn-in + {args.steps} timed steps, "
          f"{'synthetic' if args.synthetic else 'MNIST'} data; modes as run:")
    for name, text in described.items():
        print(f"  {name:>10}: {text}")
    sys.stdout.flush()

    state = train.init_checkpoint(recipe, "single_step", seed)
    others = {"reference": loader_step(ds, state, runtime, bf16=False), "plain_bf16": loader_step(ds, state, runtime, bf16=True)}
    x = data.to_float(images, runtime.device)
    times, _ = run_interleaved(state, x, labels.to(runtime.device), runtime, others, n_steps)

    gflop_per_image = GFLOP_PER_IMAGE_D128 * (args.hidden / 128) ** 2
    results = {"machine": info["gpu"] or info["cpu"], **info, "avx512_bf16": "avx512_bf16" in info["cpu_flags"],
               "amx_bf16": "amx_bf16" in info["cpu_flags"], "modes_as_run": described,
               "hidden": args.hidden, "batch": args.batch, "steps": args.steps, "warmup": args.warmup,
               "synthetic": args.synthetic, "gflop_per_image": gflop_per_image, "modes": {}}
    print(f"FLOPs assumed: {gflop_per_image:.3g} GFLOP per image per training step (6.4 at D=128, x (D/128)^2)")
    for name, ts in times.items():
        wall, cpu = zip(*ts[args.warmup :])
        s = statistics.fmean(wall)
        m = {"ms_per_step": 1e3 * s, "images_per_s": args.batch / s, "gflop_per_s": args.batch * gflop_per_image / s,
             "ms_per_step_median": 1e3 * statistics.median(wall), "cpu_ms_per_step": 1e3 * statistics.fmean(cpu),
             "step_ms": [1e3 * t for t, _ in ts], "step_cpu_ms": [1e3 * c for _, c in ts]}
        results["modes"][name] = m
        print(f"{name:>10}: {m['ms_per_step']:9.1f} ms/step {m['images_per_s']:7.1f} images/s {m['gflop_per_s']:7.1f} GFLOP/s"
              f"  (median {m['ms_per_step_median']:.1f} ms; CPU time {m['cpu_ms_per_step']:.1f} ms/step)")
    modes = results["modes"]
    ratio = modes["reference"]["ms_per_step"] / modes["project"]["ms_per_step"]
    vs_plain = modes["plain_bf16"]["ms_per_step"] / modes["project"]["ms_per_step"]
    cpu_ratio = modes["reference"]["cpu_ms_per_step"] / modes["project"]["cpu_ms_per_step"]
    # the same ratios round by round (each round runs one step of every mode): robust to load;
    # the bars are judged on these paired per-step medians, which a burst of load from elsewhere cannot swing
    ratio_median = paired_ratio(times, "reference", args.warmup)
    plain_median = paired_ratio(times, "plain_bf16", args.warmup)
    results.update(ratio=ratio, ratio_step_median=ratio_median, ratio_cpu_time=cpu_ratio, ratio_vs_plain_bf16=vs_plain,
                   ratio_vs_plain_bf16_step_median=plain_median)
    print(f"ratio project/reference: {ratio:.2f}x throughput (median of per-step ratios {ratio_median:.2f}x, "
          f"by CPU time {cpu_ratio:.2f}x); project/plain_bf16: {vs_plain:.2f}x (per-step median {plain_median:.2f}x)")

    lc = None
    if args.loss_steps > 0:
        lc = loss_check(args, images, labels, ds, runtime, seed, Path(args.config))
        results["loss_check"] = lc
        print(f"loss check (D={lc['hidden']}, batch {lc['batch']}, {lc['steps']} steps, same weights and data order; "
              f"mean of last {min(10, lc['steps'])} steps): project {lc['project_loss']:.5f}, reference "
              f"{lc['reference_loss']:.5f}, relative difference {100 * lc['rel_diff']:.1f}%: "
              f"{'within' if lc['comparable'] else 'NOT within'} {100 * LOSS_CHECK['tolerance']:.0f}%")
    bars, skipped = train_bars(info, ratio_median, plain_median, lc)
    ok = all(b["pass"] for b in bars)
    results.update(bars=bars, bars_not_applied=skipped, bar="; ".join(b["bar"] for b in bars), bar_pass=ok)
    for b in bars:
        print(f"bar: {b['bar']}: {'PASS' if b['pass'] else 'FAIL'}")
    for text in skipped:
        print(f"bar not applied: {text}")
    print(f"verdict for {info['cpu_path'] if not info['gpu'] else 'GPU'} machine: {'PASS' if ok else 'FAIL'}")
    results["load_average"] = os.getloadavg()
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True)
    if args.json:
        write_json(args.json, results)
    return results


def write_json(path, results: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(results, indent=2) + "\n")


# ------------------------------------------------------------------ sampling

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


def forward_flop_per_image(model_cfg) -> float:
    """Forward FLOP of one image through a UNet of this config, counted by FlopCounterMode (batch 2, CPU)."""
    from torch.utils.flop_counter import FlopCounterMode

    from .unet import UNet

    model = UNet(model_cfg).eval()
    x, t, c = torch.zeros(2, 1, 28, 28), torch.zeros(2), torch.zeros(2, model_cfg.num_classes)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, None if model_cfg.conditioning == "none" else t, c if model_cfg.conditioning == "class" else None)
    return counter.get_total_flops() / 2


def train_flop_per_image(recipe: dict) -> float:
    """FLOP of one training step per image (forward and backward as autograd runs them), counted by
    FlopCounterMode on batch 2 on the CPU in fp32, through fundiff.train.training_loss."""
    from torch.utils.flop_counter import FlopCounterMode

    from .unet import UNet

    model = UNet(train.model_config(recipe))
    g = torch.Generator().manual_seed(0)
    x, labels = torch.rand(2, 1, 28, 28, generator=g), torch.arange(2)
    with FlopCounterMode(display=False) as counter:
        train.training_loss(model, x, labels, recipe, train.schedule_for(recipe), g).backward()
    return counter.get_total_flops() / 2


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
    from . import part_b

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


def start(args):
    """Threads, runtime, the config and the machine line every config-driven bench begins with."""
    import yaml

    if args.threads:
        torch.set_num_threads(args.threads)
    runtime = resolve_or_exit(args.device, args.precision)
    config = yaml.safe_load(Path(args.config).read_text())
    info = machine(runtime)
    print_machine(info)
    return runtime, config, info


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
    if args.json:
        write_json(args.json, results)
    return results


def resolve_or_exit(device: str, precision: str = "auto"):
    """resolve(), or a clear message and exit status 2 when --device cuda finds no GPU."""
    try:
        return resolve(device, precision)
    except DeviceError:
        print(f"python -m fundiff.bench: --device cuda, but PyTorch sees no CUDA GPU on this machine (torch {torch.__version__}, "
              "torch.cuda.is_available() is False). Run it on a GPU node, or pass --device cpu (for the recipe, with a small "
              "--scale such as 0.01: the full recipe takes hours on a CPU).", file=sys.stderr)
        raise SystemExit(2)


# ------------------------------------------------------------------ recipe

SAMPLE_FILE = re.compile(r"epoch_(\d+)/samples(?:_cfg([0-9.]+))?\.png$")


def sampling_jobs(config: dict, model: str) -> list[dict]:
    """The Part B sampling runs the config asks of a generative model, as the rules run them: one
    sample_checkpoint call per evaluation batch of every grid setting (recipes.sample_files:
    evaluation.num_samples each; the grid is their first part_b.num_samples), per sampling
    animation and per step count of the step comparison (class-conditioned models)."""
    pb, ev = config["part_b"], config.get("evaluation", {})
    steps = recipes.sampling_steps(config, model)
    settings = []
    for path in recipes.sample_files(config, model):
        epoch, gamma = SAMPLE_FILE.search(path).groups()
        settings.append((int(epoch), None if gamma is None else float(gamma)))
    n = pb["num_samples"]
    jobs = []
    jobs.append({"job": "gif", "epoch": recipes.model_settings(config, model)["epochs"], "guidance": recipes.model_settings(config, model).get("guidance"),
                 "samples": n, "steps": steps, "record": pb.get("gif_frames", 0)})
    if model.endswith("/class_cond"):
        gamma = recipes.model_settings(config, model)["guidance"]
        jobs += [{"job": "step_comparison", "epoch": recipes.model_settings(config, model)["epochs"], "guidance": gamma, "samples": pb.get("step_comparison_samples") or n, "steps": k}
                 for k in pb["step_comparison"]]
    if ev:
        total, batch = ev["num_samples"], ev["batch_size"]
        for e, g in settings:
            for start in range(0, total, batch):
                jobs.append({"job": "eval", "epoch": e, "guidance": g, "samples": min(batch, total - start), "steps": steps})
    return jobs


def limited(limit_of, device, record: list):
    """A progress hook that lets limit_of(len(iterable)) iterations run and appends to `record`
    {"done": iterations run, "total": len(iterable), "stop": the range's end (train_epoch: the
    epoch's images), "wall_s", "cpu_s": time of those iterations}, synchronised on CUDA."""

    def hook(iterable):
        total = len(iterable)
        sync(device)
        t0 = clock()
        done = 0
        for _, item in zip(range(limit_of(total)), iterable):
            yield item
            done += 1
        sync(device)
        wall, cpu = (b - a for a, b in zip(t0, clock()))
        record.append({"done": done, "total": total, "stop": getattr(iterable, "stop", None), "wall_s": wall, "cpu_s": cpu})

    return hook


def fraction(scale: float):
    return lambda total: max(1, math.ceil(scale * total))


def load_train_split(config: dict, args, device) -> tuple[torch.Tensor, torch.Tensor, str]:
    root = Path(args.data_root or config["data"]["root"])
    limit = config["data"].get("train_limit")
    if not args.synthetic and (root / "MNIST" / "raw").exists():
        images, labels = data.load_split(root, "train", limit=limit)
        what = f"MNIST train split from {root} ({images.shape[0]} images)"
    else:
        n = min(limit or data.NUM_TRAIN, data.NUM_TRAIN)
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g)
        labels = torch.randint(0, 10, (n,), generator=g)
        why = "--synthetic" if args.synthetic else f"no MNIST under {root}"
        what = f"synthetic uint8 images ({n}, {why}; the timing does not depend on pixel values)"
    return data.to_float(images, device), labels.to(device), what


def fresh_compile_cache(n_models: int) -> None:
    """With train.COMPILE, an empty compile cache with room for n_models UNets at two batch shapes
    each: past dynamo's recompile limit (8) a model would silently run eager."""
    if train.COMPILE:
        import torch._dynamo

        torch._dynamo.reset()
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 4 * n_models)


def time_training(model: str, config: dict, images, labels, runtime, scale: float) -> tuple[dict, dict]:
    """Every epoch of `model` through train.train_epoch, each running ceil(scale x its steps);
    returns (figures, the final state)."""
    r = make_recipe(config, model)
    state = train.init_checkpoint(r, model, config["seed"])
    fresh_compile_cache(1)
    # burn-in, not timed: one step from a copy (first-call costs: allocator, kernel set-up)
    train.train_epoch(copy.deepcopy(state), images, labels, runtime, progress=limited(lambda _: 1, runtime.device, []))
    epochs = []
    for _ in range(r["epochs"]):
        record = []
        state, (wall, _) = timed(runtime.device, train.train_epoch, state, images, labels, runtime, progress=limited(fraction(scale), runtime.device, record))
        rec = record[0]
        epoch_images = rec["stop"] if rec["stop"] is not None else rec["total"] * r["batch_size"]
        run_images = min(rec["done"] * r["batch_size"], epoch_images)
        overhead = max(0.0, wall - rec["wall_s"])  # model build, optimizer state, permutation, losses and weights to the CPU
        epochs.append({"steps": rec["total"], "steps_run": rec["done"], "images": epoch_images, "images_run": run_images,
                       "steps_s": rec["wall_s"], "steps_cpu_s": rec["cpu_s"], "overhead_s": overhead,
                       "estimate_s": rec["wall_s"] * epoch_images / run_images + overhead})
    flop = train_flop_per_image(r)
    seconds = sum(e["estimate_s"] for e in epochs)
    n_img = sum(e["images"] for e in epochs)
    return {"hidden": r["hidden"], "batch_size": r["batch_size"], "epochs": r["epochs"], "steps_per_epoch": epochs[0]["steps"],
            "steps_run_per_epoch": epochs[0]["steps_run"], "images": n_img, "seconds": seconds, "images_per_s": n_img / seconds,
            "gflop_per_image": flop / 1e9, "tflop_per_s": flop * n_img / seconds / 1e12,
            "measured_s": sum(e["steps_s"] + e["overhead_s"] for e in epochs), "per_epoch": epochs}, state


def train_concurrently(models: list[str], config: dict, images, labels, runtime, scale: float) -> tuple[dict, dict]:
    """Every epoch of every model in `models`, their training steps interleaved round robin (one
    step of each in turn), each model on its own CUDA stream, so that the GPU runs the small
    UNets' kernels side by side; on a CPU the same order runs one step at a time. Each model's own
    steps happen in the same order as in time_training, so its results are the same.
    Returns (figures, {model: its final state})."""
    cuda = runtime.device.type == "cuda"
    jobs = {}
    for m in models:
        r = make_recipe(config, m)
        jobs[m] = {"recipe": r, "state": train.init_checkpoint(r, m, config["seed"]),
                   "stream": torch.cuda.Stream(runtime.device) if cuda else None, "run": None, "steps": 0, "total": 0}

    def on(job):
        return torch.cuda.stream(job["stream"]) if cuda else contextlib.nullcontext()

    def capped(batches):
        return itertools.islice(batches, max(1, math.ceil(scale * len(batches))))

    fresh_compile_cache(len(models))
    for m, job in jobs.items():  # burn-in, not timed: one step of each model from a copy
        with on(job):
            train.train_epoch(copy.deepcopy(job["state"]), images, labels, runtime, progress=lambda b: itertools.islice(b, 1))
    sync(runtime.device)
    t0 = clock()
    active = list(models)
    while active:
        for m in list(active):
            job = jobs[m]
            with on(job):
                if job["run"] is None:
                    job["run"] = train.EpochRun(job["state"], images, labels, runtime, progress=capped)
                    job["total"] += job["run"].num_steps
                if job["run"].step():
                    job["steps"] += 1
                    continue
                job["state"], job["run"] = job["run"].finish(), None
                if job["state"]["epoch"] == job["recipe"]["epochs"]:
                    active.remove(m)
    sync(runtime.device)
    wall, cpu = (b - a for a, b in zip(t0, clock()))
    steps, total = sum(j["steps"] for j in jobs.values()), sum(j["total"] for j in jobs.values())
    images_done = sum(j["total"] * j["recipe"]["batch_size"] for j in jobs.values())  # of the full recipe (last batches rounded up)
    flop = sum(train_flop_per_image(j["recipe"]) * j["total"] * j["recipe"]["batch_size"] for j in jobs.values())
    seconds = wall * total / steps  # per-epoch fixed costs scaled up with the steps: an upper estimate when scale < 1
    return {"models": list(models), "streams": len(models) if cuda else 0, "steps_run": steps, "steps": total,
            "measured_s": wall, "measured_cpu_s": cpu, "seconds": seconds, "images_per_s": images_done / seconds,
            "tflop_per_s": flop / seconds / 1e12}, {m: j["state"] for m, j in jobs.items()}


def time_sampling(model: str, config: dict, state: dict, runtime, scale: float) -> dict:
    """Every sampling run of `model` (sampling_jobs), each running ceil(scale x its steps), through
    part_b.sample_checkpoint as the rules call it (state: the trained model's final checkpoint)."""
    from . import part_b

    jobs = sampling_jobs(config, model)
    fwd = forward_flop_per_image(train.model_config(state["recipe"]))
    # burn-in, not timed: one step of the first run's shape
    j = jobs[0]
    part_b.sample_checkpoint(state, runtime, j["samples"], 0, guidance=j["guidance"], num_steps=j["steps"], progress=limited(lambda _: 1, runtime.device, []))
    seconds = flop = 0.0
    images = 0
    by_job = {}
    for i, j in enumerate(jobs):
        record = []
        _, (wall, _) = timed(runtime.device, part_b.sample_checkpoint, state, runtime, j["samples"], i, guidance=j["guidance"],
                             record=j.get("record", 0), num_steps=j["steps"], progress=limited(fraction(scale), runtime.device, record))
        rec = record[0]
        total = rec["total"]
        estimate = rec["wall_s"] * total / rec["done"] + max(0.0, wall - rec["wall_s"])  # + model build, generator, transfers
        passes = 2 if j["guidance"] is not None else 1  # CFG: one batched call over [x; x]
        seconds += estimate
        images += j["samples"]
        flop += fwd * passes * j["samples"] * total
        k = by_job.setdefault(j["job"], {"runs": 0, "images": 0, "seconds": 0.0})
        k["runs"] += 1
        k["images"] += j["samples"]
        k["seconds"] += estimate
    return {"runs": len(jobs), "images": images, "seconds": seconds, "images_per_s": images / seconds,
            "forward_gflop_per_image": fwd / 1e9, "tflop_per_s": flop / seconds / 1e12, "by_job": by_job}


def bench_recipe(args) -> dict:
    if not 0 < args.scale <= 1:
        raise SystemExit("python -m fundiff.bench recipe: --scale must be in (0, 1]")
    runtime, config, info = start(args)
    train.CUDA_GRAPHS = not args.no_cuda_graphs
    train.COMPILE = args.compile
    images, labels, what = load_train_split(config, args, runtime.device)
    extrapolated = args.scale < 1
    print(f"recipe of {args.config}: Part B training (every model, every epoch) and sampling jobs; data: {what}, in memory on {runtime.device.type}")
    if extrapolated:
        print(f"scale {args.scale:g}: every epoch runs ceil({args.scale:g} x its steps) and every sampling run ceil({args.scale:g} x its steps); "
              "ALL FIGURES BELOW ARE EXTRAPOLATED to the full recipe (per-epoch and per-run fixed costs measured and added once each)")
    print("FLOP per image: measured with FlopCounterMode (convolutions and matmuls): training forward + backward as run (not 3x forward); "
          "sampling one forward per image and step, twice with CFG. Not timed: per-job process start, data loading, checkpoint I/O, "
          "the classifier, test-set metrics, figures, Part A.", flush=True)
    if runtime.device.type == "cuda":
        print(f"training steps: {'replayed as one captured CUDA graph per model and epoch' if train.CUDA_GRAPHS else 'launched kernel by kernel (--no-cuda-graphs)'}")
    if train.COMPILE:
        print("UNet compiled with torch.compile (inductor), once per model and batch shape; the compilation runs in the untimed burn-in step")
    results = {**info, "cuda_graphs": runtime.device.type == "cuda" and train.CUDA_GRAPHS, "compile": train.COMPILE, "config": str(args.config), "scale": args.scale, "extrapolated": extrapolated, "data": what, "models": {}}
    header = f"{'model':<28} {'epochs x steps':>15} {'train s':>10} {'img/s':>8} {'TFLOP/s':>8} | {'runs':>5} {'images':>7} {'sample s':>9} {'img/s':>8} {'TFLOP/s':>8}"
    rows = []
    chosen = recipes.models(config)
    if args.models:
        wanted = args.models.split(",")
        unknown = [m for m in wanted if m not in chosen]
        if unknown:
            raise SystemExit(f"python -m fundiff.bench recipe: --models {unknown} not among the config's models {chosen}")
        chosen = [m for m in chosen if m in wanted]
        print(f"only the models {chosen} (--models): the totals below cover these, not the whole recipe")
    results["models_timed"] = chosen
    together, final = None, {}
    if args.concurrent:
        print(f"training: {len(chosen)} model{'s' if len(chosen) != 1 else ''}, their steps interleaved round robin"
              + (f", each model on its own CUDA stream" if runtime.device.type == "cuda" else " (on a CPU: one step at a time, the same work in another order)"), flush=True)
        together, final = train_concurrently(chosen, config, images, labels, runtime, args.scale)
        results["concurrent"] = together
        print(f"  all models' training together: {together['measured_s']:.1f} s for {together['steps_run']} of {together['steps']} steps"
              + (f", {together['seconds']:.1f} s extrapolated to all of them" if extrapolated else ""), flush=True)
    for model in chosen:
        if together:
            t, state = None, final[model]
        else:
            t, state = time_training(model, config, images, labels, runtime, args.scale)
        s = time_sampling(model, config, state, runtime, args.scale) if "/" in model else None
        results["models"][model] = {"train": t, "sampling": s}
        if t is None:
            row = f"{model:<28} {'(together)':>15} {'-':>10} {'-':>8} {'-':>8} | "
        else:
            row = f"{model:<28} {t['epochs']:>6} x {t['steps_per_epoch']:<6} {t['seconds']:>10.1f} {t['images_per_s']:>8.1f} {t['tflop_per_s']:>8.3f} | "
        row += f"{s['runs']:>5} {s['images']:>7} {s['seconds']:>9.1f} {s['images_per_s']:>8.2f} {s['tflop_per_s']:>8.3f}" if s else f"{'-':>5} {'-':>7} {'-':>9} {'-':>8} {'-':>8}"
        rows.append(row)
        print(f"  {model}: " + (f"training {t['seconds']:.1f} s{' (extrapolated)' if extrapolated else ''}" if t else "trained together")
              + (f", sampling {s['seconds']:.1f} s" if s else ""), flush=True)
    if together:
        train_s, measured = together["seconds"], together["measured_s"]
        rows.append(f"{'all models together':<28} {'':>15} {train_s:>10.1f} {together['images_per_s']:>8.1f} {together['tflop_per_s']:>8.3f} |")
    else:
        train_s = sum(m["train"]["seconds"] for m in results["models"].values())
        measured = sum(m["train"]["measured_s"] for m in results["models"].values())
    sample_s = sum(m["sampling"]["seconds"] for m in results["models"].values() if m["sampling"])
    results.update(train_s=train_s, sampling_s=sample_s, total_s=train_s + sample_s)
    tag = "EXTRAPOLATED " if extrapolated else ""
    print(f"\n{tag}seconds per model ({runtime.describe()}):")
    print(header)
    for row in rows:
        print(row)
    print(f"{tag}total: training {train_s:.1f} s + sampling {sample_s:.1f} s = {train_s + sample_s:.1f} s "
          f"({(train_s + sample_s) / 3600:.2f} h){f'; measured training time of this run {measured:.1f} s' if extrapolated else ''}", flush=True)
    if args.json:
        write_json(args.json, results)
    return results


# ------------------------------------------------------------------ threads


def bench_threads(args) -> dict:
    """Training steps of one recipe's UNet at each thread count in turn, same process, interleaved."""
    import yaml

    counts = [int(n) for n in args.threads.split(",")]
    runtime = resolve("cpu", "auto")
    config = yaml.safe_load(Path(args.config).read_text())
    r = {**make_recipe(config, args.model), "hidden": args.hidden, "batch_size": args.batch}
    state = train.init_checkpoint(r, args.model, config["seed"])
    model = train.build_model(state, runtime).train()
    opt = torch.optim.Adam(model.parameters(), lr=r["lr"])
    schedule = train.schedule_for(r)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1, 28, 28, generator=g)
    x = x.contiguous(memory_format=torch.channels_last) if runtime.channels_last else x
    labels = torch.randint(0, 10, (args.batch,), generator=g)

    def step():
        with runtime.autocast():
            loss = train.training_loss(model, x, labels, r, schedule, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    info = machine(runtime)
    print_machine(info)
    print(f"setting: {args.model} UNet D={args.hidden}, batch {args.batch}, {runtime.describe().split('), ', 1)[-1]}; "
          f"torch threads {counts}, {args.warmup} burn-in + {args.steps} timed steps each, interleaved round by round", flush=True)
    times = {n: [] for n in counts}
    for i in range(args.warmup + args.steps):
        for n in counts[:: 1 if i % 2 == 0 else -1]:
            torch.set_num_threads(n)
            _, t = timed(runtime.device, step)
            if i >= args.warmup:
                times[n].append(t)
    results = {**info, "model": args.model, "hidden": args.hidden, "batch": args.batch, "steps": args.steps, "threads": {}}
    base = counts[-1]
    for n in counts:
        wall, cpu = zip(*times[n])
        results["threads"][n] = {"ms_per_step_median": 1e3 * statistics.median(wall), "ms_per_step": 1e3 * statistics.fmean(wall),
                                 "cpu_ms_per_step": 1e3 * statistics.fmean(cpu), "images_per_s": args.batch / statistics.median(wall)}
    for n in counts:
        m = results["threads"][n]
        rel = m["ms_per_step_median"] / results["threads"][base]["ms_per_step_median"]
        m["time_vs_last"] = rel
        print(f"{n:>3} threads: median {m['ms_per_step_median']:8.1f} ms/step (mean {m['ms_per_step']:.1f}, CPU time {m['cpu_ms_per_step']:.1f}), "
              f"{m['images_per_s']:.1f} images/s; {rel:.2f}x the time of {base} threads")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    if args.json:
        write_json(args.json, results)
    return results


# ------------------------------------------------------------------ the whole DAG


REPO_ROOT = Path(__file__).resolve().parents[2]  # src/fundiff/bench.py -> the checkout with the Snakefile


def read_benchmarks(directory: str | Path) -> list[dict]:
    """Every Snakemake benchmark file under DIR/benchmarks: its path (the job), wall and CPU seconds."""
    rows = []
    for path in sorted(Path(directory, "benchmarks").rglob("*.tsv")):
        lines = path.read_text().splitlines()
        if len(lines) < 2:
            continue
        record = dict(zip(lines[0].split("\t"), lines[1].split("\t")))
        rows.append({"job": str(path.relative_to(Path(directory, "benchmarks")).with_suffix("")), "wall_s": float(record["s"]),
                     "cpu_s": float(record["cpu_time"]) if record.get("cpu_time", "NA") not in ("NA", "") else None})
    return rows


def job_kind(job: str) -> str:
    """A benchmark path with its wildcard values blanked: train_epoch_001 and _002 of every model
    count as one kind, as do every model's sample{cfg} and every Part A image."""
    kind = re.sub(r"^part_b/(ddpm|flow)/[a-z_]+/", "part_b/<model>/", job)
    kind = re.sub(r"^part_b/(single_step|pure_noise)/", "part_b/<model>/", kind)
    kind = re.sub(r"epoch_\d+/", "", kind)
    kind = re.sub(r"_\d{3}$", "", kind)
    kind = re.sub(r"_cfg[\d.]+$", "", kind)
    kind = re.sub(r"/(anagram|hybrid)/\d+$", "/illusion", kind)
    kind = re.sub(r"/\d+$", "", kind)
    kind = re.sub(r"^part_a/sdedit/.*$", "part_a/sdedit", kind)
    kind = re.sub(r"^part_a/(samples)(_cfg[\d.]+)?$", r"part_a/\1", kind)
    return kind


def summarize_dag(rows: list[dict], span_s: float | None, cores: int) -> dict:
    total = sum(r["wall_s"] for r in rows)
    kinds: dict[str, dict] = {}
    for r in rows:
        k = kinds.setdefault(job_kind(r["job"]), {"jobs": 0, "wall_s": 0.0})
        k["jobs"] += 1
        k["wall_s"] += r["wall_s"]
    return {"jobs": len(rows), "span_s": span_s, "cores": cores, "sum_wall_s": total,
            "busy": None if not span_s else total / (span_s * cores),
            "slowest": sorted(rows, key=lambda r: -r["wall_s"])[:10],
            "per_kind": dict(sorted(kinds.items(), key=lambda kv: -kv[1]["wall_s"]))}


def bench_dag(args) -> dict:
    info = {"cpu": cpu_model(), "cpu_flags": [f for f in RELEVANT_FLAGS if f in cpu_flags()], "cpu_path": cpu_path(), "torch": torch.__version__, "usable_cpus": usable_cpus()}
    print(f"cpu: {info['cpu']}; flags: {' '.join(info['cpu_flags']) or '(none of ' + ' '.join(RELEVANT_FLAGS) + ')'}; {info['usable_cpus']} usable CPUs; "
          f"torch {info['torch']}; load average {os.getloadavg()[0]:.1f}", flush=True)
    import shutil
    import subprocess
    import tempfile

    span = cleanup = None
    if args.summarize:
        directory = Path(args.summarize)
        if not (directory / "benchmarks").is_dir():
            sys.exit(f"bench dag: no benchmarks/ folder under {directory}: point --summarize at a finished run's working directory")
    else:
        snakefile = Path(args.snakefile) if args.snakefile else REPO_ROOT / "Snakefile"
        if not snakefile.is_file():
            sys.exit(f"bench dag: no Snakefile at {snakefile}: run from a checkout of the project or pass --snakefile")
        config = Path(args.config).resolve()
        if args.directory:
            directory = Path(args.directory)
            if directory.exists() and any(directory.iterdir()):
                sys.exit(f"bench dag: {directory} is not empty; the DAG is timed from nothing (give a new folder)")
        else:
            cleanup = directory = Path(tempfile.mkdtemp(prefix="fundiff-dag-"))
        exe = Path(sys.executable).with_name("snakemake")
        cmd = [str(exe) if exe.exists() else "snakemake", "-s", str(snakefile), "--directory", str(directory), "--configfile", str(config), "--cores", str(args.cores), "-q"]
        print("running:", " ".join(cmd), flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        span = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-5000:], sep="\n", file=sys.stderr)
            sys.exit(f"bench dag: snakemake failed (exit {proc.returncode}) after {span:.0f} s; the run is kept in {directory}")
    summary = summarize_dag(read_benchmarks(directory), span, args.cores)
    summary.update(machine=info, directory=str(directory), config=args.config)
    if summary["jobs"] == 0:
        sys.exit(f"bench dag: no benchmark files under {directory}/benchmarks")
    span_text = f"span {span:.1f} s on {args.cores} cores, " if span else ""
    busy = f", cores busy {100 * summary['busy']:.0f} % of the span" if summary["busy"] else ""
    print(f"{summary['jobs']} jobs with benchmarks: {span_text}jobs' wall times add up to {summary['sum_wall_s']:.1f} s{busy}")
    print("slowest jobs:")
    for r in summary["slowest"]:
        print(f"  {r['wall_s']:7.2f} s  {r['job']}")
    print("per kind of job (jobs, seconds):")
    for kind, k in summary["per_kind"].items():
        print(f"  {k['wall_s']:7.1f} s  {k['jobs']:3d}  {kind}")
    summary["bar_s"] = args.bar
    summary["bar_pass"] = None
    if args.bar is not None and span is not None:
        summary["bar_pass"] = span <= args.bar
        print(f"bar: span <= {args.bar:g} s: {'PASS' if summary['bar_pass'] else 'FAIL'} ({span:.1f} s)")
    if args.json:
        write_json(args.json, summary)
    if cleanup is not None and not args.keep:
        shutil.rmtree(cleanup, ignore_errors=True)
    return summary


# ------------------------------------------------------------------ command line


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m fundiff.bench", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("train", help="time training steps: project vs course reference vs plain bf16")
    t.add_argument("--hidden", type=int, default=128, help="UNet width D (course: 128)")
    t.add_argument("--batch", type=int, default=256, help="batch size (course: 256)")
    t.add_argument("--steps", type=int, default=10, help="timed steps per mode")
    t.add_argument("--warmup", type=int, default=2, help="burn-in steps per mode, not timed")
    t.add_argument("--data-root", default="data/mnist", help="torchvision raw layout under <root>/MNIST/raw")
    t.add_argument("--synthetic", action="store_true", help="random uint8 images instead of MNIST")
    t.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    t.add_argument("--config", default="config/config.yaml", help="the single_step recipe comes from here")
    t.add_argument("--loss-steps", type=int, default=60, help="steps of the loss comparability check (0: skip)")
    t.add_argument("--json", help="also write the results here")
    t.add_argument("--strict", action="store_true", help="exit 1 if a bar that applies to this machine fails")

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

    r = sub.add_parser("recipe", help="time the whole Part B recipe of a config: training and sampling jobs")
    r.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    r.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    r.add_argument("--scale", type=float, default=1.0, help="fraction of every epoch's and sampling run's steps to run, then extrapolate")
    r.add_argument("--config", default="config/config.yaml")
    r.add_argument("--data-root", default=None, help="default: the config's data.root")
    r.add_argument("--synthetic", action="store_true", help="random images even where MNIST is present")
    r.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    r.add_argument("--models", help="comma-separated subset of the config's models (default: all)")
    r.add_argument("--no-cuda-graphs", action="store_true", help="on CUDA, launch every training step's kernels one by one instead of replaying a captured graph")
    r.add_argument("--concurrent", action="store_true", help="train all models at once, their steps interleaved, each on its own CUDA stream; one training time for all")
    r.add_argument("--compile", action="store_true", help="torch.compile the UNet (inductor: BatchNorm, GELU and casts fused) for its training steps")
    r.add_argument("--json", help="also write the results here")

    th = sub.add_parser("threads", help="training steps at several torch thread counts, interleaved")
    th.add_argument("--threads", default="8,2", help="comma-separated thread counts")
    th.add_argument("--model", default="ddpm/class_cond")
    th.add_argument("--hidden", type=int, default=64)
    th.add_argument("--batch", type=int, default=128)
    th.add_argument("--steps", type=int, default=6, help="timed steps per thread count")
    th.add_argument("--warmup", type=int, default=1)
    th.add_argument("--config", default="config/config.yaml")
    th.add_argument("--json")

    d = sub.add_parser("dag", help="run the workflow from nothing and sum up its jobs' benchmark files")
    d.add_argument("--config", default="config/smoke.yaml")
    d.add_argument("--cores", type=int, default=2)
    d.add_argument("--directory", help="run here (a new or empty folder) instead of a temporary one, and keep it")
    d.add_argument("--snakefile", help="default: the Snakefile of this checkout")
    d.add_argument("--summarize", metavar="DIR", help="only sum up the benchmark files of a finished run in DIR")
    d.add_argument("--keep", action="store_true", help="keep the temporary run folder")
    d.add_argument("--bar", type=float, default=180.0, help="span bar in seconds (issue 14: the smoke DAG on 2 cores)")
    d.add_argument("--json")
    d.add_argument("--strict", action="store_true", help="exit 1 when the span exceeds --bar")

    args = p.parse_args(argv)
    if args.what == "train":
        if args.steps < 1 or args.warmup < 0:
            p.error("--steps must be at least 1 and --warmup at least 0")
        results = bench_train(args)
        if args.strict and not results["bar_pass"]:
            sys.exit(1)
        return results
    if args.what == "sampling":
        if args.steps <= args.warmup or args.warmup < 0 or args.samples < 1:
            p.error("--steps must exceed --warmup (>= 0) and --samples must be at least 1")
        results = bench_sampling(args)
        if args.strict and not results["all_agree"]:
            sys.exit(1)
        return results
    if args.what == "recipe":
        return bench_recipe(args)
    if args.what == "dag":
        if args.cores < 1:
            p.error("--cores must be at least 1")
        results = bench_dag(args)
        if args.strict and results["bar_pass"] is False:
            sys.exit(1)
        return results
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be at least 1 and --warmup at least 0")
    return bench_threads(args)


if __name__ == "__main__":
    main()
