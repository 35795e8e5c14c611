"""python -m bench threads: training steps of the D=64 class-conditioned DDPM UNet at several
torch thread counts in one process, interleaved, to show what asking for more threads than cores
costs.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import torch

from fundiff import train
from fundiff.device import resolve
from fundiff.recipes import recipe as make_recipe

from .common import machine, print_machine, timed


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
    return results


def add_parser(sub) -> None:
    th = sub.add_parser("threads", help="training steps at several torch thread counts, interleaved")
    th.add_argument("--threads", default="8,2", help="comma-separated thread counts")
    th.add_argument("--model", default="ddpm/class_cond")
    th.add_argument("--hidden", type=int, default=64)
    th.add_argument("--batch", type=int, default=128)
    th.add_argument("--steps", type=int, default=6, help="timed steps per thread count")
    th.add_argument("--warmup", type=int, default=1)
    th.add_argument("--config", default="config/config.yaml")
    th.add_argument("--json")
