"""python -m bench quality: what one training lever buys in sample quality, over several seeds.

Trains one generative Part B model of a config from scratch, exactly as the pipeline does
(fundiff.train.init_checkpoint, then train_epoch once per epoch; single-threaded by default, as
the laptop recipe's jobs run), with any of its settings changed by --set key=value, then draws
--seeds sets of --samples samples from the final checkpoint (the sampler, step count and variance
of the rules, autoguided by the run's guide_epoch checkpoint where the config sets one; the pipeline's evaluation seed, then + 1,000, + 2,000, ...; class-conditioned
models at their course gamma) and reads them with the evaluation classifier, real-digit
statistics and reference Frechet distance of an earlier run (--run-dir, the folder that run
wrote results/ in; fundiff.paths names the files). It prints, per seed and as the mean: the share read with p >= 0.9, the
Frechet distance over real digits' at the same count, and (class-conditioned) the accuracy.

With --reuse-checkpoints it trains nothing and samples the --run-dir run's own checkpoints
instead: for settings that change only how samples are drawn (guide_epoch, guide_weight), checked
against the checkpoints' recipe.

One seed of its figures is the one the pipeline's gates judge; the others say how much of a
difference between two levers is noise. The tables of docs/results.md came from it.
"""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import torch
import yaml

from fundiff import config_checks, data, evaluate, part_b, paths, recipes, train

from .common import clock, start

SEED_STRIDE = 1000  # the k-th evaluation seed is the pipeline's + k * SEED_STRIDE


def add_parser(sub) -> None:
    q = sub.add_parser("quality", help="train one generative model with changed settings and read its samples over several seeds")
    q.add_argument("--config", default="config/laptop.yaml")
    q.add_argument("--model", default="ddpm/time_cond", help="a generative Part B model, e.g. ddpm/time_cond, flow/time_cond")
    q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change one of the model's settings (YAML value), e.g. --set batch_size=16 --set t_sampling=uniform")
    q.add_argument("--seeds", type=int, default=3)
    q.add_argument("--samples", type=int, default=None, help="samples per seed (default: evaluation.num_samples)")
    q.add_argument("--run-dir", default=".", help="an earlier run's working directory: its evaluation classifier and reference statistics are read")
    q.add_argument("--reuse-checkpoints", action="store_true",
                   help="sample the --run-dir run's own checkpoints instead of training (for settings that change only sampling, "
                        "such as guide_epoch / guide_weight; refused when the settings change the weights)")
    q.add_argument("--device", default="cpu", choices=("auto", "cuda", "cpu"))
    q.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    q.add_argument("--threads", type=int, default=1)
    q.add_argument("--json")


def changed_config(config: dict, model: str, assignments: list[str]) -> dict:
    """A copy of `config` with the model's settings changed by KEY=VALUE assignments (values parsed as
    YAML), checked as the DAG build checks a config."""
    generative = [f"{e}/{m}" for e, names in recipes.GENERATIVE.items() for m in names]
    if model not in generative:
        raise SystemExit(f"python -m bench quality: --model must be one of {', '.join(generative)}, got {model!r}")
    out = copy.deepcopy(config)
    settings = recipes.model_settings(out, model)
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"python -m bench quality: --set takes KEY=VALUE, got {item!r}")
        settings[key] = yaml.safe_load(value)
    config_checks.check(out)
    return out


def evaluation_inputs(run_dir) -> tuple[Path, dict, float]:
    """(classifier path, the real digits' feature statistics, their Frechet distance at the evaluation count) of a run."""
    files = [Path(run_dir) / name for name in (paths.CLASSIFIER, paths.REFERENCE_STATS, paths.REFERENCE)]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise SystemExit(f"python -m bench quality: {', '.join(missing)} not found. They come from a run of the pipeline: "
                         "snakemake --cores 2 --configfile config/laptop.yaml --until reference_metrics "
                         "(or pass --run-dir with the folder of an earlier run).")
    reference = torch.load(files[1], map_location="cpu", weights_only=True)
    with files[2].open() as f:
        reference_fd = float(next(csv.DictReader(f))["frechet_distance"])
    return files[0], reference, reference_fd


