"""``raykd eval elevater``: user errors exit 2 before anything runs; serial and Ray end-to-end runs."""
import csv
import json

import pytest

from raykd.cli import main as raykd_main
from raykd.eval.elevater.submission import read_submission


def run(*argv):
    return raykd_main(["eval", "elevater", *map(str, argv)])


@pytest.mark.parametrize("args, message", [
    (["--datasets", "cifar-1O"], "unknown ELEVATER data set 'cifar-1O'"),
    (["--mode", "knn"], "--mode: unknown mode 'knn'"),
    (["--mode", "linear_probe", "--shots", "five"], "--shots: 'five' is not a positive number"),
    (["--seeds", "a"], "--seeds: expected integers"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--search-lrs", "0"], "learning rates must be positive"),
    (["--max-actors", "many"], "--max-actors: expected 'auto' or a number"),
])
def test_user_errors_exit_2(tiny_checkpoint, tmp_path, capsys, args, message):
    assert run("--checkpoint", tiny_checkpoint, "--data-root", tmp_path, *args) == 2
    assert message in capsys.readouterr().err


def test_missing_checkpoint_and_data_root(tiny_checkpoint, tmp_path, capsys):
    assert run("--checkpoint", tmp_path / "nope", "--data-root", tmp_path) == 2
    assert "no raykd checkpoint" in capsys.readouterr().err
    assert run("--checkpoint", tiny_checkpoint, "--data-root", tmp_path / "nope") == 2
    assert "--data-root: folder not found" in capsys.readouterr().err


def test_serial_linear_probe_and_finetune(tiny_checkpoint, builtin_data_root, tmp_path, capsys):
    out = tmp_path / "out"
    code = run("--checkpoint", tiny_checkpoint, "--data-root", builtin_data_root, "--datasets", "digits",
               "--mode", "linear_probe,finetune", "--shots", "2", "--seeds", "0", "1", "--no-tuning", "--epochs", 1,
               "--final-extra-epochs", 1, "--serial", "--out", out)
    text = capsys.readouterr().out
    assert code == 0, text
    assert "[4/4]" in text and "digits done" in text
    assert "digits   linear_probe_2shot" in text and "digits   finetune_2shot" in text
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["setting"], r["seed"]) for r in rows] == [("linear_probe_2shot", "0"), ("linear_probe_2shot", "1"),
                                                         ("finetune_2shot", "0"), ("finetune_2shot", "1")]
    assert all(r["n_train"] == "20" and r["searched"] == "False" and not r["error"] for r in rows)
    for setting in ("linear_probe_2shot", "finetune_2shot"):
        back = read_submission(out / "submission" / setting / "all_predictions.zip")
        assert back["digits"]["predictions"].shape == (2, 360, 10) and back["digits"]["n_shot"] == 2
        assert (out / "predictions" / setting / "digits.json").is_file()


@pytest.mark.ray
@pytest.mark.timeout(300)
def test_ray_end_to_end_two_actors(ray_session, tiny_checkpoint, builtin_cache, tmp_path, monkeypatch, capsys):
    from raykd.eval.elevater.builtin import write_builtin

    monkeypatch.setenv("RAYKD_CACHE", str(builtin_cache))
    data_root, out = tmp_path / "data", tmp_path / "out"
    write_builtin("shapes", data_root, train_size=256, cache_root=builtin_cache)  # digits: written on demand
    code = run("--checkpoint", tiny_checkpoint, "--data-root", data_root, "--datasets", "shapes,digits", "mnist",
               "--mode", "zeroshot", "--cpus-per-actor", 1, "--out", out)
    text = capsys.readouterr().out
    assert code == 1, text  # mnist is not there
    assert "wrote built-in digits in ELEVATER layout" in text
    assert "running 2 work items (2 dataset units) on 2 Ray actors (1 CPU, 0 GPU each)" in text
    assert "mnist zeroshot: FAILED FileNotFoundError" in text and "mnist_20211008/labels.txt" in text
    table = text[text.index("dataset  "):]
    lines = {line.split()[0]: line.split() for line in table.splitlines()[1:4]}
    assert lines["shapes"][:4] == ["shapes", "zeroshot", "toolkit", "accuracy"] and 0 <= float(lines["shapes"][4]) <= 1
    assert lines["digits"][6] == "360" and lines["mnist"][4] == "FAILED"
    doc = json.loads((out / "results.json").read_text())
    assert set(doc["metrics"]) == {"elevater_zeroshot/shapes/accuracy", "elevater_zeroshot/digits/accuracy"}
    assert list(doc["errors"]) == ["mnist zeroshot seed 0"]
    assert {r["dataset"]: r["params"].get("num_params", 0) > 0 for r in doc["rows"]} == {
        "mnist": False, "shapes": True, "digits": True}
    back = read_submission(out / "submission" / "zeroshot" / "all_predictions.zip")
    assert {k: v["predictions"].shape for k, v in back.items()} == {"shapes": (1, 800, 16), "digits": (1, 360, 10)}
    assert back["shapes"]["n_shot"] == 0 and back["shapes"]["rnd_seeds"] == [0]
    assert back["shapes"]["model_name"] == "checkpoint_000000"


