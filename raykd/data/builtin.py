"""The built-in data sets, generated deterministically into a cache directory on first use.

Layout of `<root>/<name>/`:
    train/shard-000000.tar ... + sizes.json   image-caption pairs (`jpg`, `txt`, `cls`)
    test/shard-000000.tar ...  + sizes.json   held-out labelled split, same format
    classnames.txt   one class name per line (line index = label)
    templates.txt    one zero-shot prompt template per line, with a `{}` placeholder
    meta.json        {"name", "num_classes", "image_size", "train_size", "test_size", "version", "digest"}

Generation goes to a temporary sibling directory renamed into place atomically, so concurrent
callers (several Ray workers, several test processes) are safe: a loser of the race discards its
copy and uses the winner's.

On a cluster every node has its own cache, so training names built-in shards by `builtin://` URLs
(`builtin_url`) that carry the data set's content digest instead of the driver's local path: the read task
generates the data set on its own node on first read (`builtin_shard_path`) and checks that what it made is
byte for byte what the driver planned with.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import socket
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from raykd.data.shards import iter_tar_samples, read_sizes, write_shards
from raykd.data.synthetic import BUILTIN_SETS, SyntheticSet

TRAIN_SHARD_SIZE = 512
TEST_SHARD_SIZE = 1000
URL_SCHEME = "builtin://"
_URL = re.compile(r"builtin://(?P<name>[a-z]+?)(?:-train(?P<n>\d+))?@(?P<digest>[0-9a-f]+)/(?P<file>.+)")


def list_builtin() -> list[str]:
    """Names of the built-in data sets."""
    return sorted(BUILTIN_SETS)


def default_root() -> Path:
    """`$RAYKD_CACHE/builtin` or `~/.cache/raykd/builtin`."""
    return Path(os.environ.get("RAYKD_CACHE") or Path.home() / ".cache" / "raykd") / "builtin"


def _get_set(name: str) -> SyntheticSet:
    if name not in BUILTIN_SETS:
        raise ValueError(f"unknown built-in data set {name!r}; valid names: {', '.join(list_builtin())}")
    return BUILTIN_SETS[name]


def ensure_builtin(name: str, root: str | Path | None = None, train_size: int | None = None) -> Path:
    """Return the directory of built-in data set `name`, generating it first if missing.

    The directory is `<root>/<name>`, or `<root>/<name>-train<N>` for a non-default `train_size`
    (so differently sized copies never overwrite each other). `root` defaults to `default_root()`.

    Raises:
        ValueError: unknown `name` (the message lists the valid ones), or a bad `train_size`.
    """
    spec = _get_set(name)
    n = spec.default_train_size if train_size in (None, 0) else int(train_size)
    if n <= 0:
        raise ValueError(f"train_size must be positive, got {train_size}")
    root = Path(root) if root else default_root()
    final = root / (name if n == spec.default_train_size else f"{name}-train{n}")
    if _is_current(final, spec):
        return final
    root.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if final.exists():  # an older generator version: move it aside (atomically) and regenerate
        try:
            os.rename(final, root / f".{final.name}.stale-{tag}")
        except OSError:
            pass  # another process moved or replaced it first
        shutil.rmtree(root / f".{final.name}.stale-{tag}", ignore_errors=True)
    tmp = root / f".{final.name}.tmp-{tag}"
    try:
        _generate(spec, n, tmp)
        os.rename(tmp, final)  # atomic; fails if another process already put `final` in place
    except OSError:
        if not _is_current(final, spec):
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _is_current(path: Path, spec: SyntheticSet) -> bool:
    try:
        meta = json.loads((path / "meta.json").read_text())
        return meta["version"] == spec.version and bool(meta["digest"])
    except (OSError, ValueError, KeyError):
        return False


def _content_digest(out: Path) -> str:
    """sha256 over the split folders' files (names and bytes, in name order): what every node must reproduce."""
    h = hashlib.sha256()
    for path in sorted(p for split in ("train", "test") for p in (out / split).iterdir()):
        h.update(f"{path.parent.name}/{path.name}\0".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _generate(spec: SyntheticSet, train_size: int, out: Path) -> None:
    out.mkdir(parents=True)
    write_shards(spec.samples("train", train_size), out / "train", shard_size=TRAIN_SHARD_SIZE)
    write_shards(spec.samples("test", spec.test_size), out / "test", shard_size=TEST_SHARD_SIZE)
    (out / "classnames.txt").write_text("\n".join(spec.classnames) + "\n")
    (out / "templates.txt").write_text("\n".join(spec.templates) + "\n")
    meta = {
        "name": spec.name, "num_classes": len(spec.classnames), "image_size": spec.image_size,
        "train_size": train_size, "test_size": sum(read_sizes(out / "test").values()), "version": spec.version,
        "digest": _content_digest(out),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def builtin_digest(dataset_dir: str | Path) -> str:
    """The content digest recorded in a generated data set's meta.json."""
    return json.loads((Path(dataset_dir) / "meta.json").read_text())["digest"]


def builtin_url(dataset_dir: str | Path, path: str | Path) -> str:
    """`builtin://<folder name>@<digest>/<path relative to the folder>` for a file of a generated data set."""
    dataset_dir = Path(dataset_dir)
    relative = Path(path).resolve().relative_to(dataset_dir.resolve()).as_posix()
    return f"{URL_SCHEME}{dataset_dir.name}@{builtin_digest(dataset_dir)[:16]}/{relative}"


def is_builtin_url(url: str) -> bool:
    return url.startswith(URL_SCHEME)


def builtin_shard_path(url: str, root: str | Path | None = None) -> str:
    """The local path of a `builtin://` file on this machine, generating the data set into `root` (default:
    this process's `default_root()`) on first use.

    Raises:
        ValueError: a malformed URL, or a data set generated here whose digest differs from the URL's (the
            nodes run different versions of the generator or its libraries: they would train on other data).
    """
    match = _URL.fullmatch(url)
    if match is None:
        raise ValueError(f"{url!r} is not a built-in data URL (builtin://<name>[-train<N>]@<digest>/<file>)")
    n = match["n"] and int(match["n"])
    directory = ensure_builtin(match["name"], root, n)
    digest = builtin_digest(directory)
    if not digest.startswith(match["digest"]):
        raise ValueError(f"built-in data set {directory.name!r} generated on {socket.gethostname()} in {directory} "
                         f"has digest {digest[:16]}, but the run was planned with {match['digest']} ({url}): this "
                         "node's raykd, Pillow or numpy differ from the driver's; install the same versions "
                         "everywhere or put the data set on shared storage (data.builtin_root)")
    return str(directory / match["file"])


def read_lines(path: str | Path) -> list[str]:
    """Non-empty lines of a text file (class names, templates)."""
    return [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def shard_paths(dataset_dir: str | Path, split: str = "train") -> list[str]:
    """Sorted shard paths of `<dataset_dir>/<split>/` (names from its sizes.json)."""
    split_dir = Path(dataset_dir) / split
    return [str(split_dir / name) for name in sorted(read_sizes(split_dir))]


def load_labelled_split(
    dataset_dir: str | Path, split: str = "test"
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Decode a whole labelled split into memory, in shard order.

    Returns (images uint8 [N, H, W, 3], labels int64 [N], classnames, templates).
    """
    images, labels = [], []
    for path in shard_paths(dataset_dir, split):
        with open(path, "rb") as f:
            for sample in iter_tar_samples(f, url=path):
                images.append(np.asarray(Image.open(io.BytesIO(sample["jpg"])).convert("RGB")))
                labels.append(int(sample["cls"]))
    dataset_dir = Path(dataset_dir)
    return (
        np.stack(images),
        np.asarray(labels, dtype=np.int64),
        read_lines(dataset_dir / "classnames.txt"),
        read_lines(dataset_dir / "templates.txt"),
    )
