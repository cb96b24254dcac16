"""Training data: a `TrainPlan`'s work units -> decoded, preprocessed, tokenized batches.

Two executors over the same per-unit function (`raykd.data.reader.unit_samples`, then a `ShardProcessor`):
  * `build_train_dataset`: Ray Data. A datasource (`UnitDatasource`) plans each epoch's units when
    that epoch's execution starts (from the epoch the train workers announce with
    `raykd.data.run_state.DataRunState.set_epoch`, so resampled epochs and episodes differ per epoch and resume
    exactly); one read task per unit, fused with a generator `map_batches` that reads the shard
    (any fsspec URL), parses, decodes (PIL), crops/resizes/normalises (one torch op per batch) and
    tokenizes, emitting finished column batches. Nothing but tensor copies happens in the train
    workers, which get an equal split through `ray.train.get_dataset_shard("train")`. The trainer runs it
    with Ray Data's ordered execution (`raykd.train.trainer.ordered_ingest`), so each worker's batches in
    an epoch are a function of (seed, epoch, rank, world size) and a mid-epoch resume can skip exactly.
  * `iterate_shards_torch`: webdataset + a `torch.utils.data.DataLoader` (tests, benchmarks, runs
    without Ray): over plain shard URLs the stock webdataset pipeline, over a plan its units.

Rows: `image` uint8 [3, S, S] (cropped and resized, not normalised: `raykd.data.transforms.normalise` does that
on the device that trains, so a quarter of float32's bytes cross the object store and the copy), one int64 [L]
column per key returned by `tokenize`, `label` int64 (-1 without a class). Bad data follows `on_error` (see
`raykd.data.samples`); skips are counted per shard URL and reason in the run's `DataRunState`
(`raykd.data.run_state`) passed here.
"""
from __future__ import annotations

import pickle
import zlib
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import ray
import torch
import webdataset as wds
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from raykd.data.reader import read_shard, unit_samples
from raykd.data.samples import ShardProcessor, Tokenize
from raykd.data.sampling import TrainPlan, plan_from_config, plan_from_urls
from raykd.data.shards import validate_shards
from raykd.data.run_state import DataRunState
from raykd.specs import ImageSpec

__all__ = ["UnitDatasource", "build_from_config", "build_train_dataset", "iterate_shards_torch", "read_shard",
           "shard_batches", "torch_batches"]


def shard_batches(data, url: str, processor: ShardProcessor, shuffle_seed: int | None = None) -> Iterator[dict]:
    """Column batches of one shard; with `shuffle_seed`, the shard's samples in a seeded random order."""
    samples = read_shard(data, url, processor)
    if shuffle_seed is not None:
        order = np.random.default_rng([shuffle_seed, zlib.crc32(url.encode())]).permutation(len(samples))
        samples = [samples[i] for i in order]
    processor.start_shard(url)
    yield from processor.batches(samples)


def _unit_block(blob: bytes) -> list:
    return [pa.table({"unit": pa.array([blob], type=pa.binary())})]


class UnitDatasource(Datasource):
    """One read task per work unit of the epoch being executed; each emits a one-row block
    `{"unit": pickled unit}` that the fused `map_batches` turns into training batches.

    The epoch is the one the train workers last announced to `state` (`DataRunState.set_epoch`), else
    Ray Data's own execution count (driver-side iteration: 0, 1, 2, ... per full pass).
    """

    def __init__(self, plan: TrainPlan, state: DataRunState, shuffle: bool):
        super().__init__()
        self.plan, self.state, self.shuffle = plan, state, shuffle

    def get_name(self) -> str:
        return "ReadShardUnits"

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def epoch(self, data_context=None) -> int:
        announced = self.state.epoch()
        return announced if announced is not None else int(getattr(data_context, "_execution_idx", 0) or 0)

    def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None) -> list[ReadTask]:
        tasks = []
        for unit in self.plan.units(self.epoch(data_context), self.shuffle):
            blob = pickle.dumps(unit, protocol=pickle.HIGHEST_PROTOCOL)
            meta = BlockMetadata(num_rows=1, size_bytes=len(blob), exec_stats=None, input_files=None)
            tasks.append(ReadTask(lambda blob=blob: _unit_block(blob), meta))
        return tasks


