"""torch.hub image towers (DINO, VICReg, XCiT, ... hub models): `torch.hub.load` of an entry point, from a local
hub directory or the hub cache, never from the network at run time.

`name` is `REPO_OR_DIR:ENTRYPOINT`: a directory holding a `hubconf.py` (`/src/dino:dino_vits16`), or a GitHub
repo with its ref as torch.hub spells it (`facebookresearch/dino:main:dino_vits16`), found in the hub cache
(`cache_dir`, else `torch.hub.get_dir()`) where an earlier `torch.hub.load` (or a `git clone` into
`<hub dir>/<owner>_<repo>_<ref>`) put it. `model_config` holds the entry point's keyword arguments;
`pretrained: default` passes `pretrained=True` (its weights then come from the hub's checkpoint cache),
'' passes `pretrained=False` to an entry point that takes it. The output width is found by one dummy forward
at `image_size` (224 unless set): a [B, D] output is the feature, a [B, C, H, W] map is averaged over space.
ImageNet mean/std.
"""
from __future__ import annotations

import ast
from pathlib import Path

import torch
from torch import nn

from raykd.config.schema import TowerConfig
from raykd.models._registry import PretrainedUnavailableError, Tower, TowerDescription, register_tower
from raykd.models.torchvision_towers import IMAGENET_MEAN, IMAGENET_STD
from raykd.specs import ImageSpec


def split_name(name: str, option: str) -> tuple[str, str]:
    """'REPO_OR_DIR:ENTRYPOINT' -> (repo or dir, entry point); ValueError naming `option.name` otherwise."""
    repo, _, entry = name.rpartition(":")
    if not repo or not entry.isidentifier():
        raise ValueError(f"{option}.name: expected 'REPO_OR_DIR:ENTRYPOINT' (e.g. 'facebookresearch/dino:main:dino_vits16' "
                         f"or '/path/to/hubdir:my_model'), got '{name}'")
    return repo, entry


def hub_directory(cfg: TowerConfig, option: str) -> Path:
    """The local directory holding the repo's hubconf.py: the named directory, or the hub cache's copy of the
    GitHub repo (`<hub dir>/<owner>_<repo>_<ref>`, as torch.hub names it). Raises PretrainedUnavailableError."""
    repo, _ = split_name(cfg.name, option)
    if Path(repo).is_dir():
        return Path(repo)
    owner_repo, _, ref = repo.partition(":")
    hub_dir = Path(cfg.cache_dir or torch.hub.get_dir())
    stem = owner_repo.replace("/", "_")
    candidates = [hub_dir / f"{stem}_{ref.replace('/', '_')}"] if ref else sorted(hub_dir.glob(f"{stem}_*"))
    found = [c for c in candidates if (c / "hubconf.py").is_file()]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ValueError(f"{option}.name: several cached refs of {owner_repo} ({[f.name for f in found]}): "
                         f"name one as '{owner_repo}:REF:ENTRYPOINT'")
    target = candidates[0] if ref else hub_dir / f"{stem}_REF"
    raise PretrainedUnavailableError(
        f"{option}.name: the torch.hub repo '{repo}' is not in the hub cache, and raykd never downloads hub code "
        f"at run time. Run torch.hub.load('{repo}', ...) once on a networked machine with the same hub directory, "
        f"or git clone the repo to {target} ({option}.cache_dir, else torch.hub.get_dir(), is where it looks).")


def entry_points(directory: Path) -> list[str]:
    """The public top-level functions of `directory/hubconf.py` (torch.hub.list reads only GitHub repos)."""
    tree = ast.parse((directory / "hubconf.py").read_text())
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]


def validate_torchhub(cfg: TowerConfig, option: str) -> None:
    """'REPO_OR_DIR:ENTRYPOINT' and a known `pretrained`; the repo is not looked up (it may come later)."""
    split_name(cfg.name, option)
    if cfg.pretrained not in ("", "default"):
        raise ValueError(f"{option}.pretrained: torchhub takes 'default' (the entry point's pretrained=True) or '', "
                         f"got '{cfg.pretrained}'")


def _load(directory: Path, entry: str, cfg: TowerConfig, option: str) -> nn.Module:
    """`torch.hub.load(directory, entry, source='local', **model_config)`, with pretrained=True for 'default' and
    pretrained=False for '' (dropped again for an entry point that does not take it)."""
    kwargs = {"pretrained": bool(cfg.pretrained), **cfg.model_config}
    try:
        return torch.hub.load(str(directory), entry, source="local", **kwargs)
    except TypeError as err:
        if "pretrained" not in str(err) or "pretrained" in cfg.model_config:
            raise
        if cfg.pretrained:
            raise ValueError(f"{option}.pretrained: the entry point '{entry}' takes no 'pretrained' argument") from err
        return torch.hub.load(str(directory), entry, source="local", **cfg.model_config)


def _encode(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """images [B, 3, S, S] -> [B, D]: the first output, a feature map averaged over its spatial positions."""
    out = model(images)
    out = out[0] if isinstance(out, (tuple, list)) else out
    return out.mean(dim=(-2, -1)) if out.ndim == 4 else out


def output_width(model: nn.Module, size: int, option: str) -> int:
    """The feature width, from one eval-mode forward of a [1, 3, size, size] zero image."""
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = _encode(model, torch.zeros(1, 3, size, size))
    finally:
        model.train(training)
    if out.ndim != 2:
        raise ValueError(f"{option}.name: {option} gives outputs of shape {tuple(out.shape)}; a torch.hub image "
                         "tower needs [B, D] features or a [B, C, H, W] map")
    return int(out.shape[1])


def _spec(cfg: TowerConfig) -> ImageSpec:
    return ImageSpec(size=cfg.image_size or 224, mean=IMAGENET_MEAN, std=IMAGENET_STD)


def describe_torchhub(cfg: TowerConfig, option: str = "model.image") -> TowerDescription:
    return TowerDescription(image_spec=_spec(cfg))


@register_tower("torchhub", "image", validate=validate_torchhub, describe=describe_torchhub, label="torch.hub")
def torchhub_image(cfg: TowerConfig, option: str = "model.image") -> Tower:
    directory = hub_directory(cfg, option)
    _, entry = split_name(cfg.name, option)
    entries = entry_points(directory)
    if entry not in entries:
        raise ValueError(f"{option}.name: {directory}/hubconf.py has no entry point '{entry}'; it has {entries}")
    model = _load(directory, entry, cfg, option)
    return Tower(model, output_width(model, _spec(cfg).size, option), _encode, image_spec=_spec(cfg))
