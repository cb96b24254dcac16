"""W&B (offline mode) and MLflow (a local file store) through Ray's integrations: config and metrics logged
under the names `results.jsonl` and TensorBoard use; a missing package names the extra before Ray starts."""
from __future__ import annotations

import json
import struct
import time
import types
from pathlib import Path

import pytest

from raykd.config import config_to_dict, load_config
from raykd.train.check import validate
from raykd.train.trackers import TrackerLogger, check_loggers, flat_config, mlflow_names, train_callbacks
from raykd.tune.trackers import MLflowNamesCallback, tune_callbacks
from tests.conftest import REPO

REPORTS = [{"train/loss": 3.5, "train/lr": 1e-3, "step": 4, "epoch": 0},
           {"train/loss": 3.0, "train/lr": 2e-3, "step": 8, "epoch": 0, "zeroshot/shapes/top1": 0.25,
            "retrieval/shapes/image_to_text_R@1": 0.125},
           {"train/loss": 2.5, "train/lr": float("nan"), "step": 12, "epoch": 1, "zeroshot/shapes/top1": 0.5}]
KEYS = ("train/loss", "train/lr", "zeroshot/shapes/top1", "retrieval/shapes/image_to_text_R@1")


@pytest.fixture
def cfg():
    return load_config(REPO / "recipes/quickstart.yaml", ["run.name=tracked"])


def drive(callbacks: tuple) -> None:
    """Reports from 2 workers, then the end of the run, as Ray Train's controller calls them."""
    logger, closer = callbacks
    for report in REPORTS:
        logger.after_report(None, [report, {**report, "train/loss": 99.0}], None)  # rank 0's metrics
    closer.after_controller_finish(types.SimpleNamespace(error=None))


def test_default_is_tensorboard_only(cfg):
    assert cfg.run.loggers == ["tensorboard"]
    assert train_callbacks(cfg.run.loggers, {}, "run", "x") == [] and tune_callbacks(cfg.run.loggers, "x") == []


@pytest.mark.parametrize("loggers, message", [
    (["tensorbord"], "run.loggers: unknown logger 'tensorbord'; valid: ['tensorboard', 'wandb', 'mlflow']"),
    (["wandb", "wandb"], "run.loggers: each logger once"),
])
def test_bad_logger_names(cfg, loggers, message):
    cfg.run.loggers = loggers
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate(cfg)


@pytest.mark.parametrize("name, extra", [("wandb", "raykd[wandb]"), ("mlflow", "raykd[mlflow]")])
def test_missing_package_names_the_extra(monkeypatch, name, extra):
    monkeypatch.setattr("raykd.train.trackers.package_installed", lambda module: module != name)
    with pytest.raises(ValueError, match=rf"run.loggers: {name} needs the {name} package: pip install '{extra}'".replace(
            "[", r"\[").replace("]", r"\]")):
        check_loggers(["tensorboard", name])


def test_missing_package_fails_raykd_train_before_ray(monkeypatch, capsys, tmp_path):
    import ray

    from raykd.cli import main

    was_running = ray.is_initialized()
    monkeypatch.setattr("raykd.train.trackers.package_installed", lambda module: module != "wandb")
    code = main(["train", "quickstart", "--set", "run.loggers=[tensorboard, wandb]", "--run-dir", str(tmp_path)])
    assert code == 2 and "pip install 'raykd[wandb]'" in capsys.readouterr().err
    assert ray.is_initialized() == was_running