def _ray_unit_batches(batch: dict, processor: ShardProcessor, labelling: list, state: DataRunState):
    """map_batches UDF: {"unit": [pickled unit]} -> column batches; reports skips at the end."""
    for blob in batch["unit"]:
        unit = pickle.loads(blob)
        samples = unit_samples(unit, labelling[unit["source"]], processor)
        processor.start_shard(unit["url"], unit.get("seed"))
        yield from processor.batches(samples)
    state.add_skips(processor.pop_skips())


def build_train_dataset(
    data: TrainPlan | str | list[str],
    image_spec: ImageSpec,
    tokenize: Tokenize,
    *,
    augment: str = "light",
    on_error: str = "skip",
    shuffle_seed: int | None = None,
    augment_seed: int | None = None,
    batch_size: int = 128,
    num_cpus: float = 1.0,
    concurrency: int | None = None,
    state: DataRunState = DataRunState(),
) -> ray.data.Dataset:
    """The training stream as a Ray Dataset; iterate with `ds.iter_torch_batches(batch_size=B, drop_last=True)`.

    Args:
        data: a `TrainPlan` (`raykd.data.sampling`), or shard specs (anything `expand_shard_spec`
            takes; local shards are checked here) read as one source, every sample once per epoch.
        image_spec: the image tower's `ImageSpec`.
        tokenize: picklable `list[str] -> {name: int64 [n, L]}`; each name becomes a column.
        augment: 'none' | 'light' | 'clip' (see `raykd.data.transforms`).
        on_error: 'skip' (drop and count bad samples/shards) or 'raise' (`SampleError` naming shard and key).
        shuffle_seed: None keeps a full epoch's shard and sample order; an int shuffles units and the
            samples within each, differently every epoch (shard specs: seeded by it; a plan: by its
            own seed). Sampled plans (resample / episode) are random whatever this says.
        augment_seed: None makes crops a function of each unit's seed (the plan's seed, the epoch, the unit's
            place), different every epoch and the same when an epoch is re-read on resume; an int makes them a
            function of (augment_seed, shard), the same every epoch.
        batch_size: rows per preprocessing batch inside Ray Data (not the training batch size).
        num_cpus: logical CPUs per read+preprocess task; concurrency: max concurrent tasks (None: Ray decides).
        state: the run's `DataRunState`: where skips are counted (`state.skipped()`), and the epoch the
            train workers announce.
    Returns:
        Dataset with columns image uint8 [3, S, S], <tokenize keys> int64 [L], label int64.
    """
    plan = data if isinstance(data, TrainPlan) else plan_from_urls(data, shuffle_seed or 0)
    processor = ShardProcessor(image_spec, tokenize, augment, on_error, batch_size, augment_seed)
    source = UnitDatasource(plan, state, shuffle=shuffle_seed is not None)
    # override_num_blocks=1: never split the one-row unit blocks (that would stop the read fusing with map_batches)
    ds = ray.data.read_datasource(source, num_cpus=num_cpus, concurrency=concurrency, override_num_blocks=1)
    # With per-operator reservation on, this one-operator pipeline ran one task at a time on small
    # machines (measured on 2 CPUs: tasks strictly serial); off, it uses every CPU it is given.
    ds.context.op_resource_reservation_enabled = False
    return ds.map_batches(  # batch_size=None keeps read + preprocess fused in one task per unit
        _ray_unit_batches,
        batch_size=None,
        batch_format="numpy",
        fn_kwargs=dict(processor=processor, labelling=[s.labelling() for s in plan.sources], state=state),
        num_cpus=num_cpus,
        concurrency=concurrency,
    )


def torch_batches(ds, batch_size: int, *, shuffle_buffer: int = 0, prefetch_batches: int = 2,
                  seed: int | None = None, device: torch.device | None = None) -> Iterable[dict[str, torch.Tensor]]:
    """Training batches of a Dataset or a train worker's DataIterator: full batches only, with Ray's
    local shuffle buffer when `shuffle_buffer > 0`, on `device` (None: Ray's choice, the worker's device in
    Ray Train). To a CUDA device they are collated into pinned memory and copied without blocking (Ray's
    default for that copy), so the copy overlaps the step."""
    return ds.iter_torch_batches(
        batch_size=batch_size, drop_last=True, prefetch_batches=prefetch_batches,
        local_shuffle_buffer_size=shuffle_buffer or None, local_shuffle_seed=seed,
        device=device if device is not None else "auto", pin_memory=device is not None and device.type == "cuda",
    )


