"""Recipes: inheritance, typed overrides, and errors that name the key."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from raykd.config import ConfigError, load_config, save_config
from raykd.config.loading import build_config, parse_override
from raykd.config.schema import Config

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults_inheritance_merges_key_by_key(tmp_path):
    write(tmp_path / "base.yaml", {"optim": {"lr": 0.1, "weight_decay": 0.5}, "train": {"epochs": 3}})
    child = write(tmp_path / "child.yaml", {"defaults": "base.yaml", "optim": {"lr": 0.01}})
    cfg = load_config(child)
    assert cfg.optim.lr == 0.01 and cfg.optim.weight_decay == 0.5 and cfg.train.epochs == 3


def test_replace_tag_takes_the_childs_mapping_whole(tmp_path):
    write(tmp_path / "base.yaml", {"loss": {"name": "DINO", "hparams": {"n_prototypes": 64, "student_temperature": 0.2}},
                                   "optim": {"lr": 0.1, "weight_decay": 0.5}})
    child = tmp_path / "child.yaml"
    child.write_text("defaults: base.yaml\nloss:\n  name: ProtoCPC\n  hparams: !replace {n_prototypes: 32}\n"
                     "optim: !replace {lr: 0.01}\n")
    cfg = load_config(child)
    assert cfg.loss.hparams == {"n_prototypes": 32}  # the parent's student_temperature is gone
    assert cfg.optim.lr == 0.01 and cfg.optim.weight_decay == Config().optim.weight_decay != 0.5  # back to the default
    save_config(cfg, tmp_path / "saved.yaml")  # plain YAML again: no custom tag in the saved config
    assert "!replace" not in (tmp_path / "saved.yaml").read_text()
    assert load_config(tmp_path / "saved.yaml").loss.hparams == {"n_prototypes": 32}


def test_defaults_chain_and_list(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path / "a.yaml", {"train": {"epochs": 1, "batch_size": 8}})
    write(tmp_path / "sub" / "b.yaml", {"defaults": ["../a.yaml"], "train": {"epochs": 2}})
    c = write(tmp_path / "c.yaml", {"defaults": ["sub/b.yaml"], "loss": {"name": "InfoNCE"}})
    cfg = load_config(c)
    assert (cfg.train.epochs, cfg.train.batch_size) == (2, 8)


def test_circular_defaults(tmp_path):
    write(tmp_path / "a.yaml", {"defaults": "b.yaml"})
    write(tmp_path / "b.yaml", {"defaults": "a.yaml"})
    with pytest.raises(ConfigError, match="circular"):
        load_config(tmp_path / "a.yaml")


@pytest.mark.parametrize("text, expected", [
    ("optim.lr=1e-4", 1e-4), ("train.epochs=3", 3), ("train.use_gpu=true", True),
    ("data.train_shards=[a.tar, b.tar]", ["a.tar", "b.tar"]), ("run.name=hello", "hello"),
])
def test_overrides_are_typed(text, expected):
    assert parse_override(text)[1] == expected


def test_exponent_floats_in_recipes(tmp_path):
    cfg = load_config(write_text(tmp_path / "r.yaml", "optim:\n  lr: 5e-4\n  eps: 1E-8\n"))
    assert cfg.optim.lr == 5e-4 and cfg.optim.eps == 1e-8


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_overrides_apply_and_int_promotes_to_float():
    cfg = load_config(REPO / "recipes/quickstart.yaml", ["optim.lr=1", "train.epochs=2", "loss.hparams.local_loss=false"])
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.train.epochs == 2 and cfg.loss.hparams == {"local_loss": False}


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError, match=r"unknown config key 'optim.learning_rat'.*valid keys here: name, lr"):
        build_config({"optim": {"learning_rat": 0.1}})
    with pytest.raises(ConfigError, match="did you mean 'train.epochs'"):
        build_config({"train": {"epoch": 1}})


def test_unknown_section():
    with pytest.raises(ConfigError, match="unknown config key 'modle'; did you mean 'model'"):
        build_config({"modle": {}})


@pytest.mark.parametrize("data, match", [
    ({"train": {"epochs": "ten"}}, "'train.epochs' must be int, got str"),
    ({"train": {"epochs": 1.5}}, "'train.epochs' must be int, got float"),
    ({"train": {"use_gpu": "yes"}}, "'train.use_gpu' must be bool"),
    ({"train": {"epochs": True}}, "'train.epochs' must be int, got bool"),
    ({"model": {"image": {"head": 3}}}, "model.image.head: expected a mapping"),
    ({"data": {"train_shards": "x.tar"}}, "'data.train_shards' must be list"),
])
def test_wrong_types_name_the_key(data, match):
    with pytest.raises(ConfigError, match=match):
        build_config(data)


def test_value_outside_choices_lists_them():
    with pytest.raises(ConfigError, match=r"'loss.teacher' must be one of \['text', 'image'\], got 'student'"):
        build_config({"loss": {"teacher": "student"}})


def test_missing_recipe_and_missing_parent(tmp_path):
    with pytest.raises(ConfigError, match="recipe file not found: .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    child = write(tmp_path / "child.yaml", {"defaults": "gone.yaml"})
    with pytest.raises(ConfigError, match="`defaults` names a missing file: .*gone.yaml"):
        load_config(child)


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(REPO / "recipes/quickstart.yaml", ["optim.lr"])


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(REPO / "recipes/quickstart.yaml", ["optim.lr=0.003"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg


@pytest.mark.parametrize("override, message", [
    ("optim.image_layer_decay=0", r"optim.image_layer_decay must be in \(0, 1\] \(1: no layer-wise decay\), got 0"),
    ("optim.text_layer_decay=1.2", r"optim.text_layer_decay must be in \(0, 1\]"),
    ("optim.backbone_lr_ratio=-0.1", "optim.backbone_lr_ratio must be >= 0, got -0.1"),
    ("optim.ema_decay=1.0", r"optim.ema_decay must be in \[0, 1\) \(0: no EMA\), got 1.0"),
    ("optim.wise_ft_alpha=1.5", r"optim.wise_ft_alpha must be in \[0, 1\]"),
    ("train.batch_size=0", "train.num_workers and train.batch_size must be >= 1"),
    ("train.num_workers=0", "train.num_workers and train.batch_size must be >= 1"),
    ("train.min_workers=3", r"train.min_workers must be in \[0, train.num_workers = 2\] \(0: not elastic\), got 3"),
    ("train.elastic_resize_interval_s=0", "train.elastic_resize_interval_s must be > 0, got 0"),
])
def test_value_ranges_fail_at_load_naming_the_option(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(REPO / "recipes/quickstart.yaml", [override])


def test_sections_check_their_ranges_again_after_changes():
    cfg = build_config({"optim": {"ema_decay": 0.999}, "train": {"batch_size": 8}})
    cfg.check()
    cfg.optim.ema_decay = -0.5
    with pytest.raises(ValueError, match=r"optim.ema_decay must be in \[0, 1\)"):
        cfg.check()
    cfg.optim.ema_decay, cfg.train.batch_size = 0.0, -1
    with pytest.raises(ValueError, match="train.batch_size must be >= 1"):
        cfg.check()


def test_an_elastic_run_keeps_its_global_batch_for_every_worker_count():
    train = load_config(REPO / "recipes/quickstart.yaml", ["train.num_workers=4", "train.min_workers=2",
                                                          "train.batch_size=12"]).train
    assert train.elastic and list(train.worker_counts()) == [2, 3, 4]
    assert [train.batch_per_worker(w) for w in train.worker_counts()] == [24, 16, 12]  # 48 samples a step each
    fixed = load_config(REPO / "recipes/quickstart.yaml", ["train.num_workers=4", "train.batch_size=12"]).train
    assert not fixed.elastic and list(fixed.worker_counts()) == [4] and fixed.batch_per_worker(4) == 12
    with pytest.raises(ValueError, match=r"train.batch_size x train.num_workers = 40 \(the global batch, kept whatever "
                                         r"the worker count\) cannot be split evenly among \[3\] workers"):
        load_config(REPO / "recipes/quickstart.yaml", ["train.num_workers=4", "train.min_workers=2",
                                                       "train.batch_size=10"])
