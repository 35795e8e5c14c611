"""Strided timesteps (torch-free, so the DAG build can check them): the one evenly spaced list of the
samplers, the course's Part A list, and its scaling from DeepFloyd's 1000 steps to the MNIST model's T."""

from __future__ import annotations

import numpy as np

from .errors import ConfigError

DEEPFLOYD_T = 1000


def scale_t(t: int, num_steps: int, reference: int = DEEPFLOYD_T) -> int:
    """A DeepFloyd timestep on the MNIST model's schedule: round(t * T_m / 1000)."""
    return int(round(t * num_steps / reference))


def strided_timesteps(start: int, count: int, end: int = 1) -> list[int]:
    """`count` distinct steps from `start` down to `end`, evenly spaced: round(linspace(start, end, count)).

    Computed in float32 from both ends, as torch.linspace does, so the list is the same bit for bit
    as torch.linspace(start, end, count).round() (tested for every start <= 1000) without torch."""
    if not 1 <= count <= start - end + 1:
        raise ValueError(f"the number of steps must be in 1..{start - end + 1} (from {start} down to {end}), got {count}")
    if count == 1:
        return [start]
    f = np.float32
    step = f(f(end) - f(start)) / f(count - 1)
    return [int(np.rint(f(start) + step * f(i) if i < count // 2 else f(end) - step * f(count - 1 - i))) for i in range(count)]


def course_timesteps(start: int = 990, stride: int = 30) -> list[int]:
    """[start, start - stride, ..., 0]: the course's 990, 960, ..., 30, 0 (34 values)."""
    if start < 1 or stride < 1 or start % stride:
        raise ConfigError(f"part_a.timesteps: start ({start}) must be a positive multiple of stride ({stride})")
    return strided_timesteps(start, start // stride + 1, end=0)


def scaled_timesteps(start: int, stride: int, num_steps: int) -> list[int]:
    """The course's strided list with every entry scaled to T_m: round(t * T_m / 1000)."""
    scaled = [scale_t(t, num_steps) for t in course_timesteps(start, stride)]
    if len(set(scaled)) != len(scaled):
        raise ConfigError(f"part_a.timesteps: stride {stride} is too fine for the {num_steps}-step MNIST model (scaled timesteps repeat); raise the stride")
    return scaled
