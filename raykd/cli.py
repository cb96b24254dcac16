"""`raykd train | tune | check | data`: parse arguments, load and validate the recipe, call the library."""
from __future__ import annotations

import argparse
import sys


def _add_recipe_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML (may extend others through `defaults:`)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set optim.lr=1e-4 (repeatable)")


def cmd_train(args) -> int:
    from raykd.check import validate
    from raykd.config import load_config
    from raykd.train.trainer import train

    cfg = load_config(args.recipe, args.overrides)
    validate(cfg)
    train(cfg, run_dir=args.run_dir, resume_from=args.resume_from)
    return 0


def cmd_check(args) -> int:
    from raykd.check import check
    from raykd.config import load_config
    from raykd.tune import check_sweep, is_sweep_file

    if is_sweep_file(args.recipe):
        print(check_sweep(args.recipe, args.overrides))
        return 0
    cfg = load_config(args.recipe, args.overrides)
    report = check(cfg)
    print(f"{args.recipe}: OK (loss {cfg.loss.name}, teacher {cfg.loss.teacher})")
    for tower, counts in report.items():
        locked = " (locked)" if getattr(cfg.model, tower).lock else ""
        print(f"  {tower}: {cfg.model.__dict__[tower].builder}/{cfg.model.__dict__[tower].name or 'inline'}"
              f"{locked}: {counts['trainable']:,} trainable / {counts['total']:,} parameters")
    return 0


def cmd_tune(args) -> int:
    from raykd.tune import run_sweep

    outcome = run_sweep(args.sweep, args.overrides, resume=args.resume, name=args.name,
                        storage_path=args.storage_path)
    return 0 if outcome.best else 1


def cmd_data_make(args) -> int:
    from raykd.data.builtin import ensure_builtin

    path = ensure_builtin(args.name, args.out, args.train_size)
    print(f"{args.name}: {path}")
    return 0


def cmd_data_convert(args) -> int:
    from raykd.data.convert import convert

    totals = convert(args.input, args.images_dir, args.out, shard_size=args.shard_size, sep=args.sep,
                     image_key=args.image_key, caption_key=args.caption_key)
    print(f"{args.out}: {totals['samples']} samples in {totals['shards']} shards, {totals['skipped']} rows skipped "
          f"(listed in skipped.tsv); {totals['written_shards']} shards written, {totals['resumed_shards']} kept")
    return 0


def _eval_main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["elevater"]:
            from raykd.eval.elevater.cli import main as elevater_main

            return elevater_main(argv[1:])
        from raykd.eval.cli import main as eval_main

        return eval_main(argv)
    except (ValueError, FileNotFoundError) as err:
        print(f"raykd eval: error: {err}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raykd", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a dual encoder under Ray Train")
    _add_recipe_args(p)
    p.add_argument("--run-dir", default=None, help="run directory (default runs/<run.name>-<time>)")
    p.add_argument("--resume-from", default="", help="checkpoint directory to resume from")
    p.set_defaults(fn=cmd_train)
    sub.add_parser("eval", help="evaluate a checkpoint: raykd eval --help, raykd eval elevater --help")
    p = sub.add_parser("tune", help="run (or --resume) a sweep over a recipe with Ray Tune")
    p.add_argument("sweep", help="sweep YAML: a base recipe, a search space, a metric (see raykd/tune/spec.py)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the base recipe for every trial (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the sweep at <storage_path>/<name> if it exists")
    p.add_argument("--name", default="", help="experiment name (default: the sweep's `name`, else its file name)")
    p.add_argument("--storage-path", default="", help="where the experiment goes (default: the sweep's storage_path)")
    p.set_defaults(fn=cmd_tune)
    p = sub.add_parser("check", help="validate a recipe (or a sweep) and build its model with random weights")
    _add_recipe_args(p)
    p.set_defaults(fn=cmd_check)
    data = sub.add_parser("data", help="data sets").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("make", help="generate a built-in data set")
    p.add_argument("name", help="shapes or digits")
    p.add_argument("--out", default=None, help="root folder (default $RAYKD_CACHE or ~/.cache/raykd)")
    p.add_argument("--train-size", type=int, default=None)
    p.set_defaults(fn=cmd_data_make)
    p = data.add_parser("convert", help="a CSV/TSV of image paths + captions -> webdataset shards (resumable)")
    p.add_argument("--input", required=True, help="the table, with a header row")
    p.add_argument("--images-dir", default="", help="folder of relative image paths (default: the table's folder)")
    p.add_argument("--out", required=True, help="shard folder; rerunning into it resumes")
    p.add_argument("--shard-size", type=int, default=10000, help="rows per shard")
    p.add_argument("--sep", default=None, help=r"column separator (default: '\t' for .tsv, else ',')")
    p.add_argument("--image-key", default="filepath", help="column of image paths")
    p.add_argument("--caption-key", default="title", help="column of captions")
    p.set_defaults(fn=cmd_data_convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["eval"]:  # `raykd eval ...` and `raykd eval elevater ...` own their arguments
        return _eval_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"raykd {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
