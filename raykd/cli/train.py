"""`raykd train RECIPE [--set k=v ...] [--run-dir DIR] [--resume-from CHECKPOINT]`."""
from __future__ import annotations

from raykd.cli._common import add_recipe_args


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a dual encoder under Ray Train")
    add_recipe_args(p)
    p.add_argument("--run-dir", default=None, help="run directory (default runs/<run.name>-<time>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the latest run of this run.name (--run-dir, or the newest runs/<name>-*) from its "
                        "last checkpoint, or start one (run.resume: auto)")
    p.add_argument("--resume-from", default="", help="checkpoint directory to resume from")
    p.set_defaults(fn=run)


def run(args) -> int:
    from raykd.config import load_config
    from raykd.train.check import validate  # torch and Ray load on use, not for `raykd --help`
    from raykd.train.trainer import train

    cfg = load_config(args.recipe, args.overrides)
    if args.resume:
        cfg.run.resume = "auto"
    validate(cfg)
    train(cfg, run_dir=args.run_dir, resume_from=args.resume_from)
    return 0
