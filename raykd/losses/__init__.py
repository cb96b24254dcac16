"""The loss zoo: one module per loss family, registered on import.

``get_loss(name, **hparams)`` builds a loss, ``list_losses()`` names them, ``loss_class(name)``
exposes a class's capability flags and ``loss_table()`` summarises all of them.
"""

from raykd.losses import (  # noqa: F401  (importing a module registers its losses)
    barlow_twins,
    compress,
    cross_entropy,
    dino,
    infonce,
    protoclip,
    protocpc,
    rkd,
    seed,
    siglip,
    simreg,
    unicl,
    vicreg,
)
from raykd.losses.base import DistillLoss
from raykd.losses.registry import (
    get_loss,
    list_losses,
    loss_class,
    loss_hparams,
    loss_table,
    register_loss,
)

__all__ = [
    "DistillLoss",
    "get_loss",
    "list_losses",
    "loss_class",
    "loss_hparams",
    "loss_table",
    "register_loss",
]
