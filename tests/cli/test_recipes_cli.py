"""`raykd recipes list | copy` and packaged names in `raykd check` / `raykd tune`'s sweep check."""
from __future__ import annotations

from raykd.cli import main


def test_list_shows_names_and_descriptions(capsys):
    assert main(["recipes", "list"]) == 0
    out = capsys.readouterr().out
    assert "quickstart" in out and "Tiny CLIP on the built-in `shapes` data" in out
    recipes, sweeps = out.split("sweeps (raykd tune NAME):")
    assert "distill/rkd-minilm-teacher-shapes" in recipes and "sweeps/losses" in sweeps


def test_copy_then_check_the_copy(tmp_path, capsys):
    assert main(["recipes", "copy", "quickstart", str(tmp_path)]) == 0
    assert (tmp_path / "quickstart.yaml").read_text().startswith("# Tiny CLIP")
    assert main(["recipes", "copy", "quickstart", str(tmp_path)]) == 2
    assert "not overwriting" in capsys.readouterr().err
    assert main(["recipes", "copy", "quickstart", str(tmp_path), "--force"]) == 0
    assert main(["check", str(tmp_path / "quickstart.yaml")]) == 0


def test_check_takes_packaged_names(capsys):
    assert main(["check", "quickstart"]) == 0
    assert "quickstart: OK" in capsys.readouterr().out
    assert main(["check", "sweeps/losses"]) == 0  # a sweep, by name
    assert main(["check", "quikstart"]) == 2
    assert "did you mean 'quickstart'" in capsys.readouterr().err
