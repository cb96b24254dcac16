"""A deep copy of a module that runs its own weights, also when the module was compiled in place."""
from __future__ import annotations

import copy

from torch import nn


def independent_copy(module: nn.Module) -> nn.Module:
    """`copy.deepcopy(module)`, minus what `nn.Module.compile()` left behind: its compiled call still calls the
    original module's forward, so a deep copy of a compiled tower would train (or average) the original's
    weights and never its own. The copy runs eagerly; compile it again if wanted."""
    clone = copy.deepcopy(module)
    for sub in clone.modules():
        if getattr(sub, "_compiled_call_impl", None) is not None:
            sub._compiled_call_impl = None
    return clone
