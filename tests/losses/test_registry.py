"""The loss registry: lookup, errors with close matches, hparam validation, loss table."""

import pytest
from torch import nn

from raykd.losses import get_loss, list_losses, loss_class, loss_table, register_loss
from raykd.losses import registry

EXPECTED = {
    "InfoNCE", "ProtoCLIP", "SimReg", "SimReg-L1", "SimReg-SmoothL1", "VICReg", "BarlowTwins", "RKD",
    "CompRess-1q", "CompRess-2q", "SEED", "DINO", "ProtoCPC", "UniCL", "CrossEntropy", "SigLIP",
}


def test_all_losses_registered_and_sorted():
    assert set(list_losses()) == EXPECTED
    assert list_losses() == sorted(list_losses())


def test_unknown_name_lists_close_matches_and_all_names():
    with pytest.raises(ValueError) as err:
        get_loss("InfoNC")
    message = str(err.value)
    assert "Did you mean 'InfoNCE'" in message
    assert all(name in message for name in EXPECTED)


def test_unknown_hparam_names_it_and_the_loss():
    with pytest.raises(ValueError, match=r"'temprature'.*'SEED'.*teacher_temperature"):
        get_loss("SEED", temprature=0.1)


@pytest.mark.parametrize(
    "name,hparams",
    [("SEED", {"teacher_temperature": "1e-4"}), ("InfoNCE", {"local_loss": 1}), ("DINO", {"n_prototypes": 8.5})],
)
def test_ill_typed_hparam_names_loss_hparam_and_value(name, hparams):
    key, value = next(iter(hparams.items()))
    with pytest.raises(TypeError, match=rf"'{name}'.*'{key}'.*{value!r}"):
        get_loss(name, **hparams)


def test_ints_are_accepted_for_floats_and_none_defaults_take_anything():
    assert get_loss("VICReg", invariance_weight=10).invariance_weight == 10
    assert get_loss("DINO", n_prototypes=8, dim=4).prototypes.weight.shape == (8, 4)


def test_hparams_reach_the_instance():
    assert get_loss("BarlowTwins", lambd=0.1).lambd == 0.1


def test_flags():
    assert loss_class("InfoNCE").needs_logit_scale and loss_class("InfoNCE").needs_gather
    assert loss_class("UniCL").needs_labels and loss_class("CrossEntropy").needs_labels
    for name in ("CompRess-1q", "SEED", "DINO", "ProtoCPC"):  # ITRA's UNI_DIRECTIONAL list
        assert loss_class(name).uni_directional
    assert not loss_class("CompRess-2q").uni_directional
    assert loss_class("DINO").needs_prototypes and loss_class("ProtoCPC").needs_prototypes
    assert not loss_class("SimReg").needs_gather and not loss_class("RKD").uni_directional


def test_updates_prototypes_flag_follows_the_method():
    """The trainer reads `updates_prototypes` (episode features, episode size check), never hasattr."""
    updating = {name for name in list_losses() if loss_class(name).updates_prototypes}
    assert updating == {name for name in list_losses() if hasattr(loss_class(name), "update_prototypes")}
    assert updating == {"ProtoCLIP"} and loss_class("ProtoCLIP").needs_prototypes
    assert not loss_class("DINO").updates_prototypes  # a prototype layer, trained by the optimiser


def test_loss_table_rows():
    rows = {row["name"]: row for row in loss_table()}
    assert set(rows) == EXPECTED
    assert rows["SEED"]["hparams"]["teacher_temperature"] == 1e-4
    assert rows["DINO"]["uni_directional"] and rows["DINO"]["needs_prototypes"]
    assert rows["VICReg"]["needs_gather"] and rows["VICReg"]["paper"]
    assert rows["ProtoCLIP"]["updates_prototypes"] and not rows["DINO"]["updates_prototypes"]


def test_register_and_duplicate_name():
    try:

        @register_loss("_Tmp")
        class Tmp(nn.Module):
            pass

        assert loss_class("_Tmp") is Tmp and Tmp.name == "_Tmp"
        with pytest.raises(ValueError, match="already registered"):
            register_loss("_Tmp")(type("Other", (nn.Module,), {}))
    finally:
        registry._REGISTRY.pop("_Tmp", None)
