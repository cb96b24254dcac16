"""`raykd data convert`: a CSV/TSV of (image path, caption) rows -> webdataset shards, in parallel through Ray Data.

Output, in img2dataset's layout so either tool's shards read the same:
    <out>/00000.tar ...     per sample `<key>.jpg` (or `.png` / `.webp`: the file's own bytes; other
                            formats re-encoded as JPEG), `<key>.txt` (the caption, UTF-8, byte for byte),
                            `<key>.json` ({key, caption, status, width, height, sha256, <other columns>})
    <out>/00000_stats.json  per shard: its row range, successes, and the rows skipped (with why)
    <out>/sizes.json        {shard name: samples}, what training reads to size epochs
    <out>/skipped.tsv       every skipped row: row, key, image, reason (missing_image | bad_image), error
    <out>/convert.json      the settings; a rerun with other settings into the same folder is refused
The key of row r (0-based, after the header) is `{r:09d}`; shard k holds rows [k*S, (k+1)*S) minus the
skipped ones. A shard is done once its `_stats.json` exists (tars and stats are written to temporary
names and renamed), so rerunning the same command resumes: finished shards are kept, the rest written.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import webdataset as wds

from raykd.data.shards import SIZES_FILE, is_remote, read_url

SETTINGS_FILE = "convert.json"
SKIPPED_FILE = "skipped.tsv"
KEEP_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


@dataclass(frozen=True)
class ConvertSettings:
    """What defines a conversion's output (a resumed run must match)."""

    table: str
    images_dir: str
    out_dir: str
    shard_size: int = 10000
    sep: str = "\t"
    image_key: str = "filepath"
    caption_key: str = "title"


def unescape_sep(sep: str | None, table: str) -> str:
    """`--sep` as typed on a shell ('\\t' -> tab); default: tab for .tsv, else comma."""
    if not sep:
        return "\t" if str(table).lower().endswith(".tsv") else ","
    sep = sep.encode().decode("unicode_escape") if "\\" in sep else sep
    if len(sep) != 1:
        raise ValueError(f"--sep must be one character, got {sep!r}")
    return sep


def read_table(s: ConvertSettings):
    """The table as a pyarrow Table of strings (no type guessing: captions stay byte for byte).

    Raises ValueError naming a missing column.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    with open(s.table, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f, delimiter=s.sep), [])
    for option, column in (("--image-key", s.image_key), ("--caption-key", s.caption_key)):
        if column not in header:
            raise ValueError(f"{s.table}: {option} {column!r} is not a column (columns: {', '.join(header)})")
    return pcsv.read_csv(
        s.table,
        parse_options=pcsv.ParseOptions(delimiter=s.sep, newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(column_types={c: pa.string() for c in header},
                                            strings_can_be_null=False, quoted_strings_can_be_null=False),
    )


def shard_name(k: int) -> str:
    return f"{k:05d}.tar"


def _stats_path(out: str, k: int) -> str:
    return os.path.join(out, f"{k:05d}_stats.json")


def encode_image(data: bytes) -> tuple[str, bytes, int, int]:
    """(extension, bytes, width, height) of an image file; the whole image is decoded to catch damage.
    JPEG / PNG / WebP keep their bytes; other formats are re-encoded as JPEG (quality 95). Raises PIL's errors."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img.load()
        ext = KEEP_FORMATS.get(img.format)
        if ext is None:
            buf = io.BytesIO()
            img.convert("RGB").save(buf, format="JPEG", quality=95)
            ext, data = "jpg", buf.getvalue()
        return ext, data, img.width, img.height


def _image_url(path: str, s: ConvertSettings) -> str:
    if is_remote(path) or os.path.isabs(path):
        return path
    base = s.images_dir or os.path.dirname(os.path.abspath(s.table))
    return f"{base.rstrip('/')}/{path}" if is_remote(base) else os.path.join(base, path)


def _sample(row: dict, r: int, s: ConvertSettings) -> tuple[dict | None, dict | None]:
    """(sample, None) or (None, skip record) for table row `r`."""
    key, path = f"{r:09d}", row[s.image_key]
    skip = {"row": r, "key": key, "image": path}
    try:
        data = read_url(_image_url(path, s)) if path else None
        if data is None:
            raise FileNotFoundError("empty image path")
    except OSError as exc:
        reason = "missing_image" if isinstance(exc, FileNotFoundError) else "bad_image"
        return None, {**skip, "reason": reason, "error": f"{type(exc).__name__}: {exc}"}
    try:
        ext, data, width, height = encode_image(data)
    except Exception as exc:  # PIL raises a zoo of types
        return None, {**skip, "reason": "bad_image", "error": f"{type(exc).__name__}: {exc}"}
    caption = row[s.caption_key]
    meta = {**row, "key": key, "caption": caption, "status": "success", "error_message": None,
            "width": width, "height": height, "original_width": width, "original_height": height,
            "sha256": hashlib.sha256(data).hexdigest()}
    sample = {"__key__": key, ext: data, "txt": caption.encode("utf-8"),
              "json": json.dumps(meta, ensure_ascii=False).encode("utf-8")}
    return sample, None


def _replace_atomically(path: str, write) -> None:
    tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


