"""`raykd tune SWEEP [--set k=v ...] [--resume] [--name NAME] [--storage-path PATH]`."""
from __future__ import annotations

from raykd.cli._common import add_overrides


def add_parser(sub) -> None:
    p = sub.add_parser("tune", help="run (or --resume) a sweep over a recipe with Ray Tune")
    p.add_argument("sweep", help="sweep YAML (a base recipe, a search space, a metric: see raykd/tune/spec.py) or a packaged name (sweeps/losses)")
    add_overrides(p, "override a key of the base recipe for every trial (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the sweep at <storage_path>/<name> if it exists")
    p.add_argument("--name", default="", help="experiment name (default: the sweep's `name`, else its file name)")
    p.add_argument("--storage-path", default="", help="where the experiment goes (default: the sweep's storage_path)")
    p.set_defaults(fn=run)


def run(args) -> int:
    from raykd.tune import run_sweep  # torch and Ray load on use, not for `raykd --help`

    outcome = run_sweep(args.sweep, args.overrides, resume=args.resume, name=args.name,
                        storage_path=args.storage_path)
    return 0 if outcome.best else 1
