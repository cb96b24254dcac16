"""Training under Ray Train + Ray Data: 2 workers, run-directory files, skipped data, worker failure."""
from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from raykd.config import load_config
from raykd.data.shards import write_shards
from raykd.train.run_logger import read_tensorboard_scalars
from raykd.train.trainer import train
from tests.conftest import REPO, tiny_overrides

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def jpeg(rgb) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), rgb, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def shards_with_bad_samples(directory: Path, n_good: int = 256) -> Path:
    samples = [{"__key__": f"{i:05d}", "jpg": jpeg((i * 7 % 255, 40, 200)), "txt": f"colour {i % 4}", "cls": str(i % 4)}
               for i in range(n_good)]
    samples.insert(10, {"__key__": "broken-jpg", "jpg": b"not a jpeg at all", "txt": "broken", "cls": "0"})
    samples.insert(20, {"__key__": "no-caption", "jpg": jpeg((1, 2, 3)), "cls": "1"})
    write_shards(samples, directory, shard_size=100)
    return directory


def cfg_for(root, tmp_path, **extra):
    return load_config(REPO / "recipes/quickstart.yaml", tiny_overrides(root, **{
        "run.name": "t", "run.run_dir": str(tmp_path / "run"), **extra}))


def test_two_workers_with_skipped_samples(ray_session, builtin_root, tmp_path):
    shards = shards_with_bad_samples(tmp_path / "shards")
    cfg = cfg_for(builtin_root, tmp_path, **{
        "train.num_workers": 2, "train.batch_size": 16, "train.epochs": 2,
        "data.train_shards": json.dumps([str(shards)]), "data.builtin": "shapes"})
    summary = train(cfg, tmp_path / "run")
    run = Path(summary["run_dir"])
    metrics = summary["metrics"]
    # 258 samples - 2 bad = 256 good; global batch 32 -> 8 steps per epoch, 2 epochs.
    assert metrics["step"] == 16 and metrics["epoch"] == 2
    assert metrics["data/skipped"] == 4  # both bad samples, seen in each of 2 epochs
    assert metrics["data/skipped/bad_image"] == 2 and metrics["data/skipped/missing_caption"] == 2
    assert (run / "config.yaml").is_file() and load_config(run / "config.yaml").train.num_workers == 2
    lines = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert 0.0 <= lines[-1]["metrics"]["zeroshot/shapes/top1"] <= 1.0
    scalars = read_tensorboard_scalars(run / "tensorboard")
    assert {"train/loss", "train/lr", "train/logit_scale", "train/samples_per_s", "train/data_wait_frac"} <= set(scalars)
    assert len(scalars["zeroshot/shapes/top1"]) == 2
    assert summary["checkpoint"] and Path(summary["checkpoint"], "state.pt").is_file()


def test_an_empty_shard_file_is_skipped_and_counted_under_skip(ray_session, builtin_root, tmp_path):
    """A failed download leaves an empty .tar beside the good shards: the run trains on the others."""
    shards = shards_with_bad_samples(tmp_path / "shards", n_good=64)
    (shards / "shard-000099.tar").write_bytes(b"")
    cfg = cfg_for(builtin_root, tmp_path, **{"train.batch_size": 16, "train.epochs": 1, "eval.zeroshot.every_n_epochs": 0,
                                              "data.train_shards": json.dumps([str(shards)])})
    metrics = train(cfg, tmp_path / "run")["metrics"]
    assert metrics["step"] == 4  # 66 samples - 2 bad = 64 good: 4 batches of 16
    assert metrics["data/skipped/empty_shard"] == 1
    assert metrics["data/skipped"] == 3  # the empty shard, the broken jpeg and the sample without a caption


def test_an_existing_run_is_never_silently_continued(builtin_root, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("run: {name: t}\n")
    (tmp_path / "run" / "results.jsonl").write_text("")  # it reported: a run that got going
    with pytest.raises(ValueError, match=r"already holds a run: pass --resume"):
        train(cfg_for(builtin_root, tmp_path), tmp_path / "run")


def test_resume_continues_the_step_count_of_an_interrupted_run(ray_session, builtin_root, tmp_path, capsys):
    """The first run stops after its first epoch's checkpoint (as a killed driver would); the same command
    with --resume trains the second epoch only."""
    extra = {"train.batch_size": 32, "train.epochs": 2}  # 512 samples: 16 steps per epoch
    first = train(cfg_for(builtin_root, tmp_path, **extra, **{"train.max_steps": 16}), tmp_path / "run")
    assert first["metrics"]["step"] == 16 and first["metrics"]["epoch"] == 1
    resumed = train(cfg_for(builtin_root, tmp_path, **extra, **{"run.resume": "auto"}), tmp_path / "run")
    assert "resuming the run in" in capsys.readouterr().out
    assert resumed["metrics"]["step"] == 32 and resumed["metrics"]["epoch"] == 2
    reports = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in reports] == [1, 2]  # epoch 0 was not trained again