def convert_shard(table, k: int, s: ConvertSettings) -> dict:
    """Write shard `k` (rows [k*S, (k+1)*S) of `table`) and its `_stats.json`; returns the stats."""
    start = k * s.shard_size
    rows = table.slice(start, s.shard_size).to_pylist()
    samples, skipped = [], []
    for r, row in enumerate(rows, start):
        sample, skip = _sample(row, r, s)
        (samples if sample else skipped).append(sample or skip)
    path = os.path.join(s.out_dir, shard_name(k))
    if samples:
        def write(f):
            with wds.TarWriter(f, mtime=0) as sink:  # int mtime: plain ustar headers, reproducible bytes
                for sample in samples:
                    sink.write(sample)

        _replace_atomically(path, write)
    elif os.path.exists(path):
        os.remove(path)
    stats = {"shard": shard_name(k), "rows": [start, start + len(rows)], "count": len(rows),
             "successes": len(samples), "failed_to_download": len(skipped), "skipped": skipped}
    _replace_atomically(_stats_path(s.out_dir, k), lambda f: f.write(json.dumps(stats, indent=1).encode()))
    return stats


def _convert_batch(batch: dict, table_ref: list, settings: ConvertSettings) -> dict:
    """map_batches UDF: {"shard": [k]} -> {"shard", "stats" (JSON)}; the table comes zero-copy from the object store."""
    import ray

    table = ray.get(table_ref[0])
    stats = [json.dumps(convert_shard(table, int(k), settings)) for k in batch["shard"]]
    return {"shard": batch["shard"], "stats": np.array(stats, dtype=object)}


def _done(out: str, k: int, rows: list[int]) -> bool:
    try:
        stats = json.loads(Path(_stats_path(out, k)).read_text())
    except (OSError, ValueError):
        return False
    return stats.get("rows") == rows and (not stats["successes"] or os.path.exists(os.path.join(out, shard_name(k))))


def _check_settings(s: ConvertSettings) -> None:
    path = Path(s.out_dir) / SETTINGS_FILE
    if path.exists():
        before = json.loads(path.read_text())
        changed = [k for k, v in asdict(s).items() if before.get(k) != v]
        if changed:
            raise ValueError(f"{s.out_dir} holds a conversion with other settings ({', '.join(changed)} differ: "
                             f"{', '.join(f'{k}={before.get(k)!r}' for k in changed)}); rerun with the same "
                             "settings to resume, or pick a new --out")
    path.write_text(json.dumps(asdict(s), indent=1) + "\n")


def convert(table: str, images_dir: str, out_dir: str, *, shard_size: int = 10000, sep: str | None = None,
            image_key: str = "filepath", caption_key: str = "title", progress: bool = True,
            num_cpus: float = 1.0) -> dict:
    """Convert `table` into shards under `out_dir` (see the module doc); resumes a previous run.

    `images_dir` ('' -> the table's folder) is where relative image paths are; absolute paths and
    URLs (any fsspec scheme) are read as they are. Starts a local Ray if none is running.
    Returns {"shards", "samples", "skipped", "resumed_shards", "written_shards"}.

    Raises:
        FileNotFoundError: no table. ValueError: a missing column, a bad --sep, or other settings in `out_dir`.
    """
    if shard_size < 1:
        raise ValueError(f"--shard-size must be >= 1, got {shard_size}")
    if not os.path.isfile(table):
        raise FileNotFoundError(f"no table at {table!r}")
    s = ConvertSettings(os.path.abspath(table), images_dir if is_remote(images_dir) or not images_dir
                        else os.path.abspath(images_dir), os.path.abspath(out_dir), shard_size,
                        unescape_sep(sep, table), image_key, caption_key)
    data = read_table(s)
    os.makedirs(s.out_dir, exist_ok=True)
    _check_settings(s)
    n_shards = -(-data.num_rows // shard_size)
    ranges = {k: [k * shard_size, min((k + 1) * shard_size, data.num_rows)] for k in range(n_shards)}
    todo = [k for k in range(n_shards) if not _done(s.out_dir, k, ranges[k])]
    if todo:
        _run(data, todo, s, progress, num_cpus)
    return _finish(s, n_shards, n_resumed=n_shards - len(todo))


def _run(data, todo: list[int], s: ConvertSettings, progress: bool, num_cpus: float) -> None:
    import ray
    from tqdm import tqdm

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False  # ours below counts shards and samples
    ds = ray.data.from_items([{"shard": k} for k in todo], override_num_blocks=len(todo))
    ds.context.op_resource_reservation_enabled = False  # else this one-operator pipeline runs serially
    ds = ds.map_batches(_convert_batch, batch_size=1, batch_format="numpy", num_cpus=num_cpus,
                        fn_kwargs={"table_ref": [ray.put(data)], "settings": s})
    ok = bad = 0
    with tqdm(total=len(todo), unit="shard", desc=f"convert -> {s.out_dir}", disable=not progress) as bar:
        for row in ds.iter_rows():
            stats = json.loads(row["stats"])
            ok, bad = ok + stats["successes"], bad + stats["failed_to_download"]
            bar.set_postfix(samples=ok, skipped=bad, refresh=False)
            bar.update(1)


def _finish(s: ConvertSettings, n_shards: int, n_resumed: int) -> dict:
    """Write sizes.json and skipped.tsv from every shard's stats; return the totals."""
    sizes, skipped = {}, []
    for k in range(n_shards):
        stats = json.loads(Path(_stats_path(s.out_dir, k)).read_text())
        if stats["successes"]:
            sizes[stats["shard"]] = stats["successes"]
        skipped += stats["skipped"]
    Path(s.out_dir, SIZES_FILE).write_text(json.dumps(sizes, indent=1, sort_keys=True) + "\n")
    with open(Path(s.out_dir, SKIPPED_FILE), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["row", "key", "image", "reason", "error"])
        writer.writerows([x["row"], x["key"], x["image"], x["reason"], x["error"]] for x in skipped)
    return {"shards": len(sizes), "samples": sum(sizes.values()), "skipped": len(skipped),
            "resumed_shards": n_resumed, "written_shards": n_shards - n_resumed}