class _TorchShardStage:
    """webdataset pipeline stage: {"url", "stream"} per shard -> column batches across this worker's shards."""

    def __init__(self, processor: ShardProcessor, state: DataRunState):
        self.processor, self.state = processor, state

    def __call__(self, sources: Iterable[dict]) -> Iterator[dict]:
        def samples():
            for src in sources:
                self.processor.start_shard(src["url"])
                yield from read_shard(src["stream"], src["url"], self.processor)

        yield from self.processor.batches(samples())
        self.state.add_local_skips(self.processor.pop_skips())


class _Items:
    """webdataset source stage over a list (a bare list would be read as a list of stages)."""

    def __init__(self, items: list):
        self.items = items

    def __call__(self) -> Iterator:
        return iter(self.items)


class _TorchUnitStage:
    """webdataset pipeline stage: this worker's units of a plan -> column batches across them."""

    def __init__(self, processor: ShardProcessor, labelling: list, state: DataRunState):
        self.processor, self.labelling, self.state = processor, labelling, state

    def __call__(self, units: Iterable[dict]) -> Iterator[dict]:
        def samples():
            for unit in units:
                self.processor.start_shard(unit["url"], unit.get("seed"))
                yield from unit_samples(unit, self.labelling[unit["source"]], self.processor)

        yield from self.processor.batches(samples())
        self.state.add_local_skips(self.processor.pop_skips())


def iterate_shards_torch(
    shard_urls: TrainPlan | str | list[str],
    image_spec: ImageSpec,
    tokenize: Tokenize,
    batch_size: int,
    num_workers: int = 0,
    *,
    augment: str = "none",
    on_error: str = "skip",
    augment_seed: int | None = None,
    state: DataRunState = DataRunState(),
    epoch: int = 0,
) -> torch.utils.data.DataLoader:
    """The same batches through webdataset + a DataLoader: dicts of tensors, image uint8 [B, 3, S, S],
    token keys int64 [B, L], label int64 [B]. Shard specs go through webdataset's own shard list and
    tar reader; a `TrainPlan` is read as `epoch`'s units (in plan order, unshuffled). Shards (units)
    are split across the `num_workers` processes (each worker's last batch may be short). Skips are
    counted in the process-local table of `state`, so they are visible (`state.skipped()`
    without Ray) only with num_workers=0."""
    processor = ShardProcessor(image_spec, tokenize, augment, on_error, batch_size, augment_seed)
    if isinstance(shard_urls, TrainPlan):
        units = shard_urls.units(epoch)
        stages = [_Items(units), wds.split_by_worker,
                  _TorchUnitStage(processor, [s.labelling() for s in shard_urls.sources], state)]
    else:
        stages = [wds.SimpleShardList(validate_shards(shard_urls)), wds.split_by_worker,
                  wds.tariterators.url_opener, _TorchShardStage(processor, state)]
    pipeline = wds.DataPipeline(*stages)
    return torch.utils.data.DataLoader(pipeline, batch_size=None, num_workers=num_workers,
                                       persistent_workers=False, pin_memory=torch.cuda.is_available())


def build_from_config(cfg, image_spec: ImageSpec, tokenize: Tokenize, *, seed: int | None = None,
                      state: DataRunState = DataRunState(), plan: TrainPlan | None = None) -> ray.data.Dataset:
    """`build_train_dataset` with the settings of a `DataConfig` (its sources, epoch mode, workers and
    batch sizes): `plan` (default: `plan_from_config(cfg, seed)`) shuffled when cfg.shuffle_buffer > 0
    (pass cfg.shuffle_buffer to `torch_batches` too); crops a function of (seed, epoch, unit), so an epoch
    re-read on resume gets the same ones."""
    return build_train_dataset(
        plan if plan is not None else plan_from_config(cfg, seed or 0),
        image_spec,
        tokenize,
        augment=cfg.augment,
        on_error=cfg.on_error,
        shuffle_seed=(seed or 0) if cfg.shuffle_buffer > 0 else None,
        augment_seed=None,  # crops from each unit's seed (a fixed seed would repeat the same crops every epoch)
        batch_size=cfg.preprocess_batch_size,
        num_cpus=cfg.cpus_per_read_task,
        concurrency=cfg.read_concurrency or None,
        state=state,
    )
