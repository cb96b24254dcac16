"""`raykd eval ...` (tasks on a checkpoint, a recipe's model or a model spec: `raykd eval --help`) and
`raykd eval elevater ...` (the ELEVATER suite:
`raykd eval elevater --help`). Both parse their own arguments and call the library: :mod:`raykd.eval.run` (what
runs and what it writes) and :mod:`raykd.eval.elevater.run`.

    raykd eval --checkpoint PATH | --run-dir DIR | --recipe RECIPE [--set K=V ...] | --model SPEC
               [--tasks all|image|text|zeroshot,linear,...]
               [--data-root DIR] [--datasets a,b] [--out DIR] [--clip-benchmark [DIR]] [--model-name NAME]
               [--option TASK.KEY=VALUE ...] [--batch-size N] [--device auto|cpu|cuda[:i]] [--threads N] [--ray]
"""
from __future__ import annotations

import argparse
import sys

from raykd.cli import elevater
from raykd.cli._common import add_model_source_args


def add_parser(sub) -> None:
    sub.add_parser("eval", help="evaluate a checkpoint, recipe or model: raykd eval --help, raykd eval elevater --help")


def build_parser() -> argparse.ArgumentParser:
    from raykd.models.checkpoint import WEIGHTS  # torch and Ray load on use, not for `raykd --help`

    p = argparse.ArgumentParser(prog="raykd eval", description="Evaluate a raykd checkpoint, a recipe's model "
                                "(pretrained or random weights, no training) or a model spec.",
                                epilog="Text-only tasks run when their data is under --data-root.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint directory, its state.pt, or a run directory (last checkpoint)")
    src.add_argument("--run-dir", help="run directory: its last checkpoint; results also go to its results.jsonl")
    add_model_source_args(p, src)
    p.add_argument("--tasks", default="all", help="comma-separated task names, or all | image | text (default all)")
    p.add_argument("--data-root", default="", help="evaluation data root (default: the built-in cache)")
    p.add_argument("--datasets", default="", help="comma-separated data set names (default: all found)")
    p.add_argument("--out", default="", help="output folder (default <run-dir>/eval/step-<step>, <checkpoint>/eval "
                                             "or runs/eval-<model>-<time>)")
    p.add_argument("--clip-benchmark", nargs="?", const="", default=None, metavar="DIR",
                   help="also write CLIP_benchmark JSON per (data set, task) to DIR (default <out>/clip_benchmark)")
    p.add_argument("--model-name", default="",
                   help="model name in results files (default <run.name>-step<step>, or the recipe / spec)")
    p.add_argument("--option", action="append", default=[], metavar="TASK.KEY=VALUE",
                   help="task keyword argument, YAML value, e.g. linear_probe.solver=torch (repeatable)")
    p.add_argument("--weights", choices=WEIGHTS, default="auto",
                   help="auto: the EMA weights when the checkpoint has them (what evaluation during training "
                        "saw), else the trained ones | ema | trained")
    p.add_argument("--batch-size", type=int, default=256, help="feature-extraction batch size")
    p.add_argument("--device", default="auto", help="auto (cuda when available) | cpu | cuda | cuda:1")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch and BLAS (scikit-learn); 0 keeps the libraries' defaults")
    p.add_argument("--ray", action="store_true",
                   help="run on a pool of Ray actors, as many as the cluster holds, each loading the model once and "
                        "taking the next data set (a GPU each when the cluster has them)")
    return p


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["elevater"]:
            return elevater.main(argv[1:])
        args = build_parser().parse_args(argv)
        from raykd.eval.run import run_eval  # torch and Ray load on use, not for `raykd --help`

        return run_eval(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"raykd eval: error: {err}", file=sys.stderr)
        return 2