def wandb_records(path: Path):
    """The protobuf records of an offline W&B run file (`run-<id>.wandb`: a 7-byte header, then LevelDB's
    log format: 32 KiB blocks of chunks with a crc32/length/type header; types 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, buf, block = path.read_bytes(), 7, b"", 32768
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(buf)
            yield record


def name(item) -> str:
    """A W&B history key: `train/loss` is stored as the nested key ['train', 'loss']."""
    return item.key or "/".join(item.nested_key)


def test_wandb_offline_writes_the_run_with_config_and_metrics(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    run_dir = tmp_path / "tracked-20260101-000000"
    cfg.run.loggers = ["tensorboard", "wandb"]
    callbacks = train_callbacks(cfg.run.loggers, config_to_dict(cfg), run_dir, cfg.run.name)
    drive(callbacks)
    (run_file,) = (run_dir / "wandb").glob("offline-run-*-tracked-20260101-000000/run-tracked-20260101-000000.wandb")
    deadline = time.time() + 60  # wandb's service process writes the file after `finish` returns
    while not (records := list(wandb_records(run_file))) or records[-1].WhichOneof("record_type") != "exit":
        assert time.time() < deadline, [r.WhichOneof("record_type") for r in records]
        time.sleep(0.5)
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert (run.run_id, run.display_name, run.project) == ("tracked-20260101-000000", "tracked", "raykd")
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["loss"]["name"] == "InfoNCE" and config["optim"]["lr"] == cfg.optim.lr
    # wandb keeps every name (`R@1` included)
    history = [{name(item): json.loads(item.value_json) for item in r.history.item if name(item) in ("_step", *KEYS)}
               for r in records if r.WhichOneof("record_type") == "history"]
    assert history == [  # rank 0's values, at their steps; NaN not sent
        {"train/loss": 3.5, "train/lr": 1e-3, "_step": 4},
        {"train/loss": 3.0, "train/lr": 2e-3, "zeroshot/shapes/top1": 0.25, "retrieval/shapes/image_to_text_R@1": 0.125,
         "_step": 8},
        {"train/loss": 2.5, "zeroshot/shapes/top1": 0.5, "_step": 12}]


def test_mlflow_file_store_records_run_params_and_metric_history(cfg, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    run_dir = tmp_path / "tracked-20260101-000000"
    cfg.run.loggers = ["mlflow"]
    callbacks = train_callbacks(cfg.run.loggers, config_to_dict(cfg), run_dir, cfg.run.name)
    drive(callbacks)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tracked")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "tracked-20260101-000000"
    params = run.data.params
    assert params["loss.name"] == "InfoNCE" and params["optim.lr"] == str(cfg.optim.lr)
    assert set(params) == {k for k, v in flat_config(config_to_dict(cfg)).items() if v != {}}  # Ray drops empty mappings
    loss = client.get_metric_history(run.info.run_id, "train/loss")
    assert [(m.step, m.value) for m in loss] == [(4, 3.5), (8, 3.0), (12, 2.5)]
    top1 = client.get_metric_history(run.info.run_id, "zeroshot/shapes/top1")
    assert [(m.step, m.value) for m in top1] == [(8, 0.25), (12, 0.5)]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/lr")] == [4, 8]  # NaN not sent
    recall = client.get_metric_history(run.info.run_id, "retrieval/shapes/image_to_text_R_1")  # MLflow refuses '@'
    assert [(m.step, m.value) for m in recall] == [(8, 0.125)]


def test_mlflow_names():
    assert mlflow_names({"retrieval/shapes/image_to_text_R@1": 1, "a b/c-d.e:f_g": 2}) == {
        "retrieval/shapes/image_to_text_R_1": 1, "a b/c-d.e:f_g": 2}


def test_a_failing_tracker_is_switched_off_and_training_goes_on(cfg, tmp_path, capsys):
    logger, _ = train_callbacks(["mlflow"], config_to_dict(cfg), tmp_path / "run", "x")

    def broken(name):
        raise ConnectionError("tracking server unreachable")

    logger._start = broken
    logger.after_report(None, [REPORTS[0]], None)
    logger.after_report(None, [REPORTS[1]], None)
    assert logger.loggers == []
    assert capsys.readouterr().out.count("run.loggers: mlflow failed and is switched off") == 1


def test_tune_callbacks_are_rays(monkeypatch, tmp_path):
    from ray.air.integrations.mlflow import MLflowLoggerCallback
    from ray.air.integrations.wandb import WandbLoggerCallback

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    wandb, mlflow = tune_callbacks(["tensorboard", "wandb", "mlflow"], "losses-lr")
    assert isinstance(wandb, WandbLoggerCallback) and wandb.group == "losses-lr"
    assert isinstance(mlflow, MLflowLoggerCallback) and isinstance(mlflow, MLflowNamesCallback)
    assert mlflow.experiment_name == "losses-lr"
    assert mlflow.tracking_uri == (tmp_path / "mlruns").as_uri()
    import ray.cloudpickle

    assert type(ray.cloudpickle.loads(ray.cloudpickle.dumps(mlflow))) is MLflowNamesCallback  # Tune saves its run config


@pytest.mark.ray
@pytest.mark.slow
def test_a_ray_train_run_logs_to_wandb_and_mlflow(ray_session, builtin_root, tmp_path, monkeypatch):
    """The trackers run in Ray Train's controller (another process): settings from the driver's environment,
    the runs closed at the end (MLflow FINISHED, W&B's exit record written)."""
    from mlflow.tracking import MlflowClient

    from raykd.cli import main
    from tests.conftest import tiny_overrides

    uri = (tmp_path / "mlruns").as_uri()
    for key, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "MLFLOW_TRACKING_URI": uri,
                       "MLFLOW_EXPERIMENT_NAME": "tracked-ray"}.items():
        monkeypatch.setenv(key, value)
    run_dir = tmp_path / "run"
    sets = tiny_overrides(builtin_root, **{"eval.linear_probe.every_n_epochs": 0,
                                           "run.loggers": "[tensorboard, wandb, mlflow]"})
    assert main(["train", "quickstart", "--run-dir", str(run_dir)] + [f"--set={s}" for s in sets]) == 0
    results = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    top1 = [(r["step"], r["metrics"]["zeroshot/shapes/top1"]) for r in results]

    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("tracked-ray").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["loss.name"] == "InfoNCE"
    history = client.get_metric_history(run.info.run_id, "zeroshot/shapes/top1")
    assert [(m.step, m.value) for m in history] == top1  # the names and values of results.jsonl
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) >= 3

    (run_file,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    records = list(wandb_records(run_file))
    assert records[-1].WhichOneof("record_type") == "exit"
    logged = [(json.loads(next(i.value_json for i in r.history.item if name(i) == "_step")),
               json.loads(next(i.value_json for i in r.history.item if name(i) == "zeroshot/shapes/top1")))
              for r in records if r.WhichOneof("record_type") == "history"
              and any(name(i) == "zeroshot/shapes/top1" for i in r.history.item)]
    assert logged == top1
