"""`raykd check RECIPE_OR_SWEEP [--set k=v ...]`: validate, build the model with random weights, count."""
from __future__ import annotations

from raykd.cli._common import add_recipe_args


def add_parser(sub) -> None:
    p = sub.add_parser("check", help="validate a recipe (or a sweep) and build its model with random weights")
    add_recipe_args(p)
    p.set_defaults(fn=run)


def run(args) -> int:
    from raykd.config import load_config
    from raykd.train.check import check  # torch and Ray load on use, not for `raykd --help`
    from raykd.tune import check_sweep, is_sweep_file

    if is_sweep_file(args.recipe):
        print(check_sweep(args.recipe, args.overrides))
        return 0
    cfg = load_config(args.recipe, args.overrides)
    report = check(cfg)
    print(f"{args.recipe}: OK (loss {cfg.loss.name}, teacher {cfg.loss.teacher})")
    for modality, counts in report.items():
        tower = getattr(cfg.model, modality)
        locked = " (locked)" if tower.lock else ""
        print(f"  {modality}: {tower.builder}/{tower.name or 'inline'}{locked}: "
              f"{counts['trainable']:,} trainable / {counts['total']:,} parameters")
    return 0
