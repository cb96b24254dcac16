"""Every loss trains under DDP at world size 2 (gloo): no unused parameters, replicas stay equal."""
from __future__ import annotations

import json

import pytest
import torch

from raykd.config import load_config
from raykd.losses import list_losses, loss_class
from raykd.train.loop import LoopContext, setup, train_step
from tests.conftest import REPO, TINY_CLIP
from tests.losses.dist_utils import run_in_two_processes

pytestmark = pytest.mark.slow

SMALL = {"CompRess-1q": {"queue_size": 64}, "CompRess-2q": {"queue_size": 64}, "SEED": {"queue_size": 64},
         "DINO": {"n_prototypes": 32}, "ProtoCPC": {"n_prototypes": 32}, "ProtoCLIP": {"n_prototypes": 4}}


def _ddp_steps(name: str, lock_text: bool, steps: int = 2) -> dict:
    clip = json.dumps(TINY_CLIP)
    cfg = load_config(REPO / "recipes/quickstart.yaml", [
        f"loss.name={name}", f"loss.hparams={json.dumps(SMALL.get(name, {}))}", "model.embed_dim=16",
        f"model.image.model_config={clip}", f"model.text.model_config={clip}", f"model.text.lock={lock_text}"])
    ddp = lambda m: torch.nn.parallel.DistributedDataParallel(m, broadcast_buffers=False)
    c = setup(cfg, LoopContext(epoch_batches=lambda e: [], steps_per_epoch=2, wrap_model=ddp))
    rank = torch.distributed.get_rank()
    g = torch.Generator().manual_seed(rank)
    tokenizer = c.model.text_tokenizer
    for _ in range(steps):
        batch = {"image": torch.randn(4, 3, 32, 32, generator=g),
                 "label": torch.randint(0, 3, (4,), generator=g),
                 **{k: torch.as_tensor(v) for k, v in tokenizer([f"a shape {rank}"] * 4).items()}}
        loss, _ = train_step(c, batch, grad_clip_norm=1.0)
    return {"loss": loss, "params": {k: v.detach().clone() for k, v in c.model.state_dict().items()}}


@pytest.mark.parametrize("name", sorted(list_losses()))
def test_loss_under_ddp(name):
    lock_text = name not in {"InfoNCE", "SigLIP", "UniCL", "ProtoCLIP"}
    r0, r1 = run_in_two_processes(_ddp_steps, name, lock_text)
    assert torch.isfinite(r0["loss"]) and torch.isfinite(r1["loss"])
    for key, value in r0["params"].items():  # DDP kept the replicas identical
        if value.is_floating_point() and "running" not in key:
            torch.testing.assert_close(value, r1["params"][key], msg=f"{name}: {key}")
    assert loss_class(name) is not None


UNI_DIRECTIONAL = sorted(n for n in list_losses() if loss_class(n).uni_directional)


@pytest.mark.parametrize("name", UNI_DIRECTIONAL[:2])
def test_uni_directional_loss_with_an_unlocked_teacher_under_ddp(name):
    """The teacher (text) tower is trainable in the recipe, but the loss detaches it: its parameters are frozen,
    or DDP fails at the second step on parameters that got no gradient."""
    r0, r1 = run_in_two_processes(_ddp_steps, name, False, 3)
    assert torch.isfinite(r0["loss"]) and torch.isfinite(r1["loss"])
    for key, value in r0["params"].items():
        if value.is_floating_point() and "running" not in key:
            torch.testing.assert_close(value, r1["params"][key], msg=f"{name}: {key}")
