"""One throw-away Ray head (loopback, token authentication, dashboard) for the end-to-end tests."""
from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.e2e.ray_head import RayHead


@pytest.fixture(scope="session")
def ray_head(builtin_root):
    """Started from the repository root, so job entrypoints resolve recipes/...; the built-in data
    cache is the session's (RAYKD_CACHE), so the jobs reuse what the other tests generated."""
    head = RayHead(num_cpus=6, cwd=REPO, extra_env={
        "RAYKD_CACHE": str(builtin_root), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "TOKENIZERS_PARALLELISM": "false"})
    try:
        yield head.start()
    finally:
        head.stop()
