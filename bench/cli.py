"""The command line: python -m bench <command> [options], one subcommand per benchmark module."""

from __future__ import annotations

import argparse
import sys

import bench

from . import dag, quality, recipe, sampling, threads, train
from .common import write_json


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench", description=bench.__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    for module in (train, sampling, recipe, threads, dag, quality):
        module.add_parser(sub)

    args = p.parse_args(argv)
    problem = _bad_arguments(args)
    if problem:
        p.error(problem)
    module, function, passed = COMMANDS[args.what]
    results = getattr(module, function)(args)
    if args.json:
        write_json(args.json, results)
    if getattr(args, "strict", False) and passed is not None and not passed(results):
        sys.exit(1)
    return results


# each command: its module, the benchmark function's name there, and what --strict judges (None: no bar)
COMMANDS = {
    "train": (train, "bench_train", lambda r: r["bar_pass"]),
    "sampling": (sampling, "bench_sampling", lambda r: r["all_agree"]),
    "recipe": (recipe, "bench_recipe", None),
    "threads": (threads, "bench_threads", None),
    "dag": (dag, "bench_dag", lambda r: r["bar_pass"] is not False),  # None: no span to judge, not a failure
    "quality": (quality, "bench_quality", None),
}


def _bad_arguments(args) -> str | None:
    """The message for options that parse but cannot run, or None."""
    if args.what in ("train", "threads") and (args.steps < 1 or args.warmup < 0):
        return "--steps must be at least 1 and --warmup at least 0"
    if args.what == "sampling" and (args.steps <= args.warmup or args.warmup < 0 or args.samples < 1):
        return "--steps must exceed --warmup (>= 0) and --samples must be at least 1"
    if args.what == "quality" and (args.seeds < 1 or (args.samples is not None and args.samples < 1) or args.threads < 1):
        return "--seeds, --samples and --threads must be at least 1"
    if args.what == "dag" and args.cores < 1:
        return "--cores must be at least 1"
    return None
