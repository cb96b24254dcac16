"""`data:` in recipes: the sources list, epoch modes, and validation errors that name the key."""
from __future__ import annotations

import pytest

from raykd.config.loading import ConfigError, build_config, config_to_dict, yaml_load
from raykd.config.schema import DataConfig, SourceConfig

RECIPE = """
data:
  sources:
    - {shards: "/d/cc3m/{00000..00010}.tar", weight: 0.7}
    - {shards: "/d/yfcc/", weight: 0.3}
    - {coco: /d/coco/captions_train2017.json, images: /d/coco/train2017, weight: 1}
    - {classification: shapes, weight: 1}
  samples_per_epoch: 100000
  episode_size: 0
  dataset_size: 0
"""


def test_recipe_shape_loads_and_round_trips():
    cfg = build_config(yaml_load(RECIPE))
    first, _, coco, cls = cfg.data.sources
    assert first == SourceConfig(shards=["/d/cc3m/{00000..00010}.tar"], weight=0.7)
    assert (coco.coco, coco.images, cls.classification, cls.weight) == (
        "/d/coco/captions_train2017.json", "/d/coco/train2017", "shapes", 1.0)
    assert build_config(config_to_dict(cfg)).data == cfg.data
    assert DataConfig(sources=["/d/a.tar"]).sources == [SourceConfig(shards=["/d/a.tar"])]


@pytest.mark.parametrize("data,message", [
    ({"sources": [{"shard": "x"}]},
     r"unknown config key 'data.sources\[0\].shard'; did you mean 'data.sources\[0\].shards'"),
    ({"sources": ["a", {"shards": "b", "coco": "c.json", "images": "i"}]}, r"'data.sources\[1\]' needs exactly one of"),
    ({"sources": [{}]}, r"'data.sources\[0\]' needs exactly one of .* got none"),
    ({"sources": [{"coco": "c.json"}]}, r"'data.sources\[0\].images' goes with"),
    ({"sources": [{"shards": "a", "weight": 0}], "samples_per_epoch": 5}, r"'data.sources\[0\].weight' must be > 0"),
    ({"sources": [{"shards": "a", "weight": "x"}]}, r"'data.sources\[0\].weight' must be float"),
    ({"sources": [{"shards": "a", "weight": 1}, {"shards": "b"}], "samples_per_epoch": 5},
     r"'data.sources\[1\].weight' is missing"),
    ({"sources": [{"shards": "a", "weight": 2}]}, r"'data.sources\[0\].weight': weights set the mix of sampled epochs"),
    ({"sources": [{"shards": "a", "templates": ["a {}"]}]}, r"'data.sources\[0\].templates'"),
    ({"sources": [{"classification": "shapes", "templates": ["no placeholder"]}]}, r"'data.sources\[0\].templates'"),
    ({"sources": [{"coco": "c.json", "images": "i", "labels": True}]}, r"'data.sources\[0\].labels' applies"),
    ({"sources": [42]}, r"'data.sources\[0\]' must be a mapping"),
    ({"sources": ["a"], "train_shards": ["b"]}, r"'data.train_shards' and 'data.sources' are both set"),
    ({"samples_per_epoch": 10, "episode_size": 5}, r"'data.samples_per_epoch' .* and 'data.episode_size'"),
    ({"dataset_size": -1}, r"'data.dataset_size' must be >= 0"),
])
def test_errors_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        build_config({"data": data})
