"""Webdataset shards: writing (`write_shards`, `csv_to_shards`), resolving shard specs to URLs, sizes, reading.

A shard is a POSIX tar of samples; each sample is a group of files `<key>.<ext>` (here `jpg`, `txt`,
`cls`). Writing and tar parsing are webdataset's own (`ShardWriter`, `tar_file_iterator`,
`group_by_keys`); this module adds the bookkeeping around them: `sizes.json`, spec expansion
(brace patterns, directories, globs, `file://`, and any fsspec URL: s3://, gs://, memory://, ...),
sample counts (`shard_sizes`), opening any URL (`open_url`) and clear errors for missing shards.
"""
from __future__ import annotations

import csv
import glob
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Iterable, Iterator

import braceexpand
import webdataset as wds
from webdataset.tariterators import base_plus_ext, group_by_keys, tar_file_iterator

SIZES_FILE = "sizes.json"


def write_shards(
    samples: Iterable[dict], out_dir: str | Path, shard_size: int = 1000, prefix: str = "shard"
) -> dict[str, int]:
    """Write `samples` into `<out_dir>/<prefix>-000000.tar, ...` and `<out_dir>/sizes.json`.

    Each sample is a dict with a `__key__` and byte/str values (`jpg`, `txt`, `cls`, ...); str and int
    values are encoded by webdataset's default encoder. Tar headers carry mtime 0, so the same samples
    always give the same bytes. Returns {shard file name: number of samples} (also written to sizes.json).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, int] = {}
    pattern = str(out_dir / f"{prefix}-%06d.tar")
    with wds.ShardWriter(pattern, maxcount=shard_size, verbose=0, mtime=0) as sink:  # int: no PAX headers
        for sample in samples:
            sink.write(sample)
            name = os.path.basename(sink.fname)
            sizes[name] = sizes.get(name, 0) + 1
    if not sizes:  # ShardWriter opens its first shard eagerly; don't leave an empty tar behind
        os.remove(pattern % 0)
    (out_dir / SIZES_FILE).write_text(json.dumps(sizes, indent=1, sort_keys=True) + "\n")
    return sizes


def csv_to_shards(
    table: str | Path, out_dir: str | Path, *, image_col: str = "filepath", caption_col: str = "title",
    label_col: str | None = None, sep: str | None = None, shard_size: int = 1000, prefix: str = "shard",
) -> dict[str, int]:
    """Pack a CSV/TSV of (image path, caption[, label]) rows into shards; see `write_shards`.

    Image files are stored as-is under their extension (`jpg` for .jpeg); relative paths are read
    relative to the table's folder. `sep` defaults to a tab for .tsv files and a comma otherwise.
    Raises KeyError naming a missing column, FileNotFoundError naming a missing image.
    """
    table = Path(table)
    sep = sep or ("\t" if table.suffix.lower() == ".tsv" else ",")

    def samples():
        with open(table, newline="", encoding="utf-8") as f:
            for i, row in enumerate(csv.DictReader(f, delimiter=sep)):
                for col in (image_col, caption_col, label_col):
                    if col is not None and col not in row:
                        raise KeyError(f"{table}: no column {col!r} (columns: {', '.join(row)})")
                image = table.parent / row[image_col]
                ext = image.suffix.lower().lstrip(".").replace("jpeg", "jpg")
                sample = {"__key__": f"{i:09d}", ext: image.read_bytes(), "txt": row[caption_col]}
                if label_col is not None:
                    sample["cls"] = str(int(row[label_col]))
                yield sample

    return write_shards(samples(), out_dir, shard_size=shard_size, prefix=prefix)


def is_remote(url: str) -> bool:
    """True for URLs that are not local files: `pipe:` and any `scheme://` but `file://` (s3, gs, memory, ...)."""
    return url.startswith("pipe:") or ("://" in url and not url.startswith("file://"))


def local_path(url: str) -> str:
    """Strip a `file://` scheme; other strings are returned unchanged."""
    return url[len("file://"):] if url.startswith("file://") else url


def open_url(url: str, mode: str = "rb"):
    """A file object for a local path, a `file://` URL, a `pipe:` command (webdataset's) or any fsspec URL."""
    if url.startswith("pipe:"):
        return wds.gopen(url, mode)
    if is_remote(url):
        import fsspec

        return fsspec.open(url, mode).open()
    return open(local_path(url), mode)


def read_url(url: str) -> bytes:
    """The bytes at `url` (see `open_url`). Raises FileNotFoundError / OSError as the filesystem does."""
    with open_url(url) as f:
        return f.read()


def expand_shard_spec(spec: str | list[str]) -> list[str]:
    """Resolve shard specs to a flat list of shard URLs.

    Each spec is a brace pattern (`data/shard-{000000..000009}.tar`), a directory (its `*.tar`, sorted),
    a glob (`data/*.tar`), a local path or `file://` URL (returned as a local path), or a remote URL.
    Local shards are checked to exist; a remote directory (ending in `/`) or glob is listed through
    fsspec; other remote URLs (s3://, gs://, http(s)://, pipe:, ...) pass through unchecked.

    Raises:
        FileNotFoundError: naming the path, for a missing local shard, or a directory/pattern with no shards.
    """
    specs = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    urls: list[str] = []
    for one in specs:
        for url in braceexpand.braceexpand(str(one)):
            urls.extend(_expand_one(url))
    if not urls:
        raise FileNotFoundError(f"no shards in {spec!r}")
    return urls


def _expand_one(url: str) -> list[str]:
    if is_remote(url):
        return _expand_remote(url)
    path = local_path(url)
    if os.path.isdir(path):
        found = sorted(glob.glob(os.path.join(path, "*.tar")))
        if not found:
            raise FileNotFoundError(f"shard directory {path!r} contains no *.tar files")
        return found
    if glob.has_magic(path):
        found = sorted(glob.glob(path))
        if not found:
            raise FileNotFoundError(f"no shards match {path!r}")
        return found
    if not os.path.isfile(path):
        raise FileNotFoundError(f"shard {path!r} does not exist")
    return [path]


def _expand_remote(url: str) -> list[str]:
    if url.startswith("pipe:") or not (url.endswith("/") or glob.has_magic(url.split("://", 1)[1])):
        return [url]
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    pattern = path.rstrip("/") + "/*.tar" if url.endswith("/") else path
    found = sorted(fs.unstrip_protocol(p) for p in fs.glob(pattern))
    if not found:
        raise FileNotFoundError(f"no shards match {url!r}")
    return found


def validate_shards(spec: str | list[str]) -> list[str]:
    """Expand `spec` and check every local shard is a non-empty file; call this before starting Ray.

    Returns the expanded URL list. Raises FileNotFoundError (missing path, no shards) or
    ValueError (an empty local shard file), naming the path.
    """
    urls = expand_shard_spec(spec)
    empty = empty_local_shards(urls)
    if empty:
        raise ValueError(f"shard {empty[0]!r} is an empty file")
    return urls


def empty_local_shards(urls: list[str]) -> list[str]:
    """The local shard files among `urls` that are empty (zero bytes)."""
    return [url for url in urls if not is_remote(url) and os.path.getsize(url) == 0]


def usable_shards(spec: str | list[str], on_error: str = "raise") -> tuple[list[str], dict[str, dict[str, int]]]:
    """`validate_shards`, except that under `on_error: skip` an empty local shard file (a failed download,
    common in converted data) is left out and counted instead: returns (urls, {url: {"empty_shard": 1}}).
    Raises ValueError when every shard is empty: there would be nothing to train on."""
    if on_error != "skip":
        return validate_shards(spec), {}
    urls = expand_shard_spec(spec)
    empty = empty_local_shards(urls)
    if len(empty) == len(urls):
        raise ValueError(f"every shard of {spec!r} is an empty file ({len(urls)} shards)")
    return [u for u in urls if u not in empty], {u: {"empty_shard": 1} for u in empty}


def read_sizes(shard_dir: str | Path) -> dict[str, int]:
    """The {shard file name: n samples} map in `<shard_dir>/sizes.json`."""
    return json.loads((Path(shard_dir) / SIZES_FILE).read_text())


def _read_json(url: str) -> dict | None:
    try:
        with open_url(url) as f:
            return json.loads(f.read())
    except (OSError, ValueError):  # missing (FileNotFoundError is an OSError) or not JSON
        return None


def shard_sizes(urls: list[str]) -> list[int]:
    """Samples in each shard: from the `sizes.json` beside it, else its img2dataset `<stem>_stats.json`
    ("successes"), else, for a local shard, by counting the tar's samples.

    Raises:
        ValueError: naming a remote shard with neither file.
    """
    tables: dict[str, dict] = {}
    sizes = []
    for url in urls:
        parent, name = url.rsplit("/", 1) if "/" in url else (".", url)
        if parent not in tables:
            tables[parent] = _read_json(f"{parent}/{SIZES_FILE}") or {}
        n = tables[parent].get(name)
        if n is None:
            n = (_read_json(f"{parent}/{name.rsplit('.', 1)[0]}_stats.json") or {}).get("successes")
        if n is None and not is_remote(url):
            n = count_tar_samples(url)
        if n is None:
            raise ValueError(f"no sample count for shard {url!r}: put a sizes.json ({{shard name: samples}}) "
                             "beside it, as `raykd data convert` does")
        sizes.append(int(n))
    return sizes


def count_tar_samples(path: str) -> int:
    """Samples (distinct keys) in a local tar, from its headers only; a damaged tar counts up to the damage."""
    keys, last = 0, None
    try:
        with tarfile.open(local_path(path), "r:") as tar:
            for member in tar:
                key = base_plus_ext(member.name)[0] if member.isfile() else None
                if key is not None and key != last:
                    keys, last = keys + 1, key
    except (tarfile.TarError, EOFError, OSError):
        pass
    return keys


def iter_tar_samples(data, url: str = "", handler=wds.reraise_exception) -> Iterator[dict]:
    """Samples (`{"__key__", "__url__", ext: bytes, ...}`) of one tar given as bytes or a file object.

    `handler(exc) -> bool` is webdataset's: return True to continue after an error, False to stop,
    or raise. A truncated tar raises `tarfile.ReadError` (or EOFError) from the tar reader itself.
    """
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    files = ({**f, "__url__": url} for f in tar_file_iterator(stream, handler=handler))
    yield from group_by_keys(files, handler=handler)
