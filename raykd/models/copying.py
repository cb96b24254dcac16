"""A deep copy of a module that runs its own weights, also when the module was compiled in place."""
from __future__ import annotations

import copy

from torch import nn


def independent_copy(module: nn.Module, device: str | None = None) -> nn.Module:
    """`copy.deepcopy(module)`, minus what `nn.Module.compile()` left behind: its compiled call still calls the
    original module's forward, so a deep copy of a compiled tower would train (or average) the original's
    weights and never its own. The copy runs eagerly; compile it again if wanted.

    `device`: make the copy's parameters and buffers there directly (e.g. 'cpu' for a GPU model), never
    holding a second copy on the module's own device."""
    memo = {}
    if device is not None:  # deepcopy takes what the memo holds for each tensor instead of copying it in place
        memo.update({id(p): nn.Parameter(p.detach().to(device, copy=True), requires_grad=p.requires_grad)
                     for p in module.parameters()})
        memo.update({id(b): b.detach().to(device, copy=True) for b in module.buffers()})
    clone = copy.deepcopy(module, memo)
    for sub in clone.modules():
        if getattr(sub, "_compiled_call_impl", None) is not None:
            sub._compiled_call_impl = None
    return clone
