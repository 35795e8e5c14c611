"""The models, in one place: the course UNet (`fundiff.unet`, where `load_final` lives), the
evaluation classifier, and the adapters that put the MNIST DDPM and DeepFloyd IF behind Part A's
model interface `model(x, t, cond) -> (eps, var)`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .device import Runtime
from .unet import UNet, UNetConfig  # noqa: F401  (the course UNet)

NUM_CLASSES = 10
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


# ---------------------------------------------------------------- the evaluation classifier


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class MnistClassifier(nn.Module):
    """conv-BN-ReLU x2, pool, conv-BN-ReLU x2, pool, conv-BN-ReLU, pool -> 128-d features -> 10 logits.

    Inputs are images [N, 1, 28, 28] in [0, 1] (normalised inside); `features` is the
    penultimate layer (after BN and ReLU), the space of the diversity and Frechet metrics.
    """

    def __init__(self, width: int = 16, num_features: int = 128):
        super().__init__()
        self.width, self.num_features = width, num_features
        w = width
        self.body = nn.Sequential(
            _block(1, w), _block(w, w), nn.MaxPool2d(2),  # 14x14
            _block(w, 2 * w), _block(2 * w, 2 * w), nn.MaxPool2d(2),  # 7x7
            _block(2 * w, 4 * w), nn.MaxPool2d(2),  # 3x3
        )
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * 9, num_features, bias=False), nn.BatchNorm1d(num_features), nn.ReLU(inplace=True))
        self.head = nn.Linear(num_features, NUM_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.body((x - MNIST_MEAN) / MNIST_STD))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


# ---------------------------------------------------------------- Part A's model interface


class MnistModel:
    """Part A's model interface on the class-conditioned Part B DDPM UNet (fixed variance).

    `alphas_cumprod[t]` for t in 0..T_m with abar_0 = 1 (Part B's 1-based schedule); the UNet
    sees t / T_m. Counts its forward calls (`calls`) and the images they carried (`images`).
    """

    def __init__(self, state: dict, runtime: Runtime):
        from .train import build_model, schedule_for

        recipe = state["recipe"]
        if recipe["objective"] != "ddpm" or recipe["conditioning"] != "class":
            raise ValueError(f"Part A's mnist model must be the class-conditioned DDPM, got {state['name']}")
        self.net = build_model(state, runtime, use_ema=True).eval()
        self.runtime = runtime
        schedule = schedule_for(recipe)
        self.num_steps = schedule.num_steps
        self.alphas_cumprod = schedule.alphas_cumprod
        self.calls = 0
        self.images = 0

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, t: int, cond: torch.Tensor):
        if not 1 <= t <= self.num_steps:
            raise ValueError(f"t must be in 1..{self.num_steps} for the MNIST model, got {t}")
        self.calls += 1
        self.images += x.shape[0]
        rt = self.runtime
        x_in = x.to(rt.device)
        if rt.channels_last:
            x_in = x_in.contiguous(memory_format=torch.channels_last)
        t_in = torch.full((x.shape[0],), t / self.num_steps, device=rt.device)
        with rt.autocast():
            eps = self.net(x_in, t_in, cond.to(rt.device)).float()
        return eps.to(x.device), None


class IFModel:
    """Part A's model interface on an IF stage-I UNet: (x, t, embeddings) -> (eps, learned-range var).

    Counts its forward calls (`calls`) and the images they carried (`images`).
    """

    def __init__(self, unet, device: torch.device):
        self.unet, self.device = unet, device
        self.dtype = unet.dtype
        self.calls = 0
        self.images = 0

    @torch.no_grad()
    def _unet(self, x: torch.Tensor, t: int, cond: torch.Tensor, **extra) -> tuple[torch.Tensor, torch.Tensor]:
        """One counted UNet call; its 6 output channels split into (eps, var) on x's device, fp32."""
        self.calls += 1
        self.images += x.shape[0]
        out = self.unet(x.to(self.device, self.dtype), torch.tensor(t, device=self.device),
                        encoder_hidden_states=cond.to(self.device, self.dtype), return_dict=False, **extra)[0]
        return out.float().to(x.device).split(3, dim=1)

    def __call__(self, x: torch.Tensor, t: int, cond: torch.Tensor):
        return self._unet(x, t, cond)


class IFStage2Model(IFModel):
    """Stage II's UNet behind Part A's model interface, so the view-combining samplers (anagrams,
    hybrids) run at 256 px too. The sampler's state carries 6 channels: the noisy 256 px image and,
    in channels 3:6, the upscaled stage-I image it is conditioned on, so a view (a flip) turns
    both; the model returns zero eps and var for the conditioning channels, and the loop pastes
    them back after every step (`keep_condition`)."""

    def __init__(self, unet, device: torch.device, noise_level: int):
        super().__init__(unet, device)
        self.noise_level = noise_level

    def __call__(self, x: torch.Tensor, t: int, cond: torch.Tensor):
        labels = torch.full((x.shape[0],), self.noise_level, device=self.device)
        eps, var = self._unet(x, t, cond, class_labels=labels)
        zeros = torch.zeros_like(eps)
        return torch.cat([eps, zeros], 1), torch.cat([var, zeros], 1)
