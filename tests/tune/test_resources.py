"""Per-trial resources, concurrency derived from them, and a run's length in samples."""
from __future__ import annotations

from raykd.config import load_config
from raykd.tune.resources import concurrency, fitting_trials, run_samples, trial_resources
from raykd.tune.spec import TrialResources
from tests.conftest import REPO


def cfg(*sets):
    return load_config(REPO / "recipes/quickstart.yaml", list(sets))


def test_trial_resources_count_workers_data_and_driver():
    need = trial_resources(cfg("train.num_workers=2", "data.cpus_per_read_task=0.5"), TrialResources(driver_cpus=0.05))
    assert need == {"CPU": 2.55}
    gpu = trial_resources(cfg("train.num_workers=4", "train.use_gpu=true"), TrialResources(data_cpus=2, driver_cpus=0))
    assert gpu == {"CPU": 6.0, "GPU": 4.0}


def test_fitting_trials_is_limited_by_the_scarcest_resource():
    assert fitting_trials({"CPU": 1.55}, {"CPU": 4}) == 2
    assert fitting_trials({"CPU": 6, "GPU": 4}, {"CPU": 64, "GPU": 8}) == 2
    assert fitting_trials({"CPU": 6, "GPU": 4}, {"CPU": 64}) == 0


def test_concurrency_caps_and_autoscaling_fallback():
    assert concurrency({"CPU": 1.55}, {"CPU": 4}, cap=0, n_trials=4)[0] == 2
    assert concurrency({"CPU": 1.55}, {"CPU": 40}, cap=3, n_trials=4)[0] == 3
    assert concurrency({"CPU": 1.55}, {"CPU": 40}, cap=0, n_trials=4)[0] == 4  # no more than there are trials
    n, why = concurrency({"CPU": 6, "GPU": 4}, {"CPU": 8}, cap=2, n_trials=8)
    assert n == 2 and "autoscaler" in why  # nothing fits yet: trust the sweep's cap
    assert concurrency({"CPU": 6, "GPU": 4}, {"CPU": 8}, cap=0, n_trials=8)[0] == 1


def test_run_samples_counts_whole_global_batches():
    c = cfg("train.batch_size=32", "train.num_workers=2", "train.epochs=3")
    assert run_samples(c, 1000) == (960, 2880)  # 15 steps of 64 per epoch
    c = cfg("train.batch_size=32", "train.num_workers=1", "train.epochs=3", "train.max_steps=20")
    assert run_samples(c, 512) == (512, 640)
