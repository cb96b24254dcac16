"""The training loop without Ray: learning happens, resume is exact, NaN stops the run."""
from __future__ import annotations


import pytest
import torch

from raykd.config import load_config
from raykd.data.transforms import normalise
from raykd.train import loop as loop_module
from raykd.train.loop import device_batch, run_training, setup, train_step
from raykd.schedules import lr_factor
from tests.conftest import REPO, tiny_overrides
from tests.train.local import LocalRun


def tiny_cfg(root, **extra):
    defaults = {"data.augment": "none", "data.shuffle_buffer": 0, "optim.lr": 2e-3}
    return load_config(REPO / "recipes/quickstart.yaml", tiny_overrides(root, **{**defaults, **extra}))


def params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_lr_schedule_warmup_then_cosine():
    assert lr_factor(0, 10, 110, "cosine") == pytest.approx(0.1)
    assert lr_factor(9, 10, 110, "cosine") == pytest.approx(1.0)
    assert lr_factor(60, 10, 110, "cosine") == pytest.approx(0.5)
    assert lr_factor(110, 10, 110, "cosine") == pytest.approx(0.0)
    assert lr_factor(50, 10, 110, "constant") == 1.0


def test_loss_decreases_and_reports(builtin_root):
    cfg = tiny_cfg(builtin_root, **{"train.epochs": 2})
    run = LocalRun(cfg)
    run_training(cfg, run.context())
    losses = [r["train/loss"] for r in run.reports if "train/loss" in r and r["train/loss"] > 0]
    assert losses[-1] < losses[0] - 0.3, losses
    assert run.reports[-1]["epoch"] == 2 and run.reports[-1]["step"] == 2 * run.steps_per_epoch
    assert len(run.checkpoints) == 2  # one per epoch end


def test_resume_at_epoch_boundary_equals_uninterrupted_run(builtin_root):
    cfg = tiny_cfg(builtin_root, **{"train.epochs": 2})
    full = LocalRun(cfg)
    run_training(cfg, full.context())
    end_of_epoch_0 = full.checkpoints[0]
    assert end_of_epoch_0["epoch"] == 1 and end_of_epoch_0["batches_done"] == 0

    resumed = LocalRun(cfg, resume_state=end_of_epoch_0)
    run_training(cfg, resumed.context())
    a, b = full.checkpoints[-1], resumed.checkpoints[-1]
    assert a["step"] == b["step"]
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=1e-5, atol=1e-6, msg=key)
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"]


def test_mid_epoch_resume_skips_the_batches_already_trained(builtin_root):
    cfg = tiny_cfg(builtin_root, **{"train.epochs": 1, "train.checkpoint_every_n_steps": 5})
    full = LocalRun(cfg)
    run_training(cfg, full.context())
    mid = full.checkpoints[0]
    assert (mid["step"], mid["epoch"], mid["batches_done"]) == (5, 0, 5)
    resumed = LocalRun(cfg, resume_state=mid)
    run_training(cfg, resumed.context())
    # With a deterministic data order the resumed run trains on exactly the batches after the 5th.
    for key, value in full.checkpoints[-1]["model"].items():
        torch.testing.assert_close(value, resumed.checkpoints[-1]["model"][key], rtol=1e-5, atol=1e-6)


def test_mid_epoch_resume_with_another_world_size_skips_the_samples_trained_and_warns(builtin_root, capsys):
    """A checkpoint of 2 workers x 3 batches resumed by 1 worker: it skips 6 batches (the samples trained),
    saying that the epoch's split, hence which samples were trained, differs."""
    cfg = tiny_cfg(builtin_root, **{"train.epochs": 1, "train.max_steps": 3})
    first = LocalRun(cfg)
    run_training(cfg, first.context())
    mid = first.checkpoints[-1]
    mid["world_size"] = mid["config"]["train"]["num_workers"] = 2  # as a 2-worker run of this recipe saves it
    assert (mid["step"], mid["batches_done"]) == (3, 3)
    cfg.train.max_steps = 0
    resumed = LocalRun(cfg, resume_state=mid)
    run_training(cfg, resumed.context())
    assert resumed.checkpoints[-1]["step"] == 3 + resumed.steps_per_epoch - 6
    out = capsys.readouterr().out
    assert "with 1 workers instead of the checkpoint's 2" in out and "each worker skips 6 batches" in out


@pytest.mark.parametrize("done, saved, now, skip", [
    (5, 16, 16, 5),  # the same global batch: the same workers, or an elastic run with fewer or more
    (5, 16, 32, 2), (5, 32, 16, 10), (0, 16, 24, 0)])  # num_workers changed, batch_size (per worker) kept
