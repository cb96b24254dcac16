"""Training data: webdataset shards -> decoded, preprocessed, tokenized batches.

Two executors over the same per-shard function (`shard_batches`: tar bytes -> column batches):
  * `build_train_dataset`: Ray Data. One read task per shard reads the tar's bytes and, fused with
    it, a generator `map_batches` parses, decodes (PIL), crops/resizes/normalises (one torch op per
    batch) and tokenizes, emitting finished column batches. Nothing but tensor copies happens in
    the train workers, which get their split through `ray.train.get_dataset_shard("train")`.
  * `iterate_shards_torch`: webdataset's shard list + worker splitting + a `torch.utils.data.DataLoader`
    (tests, benchmarks, and runs without Ray).

Rows: `image` float32 [3, S, S], one int64 [L] column per key returned by `tokenize`, `label`
int64 (-1 without `cls`). Bad data follows `on_error` (see `raykd.data.samples`); skips are counted
per shard URL and reason in `raykd.data.skips` under the counter name passed here.
"""
from __future__ import annotations

import zlib
from typing import Iterable, Iterator

import numpy as np
import ray
import torch
import webdataset as wds
from ray.data.datasource.file_based_datasource import FileShuffleConfig

from raykd.data.samples import SampleError, ShardProcessor, Tokenize
from raykd.data.shards import iter_tar_samples, validate_shards
from raykd.data.skips import report_local_skips, report_skips
from raykd.data.transforms import ImageSpec


def read_shard(data, url: str, processor: ShardProcessor) -> list[dict]:
    """All raw samples of one tar (bytes or stream). A corrupt/truncated tar keeps the samples read
    before the damage and reports SampleError('corrupt_tar', url, <key of last good sample>)."""
    samples: list[dict] = []
    try:
        for sample in iter_tar_samples(data, url):
            samples.append(sample)
    except Exception as exc:  # tarfile.ReadError, EOFError, ValueError from webdataset's grouping
        last = samples[-1]["__key__"] if samples else "<start of shard>"
        processor.skip(SampleError("corrupt_tar", url, f"after {last}", exc))
    return samples


def shard_batches(data, url: str, processor: ShardProcessor, shuffle_seed: int | None = None) -> Iterator[dict]:
    """Column batches of one shard; with `shuffle_seed`, the shard's samples in a seeded random order."""
    samples = read_shard(data, url, processor)
    if shuffle_seed is not None:
        order = np.random.default_rng([shuffle_seed, zlib.crc32(url.encode())]).permutation(len(samples))
        samples = [samples[i] for i in order]
    processor.start_shard(url)
    yield from processor.batches(samples)


def _ray_shard_batches(batch: dict, processor: ShardProcessor, urls: dict, counter: str, shuffle_seed):
    """map_batches UDF: {"bytes": [tar bytes], "path": [path]} -> column batches; reports skips at the end."""
    for data, path in zip(batch["bytes"], batch["path"]):
        yield from shard_batches(data, urls.get(str(path), str(path)), processor, shuffle_seed)
    report_skips(processor.pop_skips(), counter)


def build_train_dataset(
    shard_urls: str | list[str],
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
    counter: str = "default",
) -> ray.data.Dataset:
    """The training stream as a Ray Dataset; iterate with `ds.iter_torch_batches(batch_size=B, drop_last=True)`.

    Args:
        shard_urls: anything `expand_shard_spec` takes; local shards are checked here.
        image_spec: the image tower's `ImageSpec`.
        tokenize: picklable `list[str] -> {name: int64 [n, L]}`; each name becomes a column.
        augment: 'none' | 'light' | 'clip' (see `raykd.data.transforms`).
        on_error: 'skip' (drop and count bad samples/shards) or 'raise' (`SampleError` naming shard and key).
        shuffle_seed: None keeps shard and sample order; an int shuffles shard order (differently every
            epoch) and the samples within each shard. Combine with `local_shuffle_buffer_size` when iterating.
        augment_seed: None draws crops from fresh entropy; an int makes crops a function of (seed, shard).
        batch_size: rows per preprocessing batch inside Ray Data (not the training batch size).
        num_cpus: logical CPUs per read+preprocess task; concurrency: max concurrent tasks (None: Ray decides).
        counter: name of the skip counter (`raykd.data.skips.skipped_counts(counter)`).
    Returns:
        Dataset with columns image float32 [3, S, S], <tokenize keys> int64 [L], label int64.
    """
    urls = validate_shards(shard_urls)
    processor = ShardProcessor(image_spec, tokenize, augment, on_error, batch_size, augment_seed)
    shuffle = FileShuffleConfig(seed=shuffle_seed) if shuffle_seed is not None else None
    ds = ray.data.read_binary_files(
        urls, include_paths=True, shuffle=shuffle, override_num_blocks=len(urls), num_cpus=num_cpus
    )
    ray_paths = {u.split("://", 1)[-1]: u for u in urls}  # Ray reports s3://b/k as b/k
    # With per-operator reservation on, this one-operator pipeline ran one task at a time on small
    # machines (measured on 2 CPUs: tasks strictly serial); off, it uses every CPU it is given.
    ds.context.op_resource_reservation_enabled = False
    return ds.map_batches(  # batch_size=None keeps read + preprocess fused in one task per shard
        _ray_shard_batches,
        batch_size=None,
        batch_format="numpy",
        fn_kwargs=dict(processor=processor, urls=ray_paths, counter=counter, shuffle_seed=shuffle_seed),
        num_cpus=num_cpus,
        concurrency=concurrency,
    )


