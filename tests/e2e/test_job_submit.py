"""`ray job submit` of `raykd train` to a token-authenticated head, and submissions without the token."""
from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from tests.conftest import REPO, tiny_overrides

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SHORT = {"run.name": "e2e-job", "eval.retrieval.every_n_epochs": 0, "eval.linear_probe.every_n_epochs": 0}


def ray_cli(env: dict, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["ray", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_train_job_runs_and_writes_its_results(ray_head, builtin_root, tmp_path):
    run_dir = tmp_path / "run"
    sets = tiny_overrides(builtin_root, **SHORT)
    entrypoint = ["raykd", "train", "recipes/quickstart.yaml", "--run-dir", str(run_dir)]
    entrypoint += [arg for s in sets for arg in ("--set", s)]
    submission = f"raykd-e2e-{uuid.uuid4().hex[:8]}"
    out = ray_cli(ray_head.env(), "job", "submit", "--address", ray_head.dashboard_url,
                  "--submission-id", submission, "--", *entrypoint)
    logs = out.stdout[-4000:] + out.stderr[-2000:]
    assert out.returncode == 0 and "succeeded" in out.stdout, logs
    status, body = ray_head.http("GET", f"/api/jobs/{submission}", token=ray_head.token)
    assert status == 200 and json.loads(body)["status"] == "SUCCEEDED"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metrics"]["step"] == 512 // 32 and summary["checkpoint"], summary
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert records and 0.0 <= records[-1]["metrics"]["zeroshot/shapes/top1"] <= 1.0
    assert "[raykd] finished" in out.stdout  # the job's log streams back to the submitter


@pytest.mark.parametrize("client", ["no token anywhere", "auth disabled on the client"])
def test_submission_without_the_token_is_refused(ray_head, tmp_path, client):
    env = {k: v for k, v in ray_head.env().items() if not k.startswith("RAY_AUTH_TOKEN")}
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token to fall back on
    if client == "auth disabled on the client":
        env["RAY_AUTH_MODE"] = "disabled"
    marker = f"refused-{uuid.uuid4().hex[:8]}"
    out = ray_cli(env, "job", "submit", "--address", ray_head.dashboard_url, "--no-wait", "--", "echo", marker,
                  timeout=300)
    assert out.returncode != 0, out.stdout + out.stderr
    assert any(word in (out.stdout + out.stderr).lower() for word in ("token", "unauthorized", "401", "auth"))
    _, jobs = ray_head.http("GET", "/api/jobs/", token=ray_head.token)
    assert marker not in jobs  # nothing was queued


def test_jobs_api_refuses_requests_without_a_valid_token(ray_head):
    job = {"entrypoint": "echo should-not-run"}
    assert ray_head.http("POST", "/api/jobs/", token=None, body=job)[0] == 401
    assert ray_head.http("POST", "/api/jobs/", token="not-the-token", body=job)[0] in (401, 403)
    assert ray_head.http("GET", "/api/jobs/", token=None)[0] == 401
    status, jobs = ray_head.http("GET", "/api/jobs/", token=ray_head.token)
    assert status == 200 and "should-not-run" not in jobs
