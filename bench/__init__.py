"""Benchmarks: the project's code against course-style code, and the whole Part B recipe, timed.

Run from the checkout (the folder with the Snakefile); these tools are not part of the installed
fundiff package:

    python -m bench train     [--hidden 128] [--batch 256] [--steps 10] [--warmup 2]
                              [--data-root data/mnist] [--synthetic] [--threads T]
                              [--loss-steps 60] [--json PATH] [--strict]
    python -m bench sampling  [--sampler ddpm|flow|both] [--samples 40] [--steps 300]
                              [--hidden 64] [--guidance 5] [--warmup 2] [--device auto]
                              [--precision auto] [--threads T] [--json PATH]
    python -m bench recipe    [--device auto|cuda|cpu] [--scale F] [--config PATH]
                              [--synthetic] [--threads T] [--models M,..] [--json PATH]
                              [--no-cuda-graphs] [--compile] [--concurrent]
    python -m bench threads   [--threads 8,2] [--hidden 64] [--batch 128] [--steps 6]
    python -m bench dag       [--config config/smoke.yaml] [--cores 2] [--directory DIR]
                              [--summarize DIR] [--bar 180] [--json PATH] [--strict]
    python -m bench quality   [--config config/laptop.yaml] [--model ddpm/time_cond]
                              [--set KEY=VALUE ...] [--seeds 3] [--samples N]
                              [--run-dir .] [--json PATH]

One module per command (bench/train.py, sampling.py, recipe.py, threads.py, dag.py, quality.py, each
describing its benchmark), what they share in bench/common.py, the command line in bench/cli.py.

Every command first prints the CPU model, its flags that matter for PyTorch's CPU kernels and
which bf16 path it judged the CPU to have: AMX (amx_bf16), AVX512-bf16 (avx512_bf16 without
AMX) or neither. On neither, `precision: auto` runs fp32 (no bf16 autocast), so the project's
modes are fp32 there; the text of each command says what every mode actually ran as.
"""
