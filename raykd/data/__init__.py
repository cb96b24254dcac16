"""Data: built-in data sets (`builtin`, `synthetic`), webdataset shards (`shards`, `convert`), training
sources and their sampling plans (`sources`, `sampling`), samples and batch transforms (`samples`,
`transforms`), the Ray Data training pipeline (`pipeline`) and a run's data state (`run_state`).

Import the module you need; importing `raykd.data` itself loads nothing (the pipeline imports Ray).
"""
