"""The depth of every backbone parameter, for layer-wise learning-rate decay.

Layer-wise decay (Clark et al., ELECTRA 2020; Bao et al., BEiT 2022) gives the block at depth i of
n the learning rate lr * decay^(n + 1 - i): the stem/embeddings get id 0, blocks 1..n, and what
comes after the last block (final norm, projection) n + 1, i.e. the full rate.

Found generically, not by model name:
- blocks are the children of an `nn.Sequential` / `nn.ModuleList` whose children all share one
  class defined outside `torch.nn` (transformer layers; ResNet stages' BasicBlock/Bottleneck);
- with `unit="stage"` the blocks of one list decay together (ResNet layer1..layer4: 4 stages, so 6
  rates with the stem and what follows, as the original codebase; `block`: 16 Bottlenecks, 18 rates);
- their order, and whether a parameter outside the blocks comes before, between or after them, is
  the order in which one traced forward pass first uses each parameter (registration order is not
  forward order: open_clip registers `text_projection` before the token embedding).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves


def _is_block_list(module: nn.Module) -> bool:
    kids = list(module.children())
    if not isinstance(module, (nn.Sequential, nn.ModuleList)) or not kids:
        return False
    kind = type(kids[0])
    return (all(type(k) is kind for k in kids) and not kind.__module__.startswith("torch.nn")
            and not isinstance(kids[0], (nn.Sequential, nn.ModuleList))
            and any(True for _ in kids[0].parameters()))


def find_blocks(module: nn.Module) -> list[str]:
    """Names of the repeated blocks in `module` (outermost only), in registration order."""
    blocks: list[str] = []
    for name, sub in module.named_modules():
        if any(name == b or name.startswith(b + ".") for b in blocks):
            continue
        if _is_block_list(sub):
            blocks += [f"{name}.{child}" if name else child for child, _ in sub.named_children()]
    return blocks


class _FirstUse(TorchFunctionMode):
    """Records the order in which parameters are first passed to a torch function."""

    def __init__(self, names: dict[int, str]):
        super().__init__()
        self.names, self.order = names, {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not any(isinstance(leaf, torch.Tensor) for leaf in tree_leaves(out)):
            return out  # metadata (`.dtype`, `.shape`, `.size()`): not a use of the values
        for leaf in tree_leaves((args, kwargs)):
            name = self.names.get(id(leaf)) if isinstance(leaf, torch.Tensor) else None
            if name is not None and name not in self.order:
                self.order[name] = len(self.order)
        return out


def first_use_order(module: nn.Module, inputs) -> dict[str, int]:
    """{parameter name: rank of its first use} in one eval-mode, no-grad forward of `module(inputs)`."""
    modes = {m: m.training for m in module.modules()}
    names = {id(p): n for n, p in module.named_parameters()}
    module.eval()
    try:
        with torch.no_grad(), _FirstUse(names) as tracer:
            module.forward(inputs)  # not __call__: a compiled tower would trace through dynamo
    finally:
        for m, training in modes.items():
            m.training = training
    return tracer.order


def layer_ids(module: nn.Module, inputs=None, unit: str = "block") -> tuple[dict[str, int], int]:
    """({parameter name: layer id}, n_units + 1) for `module`, a unit being a block or (`unit="stage"`) a
    list of blocks; `inputs` default to `module.example_inputs()` (a `Tower`). Raises ValueError when no
    repeated blocks exist."""
    if unit not in ("block", "stage"):
        raise ValueError(f"layer-decay unit must be 'block' or 'stage', got {unit!r}")
    blocks = find_blocks(module)
    if not blocks:
        raise ValueError(f"layer-wise lr decay needs repeated blocks (transformer layers, ResNet stages); "
                         f"found none in {type(getattr(module, 'backbone', module)).__name__}")
    if unit == "stage":  # 'backbone.layer1.0' -> 'backbone.layer1': one unit per list of blocks
        blocks = list(dict.fromkeys(b.rsplit(".", 1)[0] for b in blocks))
    names = [n for n, _ in module.named_parameters()]
    try:
        order = first_use_order(module, module.example_inputs() if inputs is None else inputs)
    except Exception:  # an untraceable forward: fall back to registration order
        order = {n: i for i, n in enumerate(names)}
    rank = {n: order.get(n, math.inf) for n in names}  # never used: counts as after every block
    owner = {n: next((b for b in blocks if n.startswith(b + ".")), None) for n in names}
    start = {b: min((rank[n] for n in names if owner[n] == b), default=math.inf) for b in blocks}
    ordered = sorted(blocks, key=lambda b: start[b])
    block_id = {b: i + 1 for i, b in enumerate(ordered)}
    n_blocks = len(blocks)
    ids = {}
    for n in names:
        if owner[n] is not None:
            ids[n] = block_id[owner[n]]
        else:
            before = sum(start[b] < rank[n] for b in blocks)
            ids[n] = n_blocks + 1 if before == n_blocks else before
    return ids, n_blocks + 1
