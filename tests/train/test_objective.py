"""The training objective: alignment weight, SimCSE term, teacher direction, prototype sizing."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from raykd.config import load_config
from raykd.losses import get_loss
from raykd.models.dual_encoder import build_dual_encoder
from raykd.train.objective import Objective, build_loss
from tests.conftest import REPO, tiny_overrides


def tiny(root, **extra):
    cfg = load_config(REPO / "recipes/quickstart.yaml", tiny_overrides(root, **extra))
    torch.manual_seed(0)
    model = build_dual_encoder(cfg.model)
    tokens = {k: torch.as_tensor(v) for k, v in model.text_tokenizer(["a red circle", "a blue cross", "a cat"]).items()}
    return cfg, model, torch.randn(3, 3, 32, 32), tokens


def reference_infonce(a, b, scale):
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = scale * a @ b.T
    target = torch.arange(len(a))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def test_alignment_weight_and_teacher_direction(builtin_root):
    cfg, model, images, tokens = tiny(builtin_root)
    loss = get_loss("SimReg")
    image_feats, text_feats = model(images, tokens)
    expected = 0.25 * F.mse_loss(F.normalize(image_feats, dim=-1), F.normalize(text_feats, dim=-1))
    value, teacher = Objective(model, loss, "image", w_align=0.25)(images, tokens, None)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(teacher, image_feats.detach())  # teacher: image tower


def test_simcse_only_skips_the_image_tower(builtin_root):
    cfg, model, images, tokens = tiny(builtin_root)
    objective = Objective(model, get_loss("InfoNCE"), "text", w_align=0.0, w_simcse=2.0, simcse_temperature=0.05)
    value, teacher = objective(images, tokens, None)
    text = model.encode_text(tokens, normalize=False)  # no dropout in this tower: both views agree
    torch.testing.assert_close(value, 2.0 * reference_infonce(text, text, 20.0))
    value.backward()
    assert teacher is None
    assert all(p.grad is None for p in model.image.parameters())
    assert model.text.backbone.clip.token_embedding.weight.grad is not None


def test_prototype_losses_are_sized_to_the_joint_dimension(builtin_root, capsys):
    cfg, *_ = tiny(builtin_root, **{"loss.name": "DINO", "loss.hparams": '{"n_prototypes": 32}'})
    loss = build_loss(cfg)
    assert "DINO: prototype layer input dim set to model.embed_dim=16" in capsys.readouterr().out
    out = loss(torch.randn(4, 16), torch.randn(4, 16))
    assert torch.isfinite(out)
