"""The command line: python -m bench <command> [options], one subcommand per benchmark module."""

from __future__ import annotations

import argparse
import sys

import bench

from . import dag, recipe, sampling, threads, train


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench", description=bench.__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    for module in (train, sampling, recipe, threads, dag):
        module.add_parser(sub)

    args = p.parse_args(argv)
    if args.what == "train":
        if args.steps < 1 or args.warmup < 0:
            p.error("--steps must be at least 1 and --warmup at least 0")
        results = train.bench_train(args)
        if args.strict and not results["bar_pass"]:
            sys.exit(1)
        return results
    if args.what == "sampling":
        if args.steps <= args.warmup or args.warmup < 0 or args.samples < 1:
            p.error("--steps must exceed --warmup (>= 0) and --samples must be at least 1")
        results = sampling.bench_sampling(args)
        if args.strict and not results["all_agree"]:
            sys.exit(1)
        return results
    if args.what == "recipe":
        return recipe.bench_recipe(args)
    if args.what == "dag":
        if args.cores < 1:
            p.error("--cores must be at least 1")
        results = dag.bench_dag(args)
        if args.strict and results["bar_pass"] is False:
            sys.exit(1)
        return results
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be at least 1 and --warmup at least 0")
    return threads.bench_threads(args)