def read_samples(state: dict, config: dict, model: str, runtime, classifier, reference: dict, reference_fd: float, num_seeds: int, num_samples: int,
                 guide: tuple[dict, float] | None = None) -> list[dict]:
    """Per evaluation seed: the share read with p >= 0.9, the Frechet ratio and (class models) the accuracy;
    `guide` = (earlier checkpoint, weight) autoguides the samples as the pipeline does (recipes.autoguide)."""
    ev = config["evaluation"]
    guidance = recipes.model_settings(config, model).get("guidance")
    variance = config["part_b"]["ddpm"].get("sample_variance", "beta")
    base = part_b.eval_seed(config["seed"], model)
    rows = []
    for k in range(num_seeds):
        seed = base + k * SEED_STRIDE
        out = part_b.draw_eval_samples(state, runtime, num_samples, ev["batch_size"], seed, guidance=guidance,
                                       num_steps=recipes.sampling_steps(config, model), variance=variance, guide=guide)
        row = evaluate.sample_metrics(classifier, out["samples"], out["labels"], reference, runtime)
        rows.append({"seed": seed, "confident_fraction": row["confident_fraction"], "frechet_ratio": row["frechet_distance"] / reference_fd,
                     "accuracy": None if out["labels"] is None else row["accuracy"]})
    return rows


def train_model(config: dict, model: str, recipe: dict, runtime, autoguide: tuple[int, float] | None) -> tuple[dict, tuple[dict, float] | None]:
    """The final checkpoint of a chain trained as the pipeline trains it, and the autoguidance one it keeps on the way."""
    images, labels = data.load_split(config["data"]["root"], "train", limit=recipe["train_limit"])
    images, labels = data.to_float(images, runtime.device), labels.to(runtime.device)
    state = train.init_checkpoint(dict(recipe), f"part_b/{model}", config["seed"])
    guide = None
    for epoch in range(1, recipe["epochs"] + 1):
        state = train.train_epoch(state, images, labels, runtime)
        if autoguide and epoch == autoguide[0]:
            guide = (copy.deepcopy(state), autoguide[1])
        ends = [0, *state["epoch_ends"]]
        print(f"epoch {epoch}/{recipe['epochs']}: mean loss {state['losses'][ends[-2]:].mean():.5f}", flush=True)
    return state, guide


def run_checkpoints(run_dir, model: str, recipe: dict, autoguide: tuple[int, float] | None) -> tuple[dict, tuple[dict, float] | None]:
    """The final (and autoguidance) checkpoint of an earlier run, checked to hold the weights `recipe` trains."""
    def load(epoch):
        path = Path(run_dir) / paths.checkpoint(model, epoch)
        try:
            return train.load_checkpoint(path, expect_recipe=recipe)
        except train.CheckpointError as err:
            raise SystemExit(f"python -m bench quality --reuse-checkpoints: {err}") from None
    return load(recipe["epochs"]), None if autoguide is None else (load(autoguide[0]), autoguide[1])


def bench_quality(args) -> dict:
    runtime, config, info = start(args)
    config = changed_config(config, args.model, args.set)
    recipe = recipes.recipe(config, args.model)
    classifier_path, reference, reference_fd = evaluation_inputs(args.run_dir)
    classifier = evaluate.load_classifier(classifier_path, runtime)
    print(f"{args.model} with {' '.join(args.set) or 'the config as it is'}: {recipe}", flush=True)

    autoguide = recipes.autoguide(config, args.model, recipe["epochs"])
    t0 = clock()
    if args.reuse_checkpoints:
        state, guide = run_checkpoints(args.run_dir, args.model, recipe, autoguide)
    else:
        state, guide = train_model(config, args.model, recipe, runtime, autoguide)
    wall, cpu = (b - a for a, b in zip(t0, clock()))

    num_samples = args.samples or config["evaluation"]["num_samples"]
    rows = read_samples(state, config, args.model, runtime, classifier, reference, reference_fd, args.seeds, num_samples, guide)
    mean = {key: sum(r[key] for r in rows) / len(rows) for key in ("confident_fraction", "frechet_ratio")}
    if rows[0]["accuracy"] is not None:
        mean["accuracy"] = sum(r["accuracy"] for r in rows) / len(rows)
    for r in rows:
        acc = "" if r["accuracy"] is None else f", accuracy {r['accuracy']:.2f}"
        print(f"seed {r['seed']}: read with p >= 0.9 {r['confident_fraction']:.2f}, Frechet ratio {r['frechet_ratio']:.2f}{acc}")
    acc = f", accuracy {mean['accuracy']:.2f}" if "accuracy" in mean else ""
    print(f"mean of {len(rows)} x {num_samples} samples: read {mean['confident_fraction']:.2f} / Frechet ratio {mean['frechet_ratio']:.2f}{acc}"
          + (f" (the checkpoints of the run in {args.run_dir})" if args.reuse_checkpoints else f" (training {wall:.0f} s wall, {cpu:.0f} s CPU)"))
    trained = not args.reuse_checkpoints  # loading checkpoints is no training time
    return {"machine": info, "model": args.model, "set": args.set, "recipe": recipe, "per_seed": rows, "mean": mean,
            "train_wall_s": wall if trained else None, "train_cpu_s": cpu if trained else None, "num_samples": num_samples}