def test_batches_to_skip_keeps_the_samples_trained_across_global_batches(done, saved, now, skip):
    from raykd.train.loop import batches_to_skip

    assert batches_to_skip(done, saved, now) == skip


def test_max_steps_stops_mid_epoch_and_checkpoints_position(builtin_root):
    cfg = tiny_cfg(builtin_root, **{"train.epochs": 3, "train.max_steps": 3})
    run = LocalRun(cfg)
    run_training(cfg, run.context())
    last = run.checkpoints[-1]
    assert (last["step"], last["epoch"], last["batches_done"]) == (3, 0, 3)


def test_nan_loss_stops_with_step_and_no_checkpoint(builtin_root, monkeypatch):
    cfg = tiny_cfg(builtin_root, **{"train.epochs": 1, "train.log_every_n_steps": 1})
    run = LocalRun(cfg)
    calls = {"n": 0}

    def poisoned(images, spec):  # uint8 images cannot be NaN: poison the third batch once normalised
        calls["n"] += 1
        out = normalise(images, spec)
        return torch.full_like(out, float("nan")) if calls["n"] == 3 else out

    monkeypatch.setattr(loop_module, "normalise", poisoned)
    with pytest.raises(FloatingPointError, match=r"non-finite loss nan at step 3 \(epoch 0\); no checkpoint"):
        run_training(cfg, run.context())
    assert run.checkpoints == [] and [r["step"] for r in run.reports] == [1, 2]


def test_train_step_clips_gradients(builtin_root):
    cfg = tiny_cfg(builtin_root, **{"optim.grad_clip_norm": 1e-3, "optim.lr": 1.0, "optim.name": "momentum",
                                    "optim.momentum": 0.0, "optim.weight_decay": 0.0, "optim.warmup_steps": 0,
                                    "optim.schedule": "constant"})
    run = LocalRun(cfg)
    c = setup(cfg, run.context())
    before = params(c.model)
    batch = device_batch(next(iter(run.epoch_batches(0))), torch.device("cpu"), c.model.image_spec)
    train_step(c, batch, cfg.optim.grad_clip_norm)  # (loss, feats)
    delta = torch.sqrt(sum(((before[k] - v) ** 2).sum() for k, v in c.model.state_dict().items() if v.is_floating_point()))
    assert delta.item() == pytest.approx(1e-3, rel=1e-3)  # lr 1 x clipped norm 1e-3




@pytest.mark.parametrize("capability, expected", [((7, 5), torch.float16), ((7, 0), torch.float16),
                                                  ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)])
def test_auto_precision_is_fp16_below_ampere(monkeypatch, capability, expected):
    """T4 (7.5) and V100 (7.0) have no bf16 tensor cores: fp16 with the grad scaler there."""
    from raykd.train.loop import amp_dtype

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert amp_dtype("auto", torch.device("cuda")) == expected
    assert amp_dtype("auto", torch.device("cpu")) is None
    assert amp_dtype("bf16", torch.device("cuda")) == torch.bfloat16


def test_an_epoch_without_a_single_batch_fails_instead_of_training_on_nothing(builtin_root):
    """All data bad (every sample skipped): a clear error, not a run that reports success."""
    cfg = tiny_cfg(builtin_root, **{"train.epochs": 1})
    run = LocalRun(cfg)
    run.epoch_batches = lambda epoch: iter(())
    context = run.context()
    context.extra_metrics = lambda: {"data/skipped": 64, "data/skipped/bad_image": 64}
    with pytest.raises(ValueError, match=r"epoch 0 gave no training batch: every sample was skipped.*bad_image"):
        run_training(cfg, context)
    assert run.checkpoints == []


def test_fast_cuda_math_only_on_cuda(monkeypatch):
    from raykd.train.loop import enable_fast_cuda_math

    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    enable_fast_cuda_math(torch.device("cpu"))
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.benchmark
    enable_fast_cuda_math(torch.device("cuda"))
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.benchmark and torch.backends.cudnn.allow_tf32


def test_an_epoch_s_last_step_is_checkpointed_once(builtin_root):
    """checkpoint_every_n_steps dividing the epoch: its last step is saved by the epoch end only, once."""
    cfg = tiny_cfg(builtin_root, **{"train.epochs": 2})
    n = LocalRun(cfg).steps_per_epoch
    cfg.train.checkpoint_every_n_steps = n // 2
    run = LocalRun(cfg)
    run_training(cfg, run.context())
    saved = [(c["step"], c["epoch"], c["batches_done"]) for c in run.checkpoints]
    assert saved == [(n // 2, 0, n // 2), (n, 1, 0), (n + n // 2, 1, n // 2), (2 * n, 2, 0)], (n, saved)
