"""Part A's strided timesteps on DeepFloyd's 1000-step schedule and on the MNIST model's T."""

from __future__ import annotations

from .errors import ConfigError

DEEPFLOYD_T = 1000


def scale_t(t: int, num_steps: int, reference: int = DEEPFLOYD_T) -> int:
    """A DeepFloyd timestep on the MNIST model's schedule: round(t * T_m / 1000)."""
    return int(round(t * num_steps / reference))


def course_timesteps(start: int = 990, stride: int = 30) -> list[int]:
    """[start, start - stride, ..., 0]: the course's 990, 960, ..., 30, 0 (34 values)."""
    if start < 1 or stride < 1 or start % stride:
        raise ConfigError(f"part_a.timesteps: start ({start}) must be a positive multiple of stride ({stride})")
    return list(range(start, -1, -stride))


def scaled_timesteps(start: int, stride: int, num_steps: int) -> list[int]:
    """The course's strided list with every entry scaled to T_m: round(t * T_m / 1000)."""
    scaled = [scale_t(t, num_steps) for t in course_timesteps(start, stride)]
    if len(set(scaled)) != len(scaled):
        raise ConfigError(f"part_a.timesteps: stride {stride} is too fine for the {num_steps}-step MNIST model (scaled timesteps repeat); raise the stride")
    return scaled
