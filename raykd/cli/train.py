"""`raykd train RECIPE [--set k=v ...] [--run-dir DIR] [--resume | --resume-from CKPT | --init-from CKPT]`."""
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
    p.add_argument("--init-from", default="", metavar="CHECKPOINT",
                   help="start a new run from this checkpoint's (or run's) weights: fresh optimiser, schedule and "
                        "step count; the loss state too when the loss is the same (train.init_from)")
    p.set_defaults(fn=run)


def run(args) -> int:
    from raykd.config import load_config  # torch and Ray load on use, not for `raykd --help`
    from raykd.models.checkpoint import find_checkpoint  # likewise
    from raykd.train.check import validate  # torch and Ray load on use, not for `raykd --help`
    from raykd.train.trainer import train

    cfg = load_config(args.recipe, args.overrides)
    if args.resume:
        cfg.run.resume = "auto"
    if args.init_from:
        if args.resume or args.resume_from:
            raise ValueError("--init-from starts a new run from a checkpoint's weights; --resume / --resume-from "
                             "continue a run: choose one")
        cfg.train.init_from = args.init_from
    if cfg.train.init_from:  # absolute: the workers may run in another directory
        cfg.train.init_from = str(find_checkpoint(cfg.train.init_from).resolve())
    validate(cfg)
    train(cfg, run_dir=args.run_dir, resume_from=args.resume_from)
    return 0
