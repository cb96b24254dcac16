"""`raykd eval`: results files, progress and table, skipped and failed tasks, user errors, and trained vs random."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from raykd.cli import main
from raykd.config import load_config
from raykd.config.loading import config_to_dict
from raykd.eval.planning import resolve_tasks
from raykd.eval.results import format_table
from raykd.models.checkpoint import STATE_FILE
from raykd.train import checkpoint as ckpt
from raykd.train.loop import LoopContext, run_training, setup
from tests.conftest import REPO, tiny_overrides

from .data_root import write_data_root

IMAGE_TASKS = {"zeroshot", "linear_probe", "knn", "clustering", "retrieval", "feature_analysis"}
TEXT_TASKS = {"sts", "passage_retrieval", "wiki_sections", "word_similarity"}
FAST = ["--threads", "1", "--batch-size", "512", "--option", "linear_probe.grid=[1.0]"]


def save_checkpoint(cfg, directory: Path, state: dict | None = None, step: int = 7, epoch: int = 1) -> Path:
    """A raykd checkpoint of ``state`` (a LocalRun checkpoint) or of the config's random-initialised model."""
    directory.mkdir(parents=True, exist_ok=True)
    if state is not None:
        torch.save(state, directory / STATE_FILE)
        return directory
    c = setup(cfg, LoopContext(epoch_batches=lambda epoch: [], steps_per_epoch=1))
    ckpt.save_state(directory, model=c.model, loss=c.loss, optimizer=c.optimizer, scheduler=c.scheduler,
                    scaler=c.scaler, step=step, epoch=epoch, batches_done=0, config=config_to_dict(cfg))
    return directory


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("builtin-cache")


@pytest.fixture(scope="module")
def checkpoint(cache, tmp_path_factory):
    cfg = load_config(REPO / "recipes/quickstart.yaml", tiny_overrides(cache))
    return save_checkpoint(cfg, tmp_path_factory.mktemp("ckpt") / "checkpoint_000001")


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_checkpoint_on_builtin_data_writes_results_progress_and_table(checkpoint, cache, capsys):
    assert main(["eval", "--checkpoint", str(checkpoint), "--datasets", "digits", *FAST]) == 0
    out, err = capsys.readouterr()
    record = json.loads((checkpoint / "eval" / "results.json").read_text())
    assert {k.split("/")[0] for k in record["metrics"]} == IMAGE_TASKS
    assert {k.split("/")[1] for k in record["metrics"]} == {"digits"}
    assert (record["step"], record["epoch"], record["device"], record["errors"]) == (7, 1, "cpu", {})
    assert record["data_root"] == str(cache) and record["datasets"] == ["digits"]
    assert set(record["skipped"]) == TEXT_TASKS
    assert "no sts data set among ['digits'] under" in record["skipped"]["sts"]
    assert "(1/2) digits [classification]: clustering, knn, linear_probe, zeroshot" in err and "done in" in err
    assert "zeroshot" in out and "top1" in out and "skipped word_similarity: no word_pairs data set" in out


def test_run_dir_appends_to_results_jsonl_and_writes_clip_benchmark_files(cache, tmp_path, capsys):
    run = tmp_path / "run"
    save_checkpoint(load_config(REPO / "recipes/quickstart.yaml", tiny_overrides(cache)),
                    run / "checkpoints" / "quickstart" / "checkpoint_000003", step=24, epoch=3)
    (run / "results.jsonl").write_text(json.dumps({"step": 8, "epoch": 1, "metrics": {"zeroshot/digits/top1": 0.1}})
                                       + "\n")
    code = main(["eval", "--run-dir", str(run), "--tasks", "zeroshot,retrieval", "--datasets", "digits",
                 "--clip-benchmark", *FAST[:4]])
    assert code == 0
    lines = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and set(lines[1]) == {"step", "epoch", "metrics"}
    assert (lines[1]["step"], lines[1]["epoch"]) == (24, 3)
    assert {k.split("/")[0] for k in lines[1]["metrics"]} == {"zeroshot", "retrieval"}
    out_dir = run / "eval" / "step-24"
    assert json.loads((out_dir / "results.json").read_text())["metrics"] == lines[1]["metrics"]
    files = sorted(p.name for p in (out_dir / "clip_benchmark").iterdir())
    assert files == ["digits_quickstart-step24_zeroshot_classification.json",
                     "digits_quickstart-step24_zeroshot_retrieval.json"]
    zs = json.loads((out_dir / "clip_benchmark" / files[0]).read_text())
    assert zs["dataset"] == "digits" and zs["task"] == "zeroshot_classification" and "acc1" in zs["metrics"]
    assert "appended to" in capsys.readouterr().err


