"""Every YAML under cluster/ parses and has what its tool requires; the KubeRay job runs a recipe that
passes `raykd check`; token authentication is on everywhere and the submission helper keeps it on."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from raykd.cli import main
from tests.conftest import REPO

CLUSTER = REPO / "cluster"
YAMLS = sorted(CLUSTER.rglob("*.yaml"))
LAUNCHER = [CLUSTER / "aws.yaml", CLUSTER / "gcp.yaml"]


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def kind_of(path: Path) -> str:
    data = load(path)
    if data.get("kind") == "RayJob":
        return "rayjob"
    if "provider" in data:
        return "launcher"
    if "working_dir" in data or "env_vars" in data:
        return "runtime_env"
    return "unknown"


def test_the_expected_files_are_there():
    kinds = sorted(kind_of(p) for p in YAMLS)
    assert kinds == ["launcher", "launcher", "rayjob", "runtime_env"], dict(zip(map(str, YAMLS), kinds))
    assert {load(p)["provider"]["type"] for p in LAUNCHER} == {"aws", "gcp"}


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.name)
def test_every_yaml_parses_to_a_mapping(path):
    assert isinstance(load(path), dict) and kind_of(path) != "unknown"


@pytest.mark.parametrize("path", LAUNCHER, ids=lambda p: p.name)
def test_launcher_config_passes_rays_own_validation(path):
    """What `ray up` does before launching anything: its JSON schema (strict: no unknown keys), then the
    provider defaults filled in and validated again."""
    import jsonschema
    import ray.autoscaler
    from ray.autoscaler._private.util import prepare_config, validate_config

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    config = load(path)
    jsonschema.validate(config, schema)
    validate_config(prepare_config(config))


@pytest.mark.parametrize("path", LAUNCHER, ids=lambda p: p.name)
def test_launcher_config_gpu_workers_token_auth_and_project_install(path):
    config = load(path)
    workers = [t for name, t in config["available_node_types"].items() if name != config["head_node_type"]]
    gpu = workers[0]["node_config"]
    assert "guestAccelerators" in gpu or gpu.get("InstanceType", "").startswith(("g", "p"))
    assert any("pip install -e ~/raykd" in c for c in config["setup_commands"])
    assert config["file_mounts"]["~/raykd"] == "." and "~/.ray/auth_token" in config["file_mounts"]
    starts = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token" in c for c in starts if "ray start" in c)
    assert any("--dashboard-host=127.0.0.1" in c for c in config["head_start_ray_commands"])


def test_rayjob_has_the_keys_kuberay_requires_and_token_auth():
    job = load(CLUSTER / "rayjob.yaml")
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob" and job["metadata"]["name"]
    spec = job["spec"]
    assert spec["entrypoint"].startswith("raykd ")
    cluster = spec["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"}
    major, minor = map(int, cluster["rayVersion"].split(".")[:2])
    assert (major, minor) >= (2, 52)  # token authentication
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["image"] and {p["containerPort"] for p in head["ports"]} >= {6379, 8265}
    for group in cluster["workerGroupSpecs"]:
        assert group["groupName"] and group["template"]["spec"]["containers"][0]["image"]
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert "working_dir" in runtime_env


def test_rayjob_entrypoint_recipe_passes_check(capsys):
    words = shlex.split(load(CLUSTER / "rayjob.yaml")["spec"]["entrypoint"])
    assert words[:2] == ["raykd", "train"]
    recipe, rest = words[2], words[3:]
    assert (REPO / recipe).is_file(), recipe
    overrides = [rest[i + 1] for i, w in enumerate(rest) if w == "--set"]
    args = ["check", str(REPO / recipe)] + [a for o in overrides for a in ("--set", o)]
    assert main(args) == 0, capsys.readouterr().err
    assert "OK" in capsys.readouterr().out


def test_runtime_env_ships_the_checkout():
    env = load(CLUSTER / "runtime_env.yaml")
    assert env["working_dir"] == "." and "runs/" in env["excludes"]
    assert all(isinstance(v, str) for v in env["env_vars"].values())  # Ray requires string env values


def test_nothing_under_cluster_turns_authentication_off():
    for path in sorted(p for p in CLUSTER.rglob("*") if p.is_file()) + [REPO / "README.md"]:
        text = path.read_text(errors="replace")
        for line in text.splitlines():
            if "RAY_AUTH_MODE=disabled" in line.replace(" ", "") or "mode: disabled" in line:
                assert "refuse" in line.lower() or "never" in line.lower(), f"{path}: {line}"


def run_helper(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CLUSTER / "submit.sh"), *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_submit_helper_refuses_disabled_auth_and_a_missing_token(tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    base["HOME"] = str(tmp_path)  # no ~/.ray/auth_token
    out = run_helper({**base, "RAY_AUTH_MODE": "disabled"}, "--", "raykd", "train", "recipes/quickstart.yaml")
    assert out.returncode == 2 and "refused" in out.stderr
    out = run_helper(base, "--", "raykd", "train", "recipes/quickstart.yaml")
    assert out.returncode == 2 and "no Ray authentication token" in out.stderr
    out = run_helper(base)
    assert out.returncode == 2 and "no command" in out.stderr