def test_work_items_from_arguments():
    from raykd.eval.elevater import get_dataset
    from raykd.cli.elevater import build_parser
    from raykd.eval.elevater.run import make_items, make_options

    args = build_parser().parse_args(["--checkpoint", "c", "--data-root", "d", "--mode", "zeroshot,linear_probe",
                                      "finetune", "--shots", "5,full", "--no-tuning"])
    items = make_items(args, [get_dataset("dtd"), get_dataset("mnist")], make_options(args))
    dtd = [(i.setting, i.seed) for i in items if i.spec.name == "dtd"]
    assert dtd == [("zeroshot", 0), ("linear_probe_5shot", 0), ("linear_probe_5shot", 1), ("linear_probe_5shot", 2),
                   ("linear_probe_fullshot", 0), ("finetune_5shot", 0), ("finetune_5shot", 1), ("finetune_5shot", 2),
                   ("finetune_fullshot", 0)]
    assert len(items) == 18 and not items[0].options.tune and items[0].options.num_threads == 1
    args = build_parser().parse_args(["--checkpoint", "c", "--data-root", "d", "--mode", "linear_probe",
                                      "--shots", "full", "--seeds", "3,4"])
    assert [(i.shots, i.seed) for i in make_items(args, [get_dataset("dtd")], make_options(args))] == [(-1, 3), (-1, 4)]


def test_resume_keeps_finished_items_and_runs_the_rest(tiny_checkpoint, builtin_data_root, tmp_path, capsys):
    """A driver killed after digits' items finished: the rerun with --resume runs shapes only, and the
    results hold both with digits' first values."""
    out = tmp_path / "out"
    common = ["--checkpoint", tiny_checkpoint, "--data-root", builtin_data_root, "--mode", "zeroshot,linear_probe",
              "--shots", "2", "--seeds", "0", "--no-tuning", "--epochs", 1, "--final-extra-epochs", 1, "--serial",
              "--out", out]
    assert run(*common, "--datasets", "digits") == 0
    first = {(r["dataset"], r["setting"]): r["value"] for r in csv.DictReader(open(out / "results.csv"))}
    assert run(*common, "--datasets", "digits,shapes") == 2  # without --resume: never silently mixed
    assert "already holds results of an ELEVATER evaluation: pass --resume" in capsys.readouterr().err
    assert run(*common, "--datasets", "digits,shapes", "--resume") == 0
    text = capsys.readouterr().out
    assert "--resume: kept 2 finished item(s)" in text and "[2/2]" in text and "digits zeroshot" not in text
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [(r["dataset"], r["setting"]) for r in rows] == [
        ("digits", "zeroshot"), ("digits", "linear_probe_2shot"), ("shapes", "zeroshot"), ("shapes", "linear_probe_2shot")]
    assert {(r["dataset"], r["setting"]): r["value"] for r in rows if r["dataset"] == "digits"} == first
    back = read_submission(out / "submission" / "linear_probe_2shot" / "all_predictions.zip")
    assert set(back) == {"digits", "shapes"}


@pytest.mark.parametrize("protocol", ["toolkit", "clean"])
def test_each_protocol_is_named_in_the_table_csv_and_json(tiny_checkpoint, builtin_data_root, tmp_path, capsys,
                                                          protocol):
    out = tmp_path / "out"
    code = run("--checkpoint", tiny_checkpoint, "--data-root", builtin_data_root, "--datasets", "digits",
               "--mode", "zeroshot,linear_probe", "--shots", "1", "--seeds", "0", "--no-tuning", "--epochs", 1,
               "--final-extra-epochs", 1, "--serial", "--out", out, *(["--protocol", protocol] * (protocol == "clean")))
    text = capsys.readouterr().out
    assert code == 0, text
    table = text[text.index("dataset  "):].splitlines()
    assert table[0].split()[:3] == ["dataset", "setting", "protocol"]
    assert [line.split()[:3] for line in table[1:3]] == [["digits", "zeroshot", protocol],
                                                         ["digits", "linear_probe_1shot", protocol]]
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["protocol"] for r in rows] == [protocol, protocol]
    doc = json.loads((out / "results.json").read_text())
    assert doc["protocol"] == protocol and {r["protocol"] for r in doc["rows"] + doc["summary"]} == {protocol}
    probe = doc["rows"][1]
    assert probe["hparams"]["text_head"] == (protocol == "toolkit")
    assert probe["n_train"] == 10  # 1 per class either way: toolkit draws 2 and holds one out


def test_resume_without_out_is_a_clear_error(tiny_checkpoint, builtin_data_root, capsys):
    assert run("--checkpoint", tiny_checkpoint, "--data-root", builtin_data_root, "--datasets", "digits",
               "--serial", "--resume") == 2
    assert "--resume needs --out" in capsys.readouterr().err
