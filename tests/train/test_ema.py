"""EMA and WiSE-FT against hand-computed weight averages; the loop evaluates and saves the EMA."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from raykd.config import load_config
from raykd.train.ema import ModelEMA, evaluation_model, wise_ft
from raykd.train.loop import run_training, setup
from tests.conftest import REPO, tiny_overrides
from tests.train.local import LocalRun


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_ema_matches_the_hand_computed_average():
    net, decay = small_net(), 0.9
    ema = ModelEMA(net, decay)
    w0 = net[0].weight.detach().clone()
    steps = []
    for value in (1.0, -2.0):
        with torch.no_grad():
            net[0].weight.fill_(value)
        net(torch.randn(5, 3))  # moves the BatchNorm statistics
        steps.append(net[1].running_mean.clone())
        ema.update(net)
    expected = 0.9 * (0.9 * w0 + 0.1 * 1.0) + 0.1 * -2.0
    assert torch.allclose(ema.module[0].weight, expected, atol=1e-6)
    mean = 0.9 * (0.9 * torch.zeros(4) + 0.1 * steps[0]) + 0.1 * steps[1]
    assert torch.allclose(ema.module[1].running_mean, mean, atol=1e-6)  # buffers are averaged too
    assert ema.module[1].num_batches_tracked == 2  # integer buffers are copied
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())


def test_ema_state_round_trip_and_bad_decay():
    net = small_net()
    ema = ModelEMA(net, 0.5)
    other = ModelEMA(small_net(), 0.5)
    with torch.no_grad():
        net[2].bias.fill_(3.0)
    ema.update(net)
    other.load_state_dict(ema.state_dict())
    assert torch.equal(other.module[2].bias, ema.module[2].bias)
    with pytest.raises(ValueError, match=r"optim.ema_decay must be in \[0, 1\)"):
        ModelEMA(net, 1.0)


def test_wise_ft_matches_the_hand_computed_interpolation():
    initial = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(3)}
    trained = {"w": torch.tensor([4.0, -2.0]), "n": torch.tensor(7)}
    mixed = wise_ft(initial, trained, 0.25)
    assert torch.allclose(mixed["w"], torch.tensor([0.75 * 0.0 + 0.25 * 4.0, 0.75 * 2.0 + 0.25 * -2.0]))
    assert mixed["n"] == 7  # non-float entries come from the trained model
    assert torch.equal(wise_ft(initial, trained, 0.0)["w"], initial["w"])
    with pytest.raises(ValueError, match="differ in keys"):
        wise_ft({"w": initial["w"]}, trained, 0.5)
    with pytest.raises(ValueError, match=r"wise_ft_alpha must be in \[0, 1\]"):
        wise_ft(initial, trained, 1.5)


def test_evaluation_model_picks_ema_then_interpolates():
    net = small_net()
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    ema = ModelEMA(net, 0.0)
    with torch.no_grad():
        net[2].weight.add_(1.0)
    ema.update(net)  # decay 0: the EMA equals the trained weights
    assert evaluation_model(net) is net and evaluation_model(net, ema) is ema.module
    half = evaluation_model(net, ema, initial, 0.5)
    assert half is not net and half is not ema.module
    assert torch.allclose(half[2].weight, initial["2.weight"] + 0.5)
    assert torch.allclose(net[2].weight, initial["2.weight"] + 1.0)  # the training model is untouched


def test_loop_evaluates_and_checkpoints_the_ema(builtin_root, tmp_path):
    sets = {"data.augment": "none", "data.shuffle_buffer": 0, "optim.ema_decay": 0.9, "optim.wise_ft_alpha": 0.5,
            "train.log_every_n_steps": 100}
    cfg = load_config(REPO / "recipes/quickstart.yaml", tiny_overrides(builtin_root, **sets))
    run = LocalRun(cfg)
    seen = []
    run_training(cfg, run.context(evaluate=lambda model, epoch: seen.append(copy.deepcopy(model.state_dict())) or {}))
    state = run.checkpoints[-1]  # the epoch end: after the evaluation
    assert state["ema"] is not None and state["ema"].keys() == state["model"].keys()
    key = "image.backbone.conv1.weight"
    assert not torch.equal(state["ema"][key], state["model"][key])
    check_load_model_weights_choice(state, tmp_path)
    initial = setup(cfg, run.context()).initial_state  # the same seed builds the same initial weights
    expected = wise_ft(initial, state["ema"], 0.5)  # evaluation saw WiSE-FT(initial, EMA)
    for name, value in seen[0].items():
        torch.testing.assert_close(value, expected[name], atol=1e-6, rtol=1e-6, msg=name)


def check_load_model_weights_choice(state: dict, tmp_path) -> None:
    """`raykd eval --weights`: auto and ema load the EMA, trained the optimised weights."""
    import raykd.models.checkpoint as ckpt

    torch.save(state, tmp_path / ckpt.STATE_FILE)
    key = "image.backbone.conv1.weight"
    for weights, expected in [("auto", state["ema"]), ("ema", state["ema"]), ("trained", state["model"])]:
        model, _ = ckpt.load_model(tmp_path, weights)
        assert torch.equal(model.state_dict()[key], expected[key]), weights
    with pytest.raises(ValueError, match="--weights: unknown choice 'best'"):
        ckpt.load_model(tmp_path, "best")
    torch.save({**state, "ema": None}, tmp_path / ckpt.STATE_FILE)
    assert torch.equal(ckpt.load_model(tmp_path, "auto")[0].state_dict()[key], state["model"][key])
    with pytest.raises(ValueError, match=f"--weights ema: checkpoint {tmp_path} has no EMA weights"):
        ckpt.load_model(tmp_path, "ema")


def _ema_on_cpu_follows_the_reference_lerp(device: str) -> None:
    net, decay = small_net().to(device), 0.8
    ema = ModelEMA(net, decay, on_cpu=True)
    reference = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    for value in (0.5, -1.5, 2.0):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(value)
        net(torch.randn(5, 3, device=device))  # moves the BatchNorm statistics
        ema.update(net)
        for k, v in net.state_dict().items():  # timm's ModelEmaV2: ema.lerp_(model, 1 - decay)
            v = v.detach().cpu()
            reference[k] = torch.lerp(reference[k], v, 1 - decay) if v.is_floating_point() else v.clone()
    state = ema.state_dict()
    assert {t.device.type for t in state.values()} == {"cpu"}  # the copy never left the CPU
    for k, expected in reference.items():
        assert torch.allclose(state[k], expected, atol=1e-6), k
    evaluated = evaluation_model(net, ema)  # what evaluation sees: on the model's device
    assert next(evaluated.parameters()).device == next(net.parameters()).device
    assert torch.equal(next(evaluated.parameters()).cpu(), next(ema.module.parameters()))


def test_ema_on_cpu_stays_on_cpu_and_follows_the_reference_lerp():
    _ema_on_cpu_follows_the_reference_lerp("cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_ema_on_cpu_of_a_gpu_model():
    _ema_on_cpu_follows_the_reference_lerp("cuda")
