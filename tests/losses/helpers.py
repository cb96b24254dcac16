"""Shared test helpers for the loss tests: reference implementations and random inputs."""

from __future__ import annotations

import importlib.util
import os
import sys

import torch

_OPEN_CLIP_LOSS = "_open_clip_loss_reference"


def open_clip_loss():
    """open_clip's ``loss.py`` module, loaded from its file without importing the whole package
    (``import open_clip`` takes seconds; ``loss.py`` only needs torch)."""
    if _OPEN_CLIP_LOSS not in sys.modules:
        pkg = importlib.util.find_spec("open_clip")
        path = os.path.join(pkg.submodule_search_locations[0], "loss.py")
        spec = importlib.util.spec_from_file_location(_OPEN_CLIP_LOSS, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[_OPEN_CLIP_LOSS] = module
        spec.loader.exec_module(module)
    return sys.modules[_OPEN_CLIP_LOSS]


def features(b: int = 8, d: int = 16, seed: int = 0, dtype=torch.float64, n: int = 2):
    """``n`` random [b, d] feature tensors from a fixed seed."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, d, generator=g, dtype=dtype) for _ in range(n)]


def leaf(x: torch.Tensor) -> torch.Tensor:
    """A fresh leaf copy of ``x`` that requires grad."""
    return x.detach().clone().requires_grad_(True)


def batch(b: int = 8, d: int = 16, seed: int = 0, n_classes: int = 3, d_student: int | None = None) -> dict:
    """One fp64 step input: teacher [b, d], student [b, d_student or d], labels [b] (some -1),
    logit_scale (the multiplier 1/0.07)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(-1, n_classes, (b,), generator=g)
    return {
        "teacher": torch.randn(b, d, generator=g, dtype=torch.float64),
        "student": torch.randn(b, d_student or d, generator=g, dtype=torch.float64),
        "labels": labels,
        "logit_scale": torch.tensor(1 / 0.07, dtype=torch.float64),
    }


def build(name: str, hparams: dict | None = None, setup=None):
    """``get_loss(name, **hparams)`` in fp64; ``setup(loss)`` runs after (e.g. set prototypes)."""
    from raykd.losses import get_loss

    loss = get_loss(name, **(hparams or {})).double()
    if setup is not None:
        setup(loss)
    return loss


def step(loss, inputs: dict) -> dict:
    """One forward/backward: value, input grads and the loss's own parameter grads."""
    t, s = leaf(inputs["teacher"]), leaf(inputs["student"])
    value = loss(t, s, logit_scale=inputs["logit_scale"], labels=inputs["labels"])
    value.backward()
    params = {n: p.grad.clone() for n, p in loss.named_parameters() if p.grad is not None}
    loss.zero_grad(set_to_none=True)
    return {"value": value.detach(), "teacher": t.grad, "student": s.grad, "params": params}


def run_steps(name: str, hparams: dict | None, batches: list, setup=None) -> dict:
    """Run ``batches`` through a fresh loss; under a process group each rank takes its half."""
    import torch.distributed as dist

    loss = build(name, hparams, setup)
    if dist.is_initialized():
        from .dist_utils import my_half

        batches = [{k: my_half(v) if v.dim() else v for k, v in b.items()} for b in batches]
    steps = [step(loss, b) for b in batches]
    return {"steps": steps, "state": {k: v.clone() for k, v in loss.state_dict().items()}}


def close(a, b, tol: float = 1e-6) -> None:
    """assert_close for tensors, None, and (nested) dicts of them."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), (a.keys(), b.keys())
        for k in a:
            close(a[k], b[k], tol)
    elif a is None or b is None:
        assert a is None and b is None, "one gradient is None and the other is not"
    else:
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def assert_two_processes_match_single(name, hparams, batches, setup=None, tol: float = 1e-6) -> None:
    """Two gloo ranks, each with half of every batch, against one process on the whole batches.

    Checks the documented conventions: the mean over ranks of the loss equals the single-process
    loss; each rank's input gradients are world_size x the single-process gradients of its rows
    (DDP's averaging turns that into the exact parameter gradient); the loss's own parameter
    gradients (averaged over ranks by ``sync_grad``) and the updated state equal the
    single-process ones on every rank.
    """
    from .dist_utils import run_in_two_processes

    single = run_steps(name, hparams, batches, setup)
    ranks = run_in_two_processes(run_steps, name, hparams, batches, setup)
    for i, ref in enumerate(single["steps"]):
        per_rank = [r["steps"][i] for r in ranks]
        close(torch.stack([r["value"] for r in per_rank]).mean(), ref["value"], tol)
        for side in ("teacher", "student"):
            grads = [r[side] for r in per_rank]
            close(None if grads[0] is None else torch.cat(grads) / 2, ref[side], tol)
        for r in per_rank:
            close(r["params"], ref["params"], tol)
    for r in ranks:
        close(r["state"], single["state"], tol)


def assert_state_round_trip(name, hparams, batches, setup=None) -> None:
    """state_dict after a step -> fresh loss -> load_state_dict -> identical next output/state."""
    first, *rest = batches
    loss = build(name, hparams, setup)
    step(loss, first)
    fresh = build(name, hparams)
    fresh.load_state_dict(loss.state_dict())
    for b in rest:
        close(step(fresh, b), step(loss, b), tol=0)
    close(fresh.state_dict(), loss.state_dict(), tol=0)


def unit(x: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` divided by their Euclidean norm (written out, independent of F.normalize)."""
    return x / x.pow(2).sum(dim=1, keepdim=True).sqrt()


def assert_value_and_grads_match(loss, reference, teacher, student, tol: float = 1e-5) -> None:
    """``loss(teacher, student)`` and ``reference(teacher, student)`` agree in value and in the
    gradients w.r.t. both inputs."""
    t1, s1, t2, s2 = leaf(teacher), leaf(student), leaf(teacher), leaf(student)
    ours, ref = loss(t1, s1), reference(t2, s2)
    ours.backward()
    ref.backward()
    close(ours, ref, tol)
    close(s1.grad, s2.grad, tol)
    close(t1.grad, t2.grad, tol)
