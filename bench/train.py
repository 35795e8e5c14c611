"""python -m bench train: the training step, modes all on the same machine, from the same initial
weights (single-step denoiser recipe):
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
Bars, judged on the median of per-step ratios: on every machine, the project's step at least as
fast as plain bf16 + channels_last; on AMX CPUs also project/reference >= 5 with the loss after
equal steps within 2 % of the reference's. --strict exits 1 when a bar that applies to this
machine fails; without it the verdicts are printed and the exit status is 0.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from fundiff import data, train
from fundiff.device import resolve
from fundiff.machine import GFLOP_TRAIN_IMAGE_D128 as GFLOP_PER_IMAGE_D128
from fundiff.recipes import recipe as make_recipe

from .common import clock, machine, print_machine, sync

LOSS_CHECK = {"hidden": 16, "batch": 64, "tolerance": 0.02}  # the AMX bar: within 2 %
COURSE_SINGLE_STEP = {"hidden": 128, "sigma": 0.5, "batch_size": 256, "lr": 1e-4, "epochs": 5, "lr_decay": None}


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


def train_bars(info: dict, ratio_median: float, plain_median: float, lc: dict | None) -> tuple[list[dict], list[str]]:
    """The bars (see the module's docstring) that apply to this machine, judged, and the ones that do not, named."""
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
    return results


def add_parser(sub) -> None:
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
