"""``raykd eval elevater``: evaluate a checkpoint on ELEVATER data sets in parallel, on Ray actors.

    raykd eval elevater --checkpoint RUN_OR_CHECKPOINT | --recipe RECIPE [--set K=V] | --model SPEC
        [--data-root DIR] [--datasets cifar-10,dtd ...]
        [--mode zeroshot|linear_probe|finetune[,...]] [--shots 5,20,50,full] [--seeds 0,1,2] [--no-tuning]
        [--actor-per dataset|item] [--max-actors auto|N] [--cpus-per-actor 1] [--gpus-per-actor 0.25] [--retries 2]
        [--serial] [--out DIR] [--protocol toolkit|clean] [--text-head | --no-text-head]
        [--knowledge wiki|wordnet|wordnet_path] [--gpt3-knowledge N]

Parses the arguments and calls :func:`raykd.eval.elevater.run.run_elevater` (what runs, and what it writes,
is described there).
"""
from __future__ import annotations

import argparse
import sys

from raykd.cli._common import add_model_source_args


def build_parser() -> argparse.ArgumentParser:
    from raykd.models.checkpoint import WEIGHTS  # torch and Ray load on use, not for `raykd --help`

    p = argparse.ArgumentParser(prog="raykd eval elevater", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="raykd checkpoint directory, state.pt or run directory")
    add_model_source_args(p, src)
    p.add_argument("--weights", choices=WEIGHTS, default="auto",
                   help="auto: the EMA weights when the checkpoint has them, else the trained ones | ema | trained")
    p.add_argument("--data-root", default=None,
                   help="folder holding classification/<dataset>_<date>/ ... (default, for built-in data sets only: "
                        "the built-in cache)")
    p.add_argument("--datasets", nargs="+", default=None, metavar="NAME",
                   help="ELEVATER ids or aliases, comma or space separated (default: the 20 ELEVATER sets); "
                        "shapes and digits are the built-ins")
    p.add_argument("--mode", nargs="+", default=["zeroshot"], help="zeroshot, linear_probe, finetune (several: comma)")
    p.add_argument("--shots", nargs="+", default=["5"], help="images per class: 5, 20, 50, full (default 5)")
    p.add_argument("--seeds", nargs="+", default=None, help="few-shot sampling seeds (default 0,1,2; full-shot: 0)")
    p.add_argument("--protocol", choices=("toolkit", "clean"), default="toolkit",
                   help="toolkit (default): as Elevater_Toolkit_IC (constant LR, best test epoch reported, first-20%% "
                        "validation split, 1 shot as 2, bicubic, text-initialised head); clean: warm-up + cosine, "
                        "last epoch, random split")
    p.add_argument("--text-head", action=argparse.BooleanOptionalAction, default=None,
                   help="start the trained head at the text encoder's class embeddings (default: on under "
                        "--protocol toolkit, off under clean)")
    p.add_argument("--knowledge", choices=("wiki", "wordnet", "wordnet_path"), default=None,
                   help="knowledge-augmented prompts from <data-root>/knowledge/external/<dataset>_knowledge.tsv "
                        "(the toolkit's resources/knowledge): Wiktionary or WordNet definitions, or WordNet paths")
    p.add_argument("--gpt3-knowledge", type=int, default=0, metavar="N",
                   help="also append the first N GPT-3 texts of <data-root>/knowledge/gpt3/GPT3_<dataset>.tsv")
    p.add_argument("--no-tuning", action="store_true", help="skip the lr x weight-decay search; use --lr / --wd")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate with --no-tuning (default 1e-3)")
    p.add_argument("--wd", type=float, default=0.316, help="weight decay with --no-tuning (default 0.316)")
    p.add_argument("--search-lrs", default=None, help="learning-rate grid of the search (default 1e-6,...,1e-1)")
    p.add_argument("--epochs", type=int, default=10, help="epochs of each search fit (default 10)")
    p.add_argument("--final-extra-epochs", type=int, default=40,
                   help="extra epochs of the final fit (default 40: it trains 10 + 40)")
    p.add_argument("--batch-size", type=int, default=64, help="training batch size (default 64)")
    p.add_argument("--feature-batch-size", type=int, default=256, help="encoding batch size (default 256)")
    p.add_argument("--actor-per", choices=("dataset", "item"), default="dataset",
                   help="what an actor runs at a time: a data set's items (sharing its features; default) or "
                        "one data set x mode x shots x seed")
    p.add_argument("--max-actors", default="auto",
                   help="actors kept busy, each taking the next data set (or item) when done: 'auto' = as many "
                        "as the cluster holds at once; 0 = a fresh actor per data set (or item)")
    p.add_argument("--cpus-per-actor", type=float, default=1.0, help="Ray CPUs per actor (default 1)")
    p.add_argument("--retries", type=int, default=2,
                   help="times an item runs again on another actor when its actor is lost (node gone, process "
                        "killed) before it counts as failed (default 2); an item that raises is not retried")
    p.add_argument("--gpus-per-actor", default="auto",
                   help="Ray GPUs per actor: 'auto' = 1 when the cluster has GPUs, else 0; fractions (e.g. 0.25) put "
                        "several actors on a card, each capped at that fraction of its memory")
    p.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: current or a local one)")
    p.add_argument("--serial", action="store_true", help="run every item in this process, without Ray")
    p.add_argument("--out", default=None, help="output folder (default runs/elevater-<time>)")
    p.add_argument("--resume", action="store_true",
                   help="keep the items --out already finished (after a killed driver) and run only the rest")
    p.add_argument("--model-name", default=None,
                   help="model name in the submission (default: checkpoint folder, recipe or spec)")
    p.add_argument("--no-predictions", action="store_true", help="do not write prediction files / submission zips")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from raykd.eval.elevater.run import run_elevater  # torch and Ray load on use, not for `raykd --help`

    return run_elevater(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