def test_text_tasks_run_when_their_data_is_under_the_data_root(checkpoint, tmp_path, capsys):
    root = write_data_root(tmp_path / "data")
    out_dir = tmp_path / "out"
    assert main(["eval", "--checkpoint", str(checkpoint), "--tasks", "text", "--data-root", str(root),
                 "--out", str(out_dir), *FAST[:2]]) == 0
    record = json.loads((out_dir / "results.json").read_text())
    assert {k.rsplit("/", 1)[0] for k in record["metrics"]} == {
        "sts/STS12", "sts/STSBenchmark", "sts/SICKRelatedness", "passage_retrieval/msmarco",
        "wiki_sections/wikisections", "word_similarity/RG65"}
    assert record["skipped"] == {} and record["errors"] == {}
    assert not (root / "classification" / "shapes").exists()  # a user's data root gets no built-in views


def test_a_failing_data_set_is_reported_and_exits_1(checkpoint, tmp_path, capsys):
    root = write_data_root(tmp_path / "data")
    (root / "classification" / "broken").mkdir()
    (root / "classification" / "broken" / "classnames.txt").write_text("a\nb\n")
    code = main(["eval", "--checkpoint", str(checkpoint), "--tasks", "zeroshot", "--data-root", str(root),
                 "--out", str(tmp_path / "out"), *FAST[:2]])
    assert code == 1
    record = json.loads((tmp_path / "out" / "results.json").read_text())
    assert "image folder not found" in record["errors"]["zeroshot/broken"]
    assert "zeroshot/toy/top1" in record["metrics"]  # the other data sets still ran
    assert "FAILED zeroshot/broken: FileNotFoundError" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--tasks", "zeroshott"], "unknown evaluation task 'zeroshott'"),
    (["--datasets", "nope"], "--datasets: no data set ['nope']"),
    (["--option", "knn.kk=1"], "task 'knn' takes no option(s) ['kk']"),
    (["--option", "knn=1"], "--option expects TASK.KEY=VALUE"),
    (["--tasks", "knn", "--option", "zeroshot.batch_size=8"], "task 'zeroshot' is not among --tasks ['knn']"),
    (["--data-root", "/nowhere/at/all"], "evaluation data root not found: /nowhere/at/all"),
])
def test_user_errors_exit_2_with_the_reason(checkpoint, capsys, args, message):
    assert main(["eval", "--checkpoint", str(checkpoint), *args]) == 2
    assert message in capsys.readouterr().err


