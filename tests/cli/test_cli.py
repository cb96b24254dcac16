"""The CLI: every recipe passes `raykd check`; bad input fails before Ray with the option named."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from raykd.cli import main
from tests.conftest import REPO, tiny_overrides

RECIPES = sorted(p.relative_to(REPO) for p in (REPO / "recipes").rglob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=str)
def test_every_recipe_passes_check(recipe, capsys):
    assert main(["check", str(REPO / recipe)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "trainable" in out


def test_check_reports_locked_tower(capsys):
    main(["check", str(REPO / "recipes/lit/mobilenetv3-h2-rn50text-locked-yfcc.yaml")])
    out = capsys.readouterr().out
    assert "text: openclip/RN50 (locked): 0 trainable" in out


@pytest.mark.parametrize("override, message", [
    ("loss.name=InfoNCEE", "loss.name: unknown loss 'InfoNCEE'"),
    ("model.image.builder=openclipp", "model.image.builder: unknown image tower builder 'openclipp'; did you mean 'openclip'"),
    ("model.text.builder=torchvision", "model.text.builder: unknown text tower builder 'torchvision'"),
    ("optim.lr=fast", "'optim.lr' must be float, got str 'fast'"),
    ("train.precision=fp8", "'train.precision' must be one of"),
    ("trian.epochs=1", "unknown config key 'trian'; did you mean 'train'"),
    ("loss.hparams.temperature=0.1", "temperature"),
    ("optim.name=adamx", "optim.name: unknown optimizer 'adamx'; close matches ['adamax'"),
    ("model.init_logit_scale=maybe", "'model.init_logit_scale' must be float or 'pretrained', got 'maybe'"),
])
def test_bad_recipes_exit_2_naming_the_option(override, message, capsys):
    assert main(["check", str(REPO / "recipes/quickstart.yaml"), "--set", override]) == 2
    assert message in capsys.readouterr().err


def test_unknown_model_name(capsys):
    code = main(["check", str(REPO / "recipes/clip/rn50-scratch-cc3m.yaml"), "--set", "model.image.name=RN51"])
    assert code == 2 and "unknown open_clip model 'RN51'" in capsys.readouterr().err


def test_unknown_pretrained_tag(capsys):
    code = main(["check", str(REPO / "recipes/clip/rn50-scratch-cc3m.yaml"), "--set", "model.image.pretrained=opneai"])
    assert code == 2 and "model.image.pretrained: unknown tag 'opneai'" in capsys.readouterr().err


def test_missing_recipe(capsys, tmp_path):
    assert main(["check", str(tmp_path / "nope.yaml")]) == 2
    assert "recipe file not found" in capsys.readouterr().err


def test_train_missing_and_empty_shards_fail_before_ray(builtin_root, tmp_path, capsys):
    import ray

    was_running = ray.is_initialized()
    missing = json.dumps([str(tmp_path / "nowhere" / "shard-{000000..000003}.tar")])
    args = ["train", str(REPO / "recipes/quickstart.yaml"), "--run-dir", str(tmp_path / "run")]
    assert main(args + ["--set", f"data.train_shards={missing}"] + [f"--set={s}" for s in tiny_overrides(builtin_root)]) == 2
    assert "nowhere" in capsys.readouterr().err
    (tmp_path / "no_tars").mkdir()
    no_tars = json.dumps([str(tmp_path / "no_tars")])
    assert main(args + ["--set", f"data.train_shards={no_tars}"]) == 2
    assert f"shard directory '{tmp_path / 'no_tars'}' contains no *.tar files" in capsys.readouterr().err
    assert ray.is_initialized() == was_running  # the errors came before Ray started


def test_protoclip_episode_smaller_than_its_prototypes_fails_before_ray(builtin_root, tmp_path, capsys):
    import ray

    was_running = ray.is_initialized()
    args = ["train", str(REPO / "recipes/quickstart.yaml"), "--run-dir", str(tmp_path / "run"),
            "--set", "loss.name=ProtoCLIP"] + [f"--set={s}" for s in tiny_overrides(builtin_root)]
    assert main(args) == 2  # the authors' default k=20000 against 512 built-in samples
    assert "loss.hparams.n_prototypes = 20000 exceeds the 512 samples trained per epoch" in capsys.readouterr().err
    assert ray.is_initialized() == was_running


def test_data_make_writes_the_builtin_set(tmp_path, capsys):
    assert main(["data", "make", "digits", "--out", str(tmp_path)]) == 0
    root = tmp_path / "digits"
    meta = json.loads((root / "meta.json").read_text())
    assert meta["num_classes"] == 10 and (root / "classnames.txt").read_text().split("\n")[3] == "three"
    assert sum(json.loads((root / "train" / "sizes.json").read_text()).values()) == meta["train_size"]
    assert main(["data", "make", "letters", "--out", str(tmp_path)]) == 2
    assert "unknown built-in data set 'letters'" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "raykd", "check", str(REPO / "recipes/quickstart.yaml")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "quickstart.yaml: OK" in out.stdout


def test_bad_eval_task_option_fails_at_check(capsys):
    code = main(["check", str(REPO / "recipes/quickstart.yaml"), "--set", "eval.zeroshot.options={bogus: 1}"])
    assert code == 2 and "bogus" in capsys.readouterr().err


def test_data_cache_features_refuses_what_cannot_be_cached(capsys):
    recipe = str(REPO / "recipes/quickstart.yaml")
    assert main(["data", "cache-features", recipe]) == 2  # nothing locked
    assert "no locked tower to cache" in capsys.readouterr().err
    assert main(["data", "cache-features", recipe, "--tower", "image", "--set", "model.image.lock=true"]) == 2
    assert "data.augment: light: random crops" in capsys.readouterr().err
