"""Set-up shared by the thin scripts under scripts/: logging into the rule's log, threads, runtime."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .device import Runtime


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask (what taskset, cgroups' cpusets and SLURM
    give it), or os.cpu_count() where the platform has no sched_getaffinity."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def torch_threads(requested: int, cpus: int | None = None) -> int:
    """min(requested, usable CPUs), at least 1: a rule's `threads` is what it asks of the scheduler,
    and more torch threads than cores only adds contention (measured: 8 threads on 2 cores made a D=64 training step 1.3x slower)."""
    return max(1, min(int(requested), usable_cpus() if cpus is None else cpus))


def setup(log_path: str | None, threads: int = 1, device: str | None = None, precision: str | None = None) -> Runtime | None:
    """Send logging, warnings and stderr (tqdm included) to the rule's log file; set torch threads
    to the rule's `threads`, capped at the CPUs this process may use.

    Returns the resolved Runtime when `device` is given.
    """
    if log_path:
        stream = open(log_path, "a", buffering=1)
        sys.stderr = stream
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.captureWarnings(True)
    cpus = usable_cpus()
    n = torch_threads(threads, cpus)
    if device is None and "torch" not in sys.modules:
        # a job that has not imported torch (plots, tables, gates) does not pay its ~2 s import here;
        # should it load torch later, torch reads its thread count from OMP_NUM_THREADS
        os.environ["OMP_NUM_THREADS"] = str(n)
        return None
    import torch

    from .device import resolve

    torch.set_num_threads(n)
    if device is None:
        return None
    runtime = resolve(device, precision or "auto")
    # CUDA_VISIBLE_DEVICES: the GPUs a scheduler (SLURM --gpus) gave this job; tests/test_slurm.py reads it here
    logging.getLogger("fundiff").info(
        "runtime: %s, %d CPU threads (job threads %d, usable CPUs %d), torch %s, CUDA_VISIBLE_DEVICES=%s",
        runtime.describe(), torch.get_num_threads(), int(threads), cpus, torch.__version__, os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
    )
    return runtime


def progress(desc: str, every_s: float = 10.0):
    """A tqdm wrapper that writes to the log at most every `every_s` seconds."""
    from tqdm import tqdm

    def wrap(iterable):
        return tqdm(iterable, desc=desc, file=sys.stderr, mininterval=every_s, ascii=True)

    return wrap


def finish() -> None:
    """The last line of every job script, reached only when its outputs are written: flush the log
    and end the process without Python's interpreter teardown. Tearing down the tens of thousands
    of objects that torch (and diffusers) leave behind took 0.5 s (torch alone) to 1.7 s (a Part A
    job) per job, a tenth of the smoke DAG. A script that fails raises before this
    line and exits the normal way, traceback and non-zero status included."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):  # closed or absent
            pass
    os._exit(0)

