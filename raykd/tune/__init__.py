"""Sweeps with Ray Tune: search spaces from YAML, a function trainable that launches a TorchTrainer
per trial, ASHA on samples seen, and a table of trials at the end. See `raykd.tune.spec` for the
sweep file format; `raykd tune SWEEP.yaml` runs one."""
from raykd.tune.spec import Sweep, SweepConfig, check_sweep, is_sweep_file, load_sweep

__all__ = ["Sweep", "SweepConfig", "check_sweep", "is_sweep_file", "load_sweep", "run_sweep"]


def run_sweep(*args, **kwargs):
    """See `raykd.tune.sweep.run_sweep`."""
    from raykd.tune.sweep import run_sweep as run  # Ray Tune loads on use: `raykd check SWEEP` needs only the spec

    return run(*args, **kwargs)
