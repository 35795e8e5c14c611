"""Seeds and random streams: every random stream of the pipeline is named, and its seed derived
from the global seed and that name, so each job draws the same numbers whatever else ran."""

from __future__ import annotations

import zlib

import torch


def stream_seed(seed: int, name: str) -> int:
    """A seed for one named random stream: (seed * 1000003 + crc32(name)) mod 2^63."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**63)


def generator(seed: int, name: str) -> torch.Generator:
    """A CPU generator seeded for the stream `name` (`stream_seed`)."""
    return torch.Generator().manual_seed(stream_seed(seed, name))
