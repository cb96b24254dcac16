"""Weight averaging: an exponential moving average of the model (EMA) and WiSE-FT interpolation.

EMA (Polyak & Juditsky 1992; as in timm's ModelEmaV2): after every optimiser step,
    ema <- decay * ema + (1 - decay) * weights
for every floating-point entry of the state dict (BatchNorm running statistics included);
integer buffers are copied. The EMA model is what evaluation sees and is saved in checkpoints.

WiSE-FT (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022): evaluate
    (1 - alpha) * initial + alpha * trained
where `initial` are the weights before fine-tuning (e.g. the pretrained ones).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from raykd.models.copying import independent_copy


class ModelEMA:
    """An EMA copy of `model` (eval mode, no gradients) updated by `update(model)`.

    `on_cpu` keeps the copy in CPU memory (`optim.ema_on_cpu`, timm's `model_ema_force_cpu`): no second
    model on the accelerator, at the cost of one device-to-host copy of the weights per step."""

    def __init__(self, model: nn.Module, decay: float, on_cpu: bool = False):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"optim.ema_decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.on_cpu = on_cpu
        self.module = independent_copy(model, "cpu" if on_cpu else None).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """ema = decay * ema + (1 - decay) * model for every floating-point parameter and buffer (integer
        buffers are copied), as one fused foreach lerp over the modules' parameters and buffers rather than
        a state dict rebuilt and walked entry by entry. The EMA is a deep copy, so both walk alike."""
        ema = [*self.module.parameters(), *self.module.buffers()]
        src = [*model.parameters(), *model.buffers()]
        if len(ema) != len(src):
            raise ValueError("ModelEMA.update: the model's parameters and buffers no longer match the EMA copy")
        if self.on_cpu:
            src = [value.detach().to("cpu", non_blocking=False) for value in src]
        floats = [(a, b) for a, b in zip(ema, src) if a.dtype.is_floating_point]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [b for _, b in floats], 1.0 - self.decay)
        for average, value in zip(ema, src):
            if not average.dtype.is_floating_point:
                average.copy_(value)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)


def snapshot(model: nn.Module) -> dict:
    """A detached CPU copy of `model.state_dict()` (e.g. the initial weights for WiSE-FT)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def wise_ft(initial_state: dict, trained_state: dict, alpha: float) -> dict:
    """(1 - alpha) * initial + alpha * trained for floating-point entries; trained for the rest.

    Both state dicts must have the same keys and shapes; raises ValueError otherwise."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"optim.wise_ft_alpha must be in [0, 1], got {alpha}")
    if set(initial_state) != set(trained_state):
        diff = sorted(set(initial_state) ^ set(trained_state))
        raise ValueError(f"wise_ft: the state dicts differ in keys: {diff[:5]}")
    out = {}
    for name, trained in trained_state.items():
        start = initial_state[name].to(trained.device)
        if start.shape != trained.shape:
            raise ValueError(f"wise_ft: '{name}' has shape {tuple(start.shape)} vs {tuple(trained.shape)}")
        out[name] = torch.lerp(start.to(trained.dtype), trained, alpha) if trained.dtype.is_floating_point else trained
    return out


def evaluation_model(model: nn.Module, ema: Optional[ModelEMA] = None, initial_state: Optional[dict] = None,
                     alpha: float = 1.0) -> nn.Module:
    """What evaluation sees: the EMA model when there is one (a CPU-held EMA copied to the model's device
    for the evaluation), WiSE-FT-interpolated when alpha < 1."""
    trained = ema.module if ema is not None else model
    device = next(model.parameters()).device
    if ema is not None and ema.on_cpu and device.type != "cpu":
        trained = independent_copy(trained).to(device)
    if initial_state is None or alpha >= 1.0:
        return trained
    mixed = ModelEMA(trained, 0.0).module  # a detached copy to load the interpolated weights into
    mixed.load_state_dict(wise_ft(initial_state, trained.state_dict(), alpha))
    return mixed
