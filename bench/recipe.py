"""python -m bench recipe: every model and every epoch of the config's Part B training recipe
(fundiff.recipes.models / recipe, fundiff.train.init_checkpoint / train_epoch, the training split
in memory on the device), then the Part B sampling jobs the config asks for (the evaluation
samples of every grid setting of paths.sample_settings, evaluation.num_samples per setting in
batches of evaluation.batch_size, the grid being their first part_b.num_samples; the sampling
animations; the step comparison), through the project's own functions. --scale F runs
ceil(F x steps) of each epoch's steps and of each sampling run's steps, and extrapolates to the
full recipe (per-epoch and per-run fixed costs are measured and added once each). FLOP per image
are measured with torch.utils.flop_counter.FlopCounterMode on one training step (forward and
backward counted as run, not 3x a forward) and one forward pass (sampling); it counts
convolutions and matrix products only. --compile runs the UNet through torch.compile (inductor)
in every training step and --no-cuda-graphs launches a CUDA step's kernels one by one instead of
replaying a captured graph (train_epoch's compile_unet and cuda_graphs arguments); --concurrent
trains all the models at once, one step of each in turn, each on its own CUDA stream
(train_concurrently), and times them together: one figure for all of Part B training instead of
one per model.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
from pathlib import Path

import torch

from fundiff import data, paths, recipes, train
from fundiff.recipes import recipe as make_recipe

from .common import clock, forward_flop_per_image, start, sync, timed, train_flop_per_image

def sampling_jobs(config: dict, model: str) -> list[dict]:
    """The Part B sampling runs the config asks of a generative model, as the rules run them: one
    sample_checkpoint call per evaluation batch of every grid setting (paths.sample_settings:
    evaluation.num_samples each; the grid is their first part_b.num_samples), per sampling
    animation and per step count of the step comparison (class-conditioned models)."""
    pb, ev = config["part_b"], config.get("evaluation", {})
    steps = recipes.sampling_steps(config, model)
    settings = [(epoch, None if gamma is None else float(gamma)) for epoch, gamma in paths.sample_settings(config, model)]
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
    """For compiled training (--compile), an empty compile cache with room for n_models UNets at
    two batch shapes each: past dynamo's recompile limit (8) a model would silently run eager."""
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 4 * n_models)

def time_training(model: str, config: dict, images, labels, runtime, scale: float, *,
                  cuda_graphs: bool = True, compile_unet: bool = False) -> tuple[dict, dict]:
    """Every epoch of `model` through train.train_epoch, each running ceil(scale x its steps), with
    train_epoch's cuda_graphs and compile_unet; returns (figures, the final state)."""
    options = {"cuda_graphs": cuda_graphs, "compile_unet": compile_unet}
    r = make_recipe(config, model)
    state = train.init_checkpoint(r, model, config["seed"])
    if compile_unet:
        fresh_compile_cache(1)
    # burn-in, not timed: one step from a copy (first-call costs: allocator, kernel set-up)
    train.train_epoch(copy.deepcopy(state), images, labels, runtime, progress=limited(lambda _: 1, runtime.device, []), **options)
    epochs = []
    for _ in range(r["epochs"]):
        record = []
        state, (wall, _) = timed(runtime.device, train.train_epoch, state, images, labels, runtime,
                                 progress=limited(fraction(scale), runtime.device, record), **options)
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

def train_concurrently(models: list[str], config: dict, images, labels, runtime, scale: float, *,
                       cuda_graphs: bool = True, compile_unet: bool = False) -> tuple[dict, dict]:
    """Every epoch of every model in `models`, their training steps interleaved round robin (one
    step of each in turn), each model on its own CUDA stream, so that the GPU runs the small
    UNets' kernels side by side; on a CPU the same order runs one step at a time. Each model's own
    steps happen in the same order as in time_training, so its results are the same. cuda_graphs
    and compile_unet as in train.train_epoch. Returns (figures, {model: its final state})."""
    options = {"cuda_graphs": cuda_graphs, "compile_unet": compile_unet}
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

    if compile_unet:
        fresh_compile_cache(len(models))
    for m, job in jobs.items():  # burn-in, not timed: one step of each model from a copy
        with on(job):
            train.train_epoch(copy.deepcopy(job["state"]), images, labels, runtime, progress=lambda b: itertools.islice(b, 1), **options)
    sync(runtime.device)
    t0 = clock()
    active = list(models)
    while active:
        for m in list(active):
            job = jobs[m]
            with on(job):
                if job["run"] is None:
                    job["run"] = train.EpochRun(job["state"], images, labels, runtime, progress=capped, **options)
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
    from fundiff import part_b

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
        raise SystemExit("python -m bench recipe: --scale must be in (0, 1]")
    runtime, config, info = start(args)
    # the training choices, passed to every train_epoch / EpochRun call below
    options = {"cuda_graphs": not args.no_cuda_graphs, "compile_unet": args.compile}
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
        print(f"training steps: {'replayed as one captured CUDA graph per model and epoch' if options['cuda_graphs'] else 'launched kernel by kernel (--no-cuda-graphs)'}")
    if options["compile_unet"]:
        print("UNet compiled with torch.compile (inductor), once per model and batch shape; the compilation runs in the untimed burn-in step")
    results = {**info, "cuda_graphs": runtime.device.type == "cuda" and options["cuda_graphs"], "compile": options["compile_unet"], "config": str(args.config), "scale": args.scale, "extrapolated": extrapolated, "data": what, "models": {}}
    header = f"{'model':<28} {'epochs x steps':>15} {'train s':>10} {'img/s':>8} {'TFLOP/s':>8} | {'runs':>5} {'images':>7} {'sample s':>9} {'img/s':>8} {'TFLOP/s':>8}"
    rows = []
    chosen = recipes.models(config)
    if args.models:
        wanted = args.models.split(",")
        unknown = [m for m in wanted if m not in chosen]
        if unknown:
            raise SystemExit(f"python -m bench recipe: --models {unknown} not among the config's models {chosen}")
        chosen = [m for m in chosen if m in wanted]
        print(f"only the models {chosen} (--models): the totals below cover these, not the whole recipe")
    results["models_timed"] = chosen
    together, final = None, {}
    if args.concurrent:
        print(f"training: {len(chosen)} model{'s' if len(chosen) != 1 else ''}, their steps interleaved round robin"
              + (f", each model on its own CUDA stream" if runtime.device.type == "cuda" else " (on a CPU: one step at a time, the same work in another order)"), flush=True)
        together, final = train_concurrently(chosen, config, images, labels, runtime, args.scale, **options)
        results["concurrent"] = together
        print(f"  all models' training together: {together['measured_s']:.1f} s for {together['steps_run']} of {together['steps']} steps"
              + (f", {together['seconds']:.1f} s extrapolated to all of them" if extrapolated else ""), flush=True)
    for model in chosen:
        if together:
            t, state = None, final[model]
        else:
            t, state = time_training(model, config, images, labels, runtime, args.scale, **options)
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
    return results

def add_parser(sub) -> None:
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
