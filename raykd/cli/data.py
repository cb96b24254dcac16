"""`raykd data make NAME` (a built-in data set), `raykd data convert` (a table -> webdataset shards) and
`raykd data cache-features RECIPE` (a locked tower's features, computed once)."""
from __future__ import annotations

from raykd.cli._common import add_recipe_args


def add_parser(sub) -> None:
    data = sub.add_parser("data", help="data sets").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("make", help="generate a built-in data set")
    p.add_argument("name", help="shapes or digits")
    p.add_argument("--out", default=None, help="root folder (default $RAYKD_CACHE or ~/.cache/raykd)")
    p.add_argument("--train-size", type=int, default=None)
    p.set_defaults(fn=run_make)
    p = data.add_parser("convert", help="a CSV/TSV of image paths + captions -> webdataset shards (resumable)")
    p.add_argument("--input", required=True, help="the table, with a header row")
    p.add_argument("--images-dir", default="", help="folder of relative image paths (default: the table's folder)")
    p.add_argument("--out", required=True, help="shard folder; rerunning into it resumes")
    p.add_argument("--shard-size", type=int, default=10000, help="rows per shard")
    p.add_argument("--sep", default=None, help=r"column separator (default: '\t' for .tsv, else ',')")
    p.add_argument("--image-key", default="filepath", help="column of image paths")
    p.add_argument("--caption-key", default="title", help="column of captions")
    p.set_defaults(fn=run_convert)
    p = data.add_parser("cache-features", help="compute a locked tower's features over the training data once "
                                               "(Ray Data batch inference); prints the model.<tower>.feature_cache to set")
    add_recipe_args(p)
    p.add_argument("--tower", action="append", choices=("image", "text"), default=[],
                   help="tower to cache (repeatable; default: the recipe's cache_features towers, else its locked ones)")
    p.add_argument("--out", default=None, help="root folder or URI of the caches (default $RAYKD_CACHE/features)")
    p.set_defaults(fn=run_cache_features)


def run_make(args) -> int:
    from raykd.data.builtin import ensure_builtin  # torch and Ray load on use, not for `raykd --help`

    path = ensure_builtin(args.name, args.out, args.train_size)
    print(f"{args.name}: {path}")
    return 0


def run_convert(args) -> int:
    from raykd.data.convert import convert  # torch and Ray load on use, not for `raykd --help`

    totals = convert(args.input, args.images_dir, args.out, shard_size=args.shard_size, sep=args.sep,
                     image_key=args.image_key, caption_key=args.caption_key)
    print(f"{args.out}: {totals['samples']} samples in {totals['shards']} shards, {totals['skipped']} rows skipped "
          f"(listed in skipped.tsv); {totals['written_shards']} shards written, {totals['resumed_shards']} kept")
    return 0


def run_cache_features(args) -> int:
    from raykd.config import load_config  # torch and Ray load on use, not for `raykd --help`
    from raykd.train.feature_cache_build import prepare_feature_caches
    from raykd.train.trainer import init_ray, train_plan

    cfg = load_config(args.recipe, args.overrides)
    towers = args.tower or [n for n in ("image", "text") if getattr(cfg.model, n).cache_features] or \
        [n for n in ("image", "text") if getattr(cfg.model, n).lock]
    if not towers:
        raise ValueError(f"{args.recipe}: no locked tower to cache (set model.<tower>.lock: true, or pass --tower)")
    for name in towers:
        getattr(cfg.model, name).cache_features = True
    cfg.check()  # a tower that is not locked, or an augmented image tower, fails here with the reason
    plan, _ = train_plan(cfg)
    init_ray(cfg)
    for name, path in prepare_feature_caches(cfg, plan, root=args.out).items():
        print(f"model.{name}.feature_cache={path}")
    return 0