def test_missing_checkpoint_and_device(checkpoint, tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(tmp_path / "none")]) == 2
    assert "no raykd checkpoint at" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["eval", "--checkpoint", str(checkpoint), "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: one of --checkpoint / --run-dir is required
        main(["eval", "--tasks", "knn"])


def test_task_names_groups_and_aliases():
    assert len(resolve_tasks("all")) == 10
    assert set(resolve_tasks("image")) == IMAGE_TASKS and set(resolve_tasks("text")) == TEXT_TASKS
    assert resolve_tasks("linear, zeroshot,linear_probe,msmarco") == ["linear_probe", "zeroshot", "passage_retrieval"]


def test_table_groups_rows_by_task_and_dataset():
    table = format_table({"zeroshot/shapes/top1": 0.91234, "zeroshot/shapes/top5": 1.0, "sts/STS12/spearman": 71.234},
                         {"knn": "no data"}, {"retrieval/x": "OSError: bad"})
    assert table.splitlines() == [
        "task      dataset  metric    value",
        "sts       STS12    spearman  71.23",
        "zeroshot  shapes   top1      0.9123",
        "                   top5      1.0000",
        "skipped knn: no data",
        "FAILED retrieval/x: OSError: bad",
    ]


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ray_actors_give_the_in_process_results(ray_session, checkpoint, tmp_path):
    args = ["eval", "--checkpoint", str(checkpoint), "--tasks", "zeroshot,knn,retrieval", "--datasets", "digits"]
    assert main([*args, "--out", str(tmp_path / "local"), *FAST[:4]]) == 0
    assert main([*args, "--out", str(tmp_path / "ray"), "--ray", *FAST[2:4]]) == 0
    local, ray = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("local", "ray"))
    assert ray["device"] == "ray" and ray["metrics"] == pytest.approx(local["metrics"], abs=1e-5)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quickstart_model_trained_beats_random_init(builtin_root, tmp_path, capsys):
    """The quickstart recipe's own model (ModifiedResNet + text transformer), trained for 192 steps without Ray,
    evaluated through `raykd eval` on every task of the built-in data, against its random initialisation."""
    torch.set_num_threads(1)
    cfg = load_config(REPO / "recipes/quickstart.yaml", [
        f"data.builtin_root={builtin_root}", "data.builtin_train_size=2048", "data.augment=none",
        "data.shuffle_buffer=0", "train.num_workers=1", "train.epochs=6", "optim.lr=3e-3",
        "optim.warmup_steps=20", "train.log_every_n_steps=32", "eval.during_training=false"])
    from tests.train.local import LocalRun

    run = LocalRun(cfg)
    run_training(cfg, run.context())
    trained = save_checkpoint(cfg, tmp_path / "trained", state=run.checkpoints[-1])
    random_init = save_checkpoint(cfg, tmp_path / "random", step=0, epoch=0)
    assert main(["eval", "--checkpoint", str(trained), "--threads", "1"]) == 0
    record = json.loads((trained / "eval" / "results.json").read_text())
    assert {tuple(k.split("/")[:2]) for k in record["metrics"]} == {
        (task, name) for task in IMAGE_TASKS for name in ("shapes", "digits")}
    assert set(record["skipped"]) == TEXT_TASKS and record["errors"] == {}
    assert main(["eval", "--checkpoint", str(random_init), "--threads", "1", "--datasets", "shapes",
                 "--tasks", "zeroshot,linear_probe,retrieval"]) == 0
    base = json.loads((random_init / "eval" / "results.json").read_text())["metrics"]
    got = record["metrics"]
    print({k: (round(got[k], 4), round(base[k], 4)) for k in base})
    assert got["zeroshot/shapes/top1"] > max(0.5, base["zeroshot/shapes/top1"] + 0.3)  # chance 1/16
    assert got["linear_probe/shapes/top1"] > base["linear_probe/shapes/top1"] + 0.1
    assert got["retrieval/shapes/mean_recall"] > 3 * base["retrieval/shapes/mean_recall"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_the_gpu_when_there_is_one(checkpoint, tmp_path):
    args = ["eval", "--checkpoint", str(checkpoint), "--datasets", "digits", "--tasks", "zeroshot,knn,retrieval"]
    assert main([*args, "--out", str(tmp_path / "gpu")]) == 0  # --device auto
    assert main([*args, "--out", str(tmp_path / "cpu"), "--device", "cpu"]) == 0
    gpu, cpu = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("gpu", "cpu"))
    assert gpu["device"] == "cuda" and gpu["metrics"] == pytest.approx(cpu["metrics"], abs=0.02)