def test_on_error_raise_names_shard_and_key(ray_session, builtin_root, tmp_path):
    shards = shards_with_bad_samples(tmp_path / "shards")
    cfg = cfg_for(builtin_root, tmp_path, **{"data.train_shards": json.dumps([str(shards)]), "data.on_error": "raise",
                                              "train.batch_size": 16})
    with pytest.raises(Exception, match=r"shard-000000.tar.*broken-jpg|broken-jpg.*shard-000000.tar"):
        train(cfg, tmp_path / "run")


def train_worker_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().decode(errors="ignore")
            except OSError:
                continue
            if cmd.startswith("ray::RayTrainWorker"):
                pids.append(int(entry.name))
    return pids


def test_killed_worker_is_replaced_and_run_resumes(ray_session, builtin_root, tmp_path):
    cfg = cfg_for(builtin_root, tmp_path, **{"train.epochs": 4, "train.max_failures": 1,
                                              "eval.zeroshot.every_n_epochs": 1})
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(train(cfg, tmp_path / "run")))
    thread.start()
    results_file = tmp_path / "run" / "results.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (results_file.is_file() and results_file.read_text().strip()):
        time.sleep(0.2)  # wait for the end of epoch 0 (its checkpoint is reported with it)
    pids = train_worker_pids()
    assert pids, "no training worker found to kill"
    os.kill(pids[0], signal.SIGKILL)
    thread.join(timeout=400)
    assert not thread.is_alive()
    steps_per_epoch = 512 // 32
    assert result["metrics"]["step"] == 4 * steps_per_epoch
    epochs = [json.loads(line)["epoch"] for line in results_file.read_text().splitlines()]
    assert epochs.count(1) == 1, epochs  # epoch 0 was not trained again: the run resumed from its checkpoint
    assert sorted(set(epochs)) == [1, 2, 3, 4]


def test_too_few_cpus_for_ray_data_fails_fast_instead_of_hanging(ray_session, builtin_root, tmp_path):
    cpus = int(ray_session.cluster_resources()["CPU"])
    cfg = cfg_for(builtin_root, tmp_path, **{"train.num_workers": cpus, "train.batch_size": 4})
    with pytest.raises(ValueError, match=rf"has {cpus} CPUs, but train.num_workers x train.cpus_per_worker = {cpus} "):
        train(cfg, tmp_path / "run")
    assert not list((tmp_path / "run").glob("checkpoints/*/checkpoint_*"))


def test_more_gpu_workers_than_gpus_fails_fast_naming_the_option(ray_session, builtin_root, tmp_path):
    """Ray Train V2 would retry placing the workers forever (seen still retrying after 150 s)."""
    gpus = ray_session.cluster_resources().get("GPU", 0)
    cfg = cfg_for(builtin_root, tmp_path, **{"train.use_gpu": True, "train.num_workers": int(gpus) + 1})
    start = time.time()
    with pytest.raises(ValueError, match=rf"train.num_workers = {int(gpus) + 1} workers, but the Ray cluster "
                                         rf"has {gpus:g} GPU\(s\)"):
        train(cfg, tmp_path / "run")
    assert time.time() - start < 60
    assert not list((tmp_path / "run").glob("checkpoints/*/checkpoint_*"))


def test_ray_train_console_logs_follow_run_train_log_level(ray_session, builtin_root, tmp_path):
    from raykd.data.run_state import DataRunState
    from raykd.train.trainer import build_trainer

    cfg = cfg_for(builtin_root, tmp_path)
    quiet = build_trainer(cfg, tmp_path / "run")
    assert quiet.run_config.logging_config.log_level == "WARNING"  # no INFO line per report and checkpoint
    # and no second copy of each worker print (Ray Train's print patch tees and logs it)
    assert quiet.run_config.worker_runtime_env["env_vars"]["RAY_TRAIN_ENABLE_PRINT_PATCH"] == "0"
    chatty = build_trainer(cfg_for(builtin_root, tmp_path, **{"run.train_log_level": "INFO"}), tmp_path / "run")
    assert chatty.run_config.logging_config.log_level == "INFO"
    DataRunState.for_run(cfg.run.name, tmp_path / "run").close()  # built, never run: no actor left behind
    with pytest.raises(ValueError, match="run.train_log_level"):
        cfg_for(builtin_root, tmp_path, **{"run.train_log_level": "LOUD"})


def test_an_elastic_run_starts_with_the_workers_that_fit_and_keeps_the_global_batch(ray_session, builtin_root,
                                                                                    tmp_path):
    """The test Ray has 4 CPUs and a worker asks 2.5: one worker fits, not the two asked for. An elastic run
    (train.min_workers 1) trains with one, which takes the whole global batch of 2 x 16, so an epoch of the
    512 shapes pairs is still 16 steps."""
    cfg = cfg_for(builtin_root, tmp_path, **{
        "train.num_workers": 2, "train.min_workers": 1, "train.cpus_per_worker": 2.5, "train.batch_size": 16,
        "train.epochs": 1, "train.log_every_n_steps": 4, "eval.zeroshot.every_n_epochs": 0})
    summary = train(cfg, tmp_path / "run")
    assert summary["metrics"]["step"] == 512 // 32 and summary["metrics"]["epoch"] == 1
    workers = read_tensorboard_scalars(Path(summary["run_dir"]) / "tensorboard")["train/workers"]
    assert set(workers) == {1.0}, workers
