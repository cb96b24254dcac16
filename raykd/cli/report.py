"""`raykd report RUN_OR_SWEEP_OR_EVAL_DIR... --out DIR`: a static HTML page with PNG plots."""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="an HTML page of training curves, sweep trials and evaluation results")
    p.add_argument("dirs", nargs="+", metavar="DIR",
                   help="run directories (raykd train), sweep experiments (raykd tune) and evaluation outputs "
                        "(raykd eval / raykd eval elevater --out)")
    p.add_argument("--out", required=True, help="folder for index.html and img/")
    p.add_argument("--title", default="raykd report")
    p.add_argument("--metric", default="", help="metric to rank several runs by (default: a top-1 accuracy)")
    p.add_argument("--mode", choices=("max", "min"), default="max")
    p.set_defaults(fn=run)


def run(args) -> int:
    from raykd.report.page import build_report  # matplotlib loads on use, not for `raykd --help`

    page = build_report(args.dirs, args.out, title=args.title, metric=args.metric, mode=args.mode)
    print(f"wrote {page}")
    return 0