def torch_batches(ds, batch_size: int, *, shuffle_buffer: int = 0, prefetch_batches: int = 2,
                  seed: int | None = None) -> Iterable[dict[str, torch.Tensor]]:
    """Training batches of a Dataset or a train worker's DataIterator: full batches only, with Ray's
    local shuffle buffer when `shuffle_buffer > 0`."""
    return ds.iter_torch_batches(
        batch_size=batch_size, drop_last=True, prefetch_batches=prefetch_batches,
        local_shuffle_buffer_size=shuffle_buffer or None, local_shuffle_seed=seed,
    )


class _TorchShardStage:
    """webdataset pipeline stage: {"url", "stream"} per shard -> column batches across this worker's shards."""

    def __init__(self, processor: ShardProcessor, counter: str):
        self.processor, self.counter = processor, counter

    def __call__(self, sources: Iterable[dict]) -> Iterator[dict]:
        def samples():
            for src in sources:
                self.processor.start_shard(src["url"])
                yield from read_shard(src["stream"], src["url"], self.processor)

        yield from self.processor.batches(samples())
        report_local_skips(self.processor.pop_skips(), self.counter)


def iterate_shards_torch(
    shard_urls: str | list[str],
    image_spec: ImageSpec,
    tokenize: Tokenize,
    batch_size: int,
    num_workers: int = 0,
    *,
    augment: str = "none",
    on_error: str = "skip",
    augment_seed: int | None = None,
    counter: str = "default",
) -> torch.utils.data.DataLoader:
    """The same batches through webdataset + a DataLoader: dicts of tensors, image float32 [B, 3, S, S],
    token keys int64 [B, L], label int64 [B]. Shards are split across the `num_workers` processes (each
    worker's last batch may be short). Skips are counted in the process-local table of `counter`, so
    they are visible (`skipped_counts(counter)` without Ray) only with num_workers=0."""
    urls = validate_shards(shard_urls)
    processor = ShardProcessor(image_spec, tokenize, augment, on_error, batch_size, augment_seed)
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(urls),
        wds.split_by_worker,
        wds.tariterators.url_opener,
        _TorchShardStage(processor, counter),
    )
    return torch.utils.data.DataLoader(pipeline, batch_size=None, num_workers=num_workers,
                                       persistent_workers=False)


def resolve_train_shards(cfg) -> list[str]:
    """Shard URLs of a `DataConfig`: `train_shards` if given, else the built-in set's train split
    (generated on first use). Validates local shards; call on the driver before starting Ray.

    Raises:
        FileNotFoundError / ValueError: missing or empty shards, unknown built-in name, neither given.
    """
    from raykd.data.builtin import ensure_builtin, shard_paths

    if cfg.train_shards:
        return validate_shards(list(cfg.train_shards))
    if not cfg.builtin:
        raise ValueError("data: set either data.train_shards or data.builtin")
    root = ensure_builtin(cfg.builtin, cfg.builtin_root or None, cfg.builtin_train_size or None)
    return validate_shards(shard_paths(root, "train"))


def build_from_config(cfg, image_spec: ImageSpec, tokenize: Tokenize, *, seed: int | None = None,
                      counter: str = "default", shard_urls: list[str] | None = None) -> ray.data.Dataset:
    """`build_train_dataset` with the settings of a `DataConfig`: shards and samples shuffled with `seed`
    when cfg.shuffle_buffer > 0 (pass cfg.shuffle_buffer to `torch_batches` too); crops always fresh."""
    return build_train_dataset(
        shard_urls if shard_urls is not None else resolve_train_shards(cfg),
        image_spec,
        tokenize,
        augment=cfg.augment,
        on_error=cfg.on_error,
        shuffle_seed=(seed or 0) if cfg.shuffle_buffer > 0 else None,
        augment_seed=None,  # a seed would repeat the same crops every epoch
        batch_size=cfg.preprocess_batch_size,
        num_cpus=cfg.cpus_per_read_task,
        concurrency=cfg.read_concurrency or None,
        counter=counter,
    )
