"""A throw-away Ray head for end-to-end tests: `ray start --head --block` on loopback, token
authentication on, the dashboard (Jobs API, state API) up, its own ports and temp dir.

It never touches ~/.ray or other Ray instances on the machine: the token is generated with
`ray get-auth-token --generate` under a temporary HOME and handed to every process through
RAY_AUTH_TOKEN_PATH, and `stop()` ends only the processes this head started (its process group,
then anything still running from its temp dir) instead of a machine-wide `ray stop`.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

PORT_FLAGS = ("--port", "--dashboard-port", "--ray-client-server-port", "--node-manager-port",
              "--object-manager-port", "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
              "--runtime-env-agent-port", "--metrics-export-port")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class RayHead:
    def __init__(self, num_cpus: int = 6, cwd: str | Path | None = None, extra_env: dict | None = None):
        self.num_cpus, self.cwd, self.extra_env = num_cpus, str(cwd or os.getcwd()), dict(extra_env or {})
        self.root = Path(tempfile.mkdtemp(prefix="rkh", dir="/tmp"))  # short: Ray's socket paths must fit
        self.ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))
        self.token_path = self.root / "home" / ".ray" / "auth_token"
        self.proc: subprocess.Popen | None = None

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.ports['--port']}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['--dashboard-port']}"

    @property
    def token(self) -> str:
        return self.token_path.read_text().strip()

    def env(self, **extra) -> dict:
        """Environment of a process talking to this head: token auth on, this head's token and address."""
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_TOKEN", "RAY_ADDRESS")}
        env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_path),
                    "RAY_ADDRESS": self.gcs_address, **self.extra_env})
        env.update(extra)
        return env

    def generate_token(self) -> None:
        """`ray get-auth-token --generate` under a private HOME: writes <root>/home/.ray/auth_token."""
        env = {k: v for k, v in self.env().items() if k != "RAY_AUTH_TOKEN_PATH"}
        env["HOME"] = str(self.token_path.parents[1])
        out = subprocess.run(["ray", "get-auth-token", "--generate"], env=env, capture_output=True, text=True,
                             timeout=120)
        if out.returncode != 0 or not self.token_path.is_file():
            raise RuntimeError(f"ray get-auth-token --generate failed: {out.stdout}\n{out.stderr}")

    def start(self, timeout: float = 240) -> "RayHead":
        self.generate_token()
        cmd = ["ray", "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1",
               "--include-dashboard", "true", "--num-cpus", str(self.num_cpus), "--temp-dir", str(self.root / "ray"),
               "--min-worker-port", "0", "--max-worker-port", "0", "--disable-usage-stats"]
        for flag, port in self.ports.items():
            cmd += [flag, str(port)]
        log = open(self.root / "head.log", "w")
        # RAY_ADDRESS in the head's environment reaches every worker: Ray-internal actors that look the
        # cluster up (Ray Train's placement-group cleaner) then find this one, not another instance.
        self.proc = subprocess.Popen(cmd, env=self.env(), cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited {self.proc.returncode}: {self.log_tail()}")
            if self.http("GET", "/api/version", token=self.token)[0] == 200 and self.nodes_alive():
                return self
            time.sleep(1)
        raise TimeoutError(f"Ray head not up after {timeout} s: {self.log_tail()}")

    def nodes_alive(self) -> bool:
        status, body = self.http("GET", "/api/v0/nodes", token=self.token)
        return status == 200 and '"ALIVE"' in body

    def http(self, method: str, path: str, token: str | None = None, body: dict | None = None) -> tuple[int, str]:
        """(status, body) of a request to the dashboard; token None sends no Authorization header."""
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.dashboard_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")
        except OSError:
            return 0, ""

    def state(self, resource: str) -> list[dict]:
        """`ray list <resource>` through the state API (the dashboard), all states, as dicts."""
        out = subprocess.run(["ray", "list", resource, "--address", self.dashboard_url, "--format", "json",
                              "--limit", "10000"], env=self.env(), capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"ray list {resource}: {out.stderr}")
        if out.stdout.strip().startswith("No resource"):
            return []
        return json.loads(out.stdout)

    def log_tail(self, n: int = 40) -> str:
        path = self.root / "head.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.is_file() else ""

    def stop(self) -> None:
        """End this head's processes only: its process group, then stragglers started from its temp dir."""
        if self.proc is not None and self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._kill_stragglers()
        shutil.rmtree(self.root, ignore_errors=True)

    def _kill_stragglers(self) -> None:
        """Ray workers run in their own sessions; any still alive whose command line names this head's
        temp dir or GCS port are ours."""
        marks = (str(self.root), self.gcs_address)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmd = (entry / "cmdline").read_bytes().decode(errors="ignore")
            except OSError:
                continue
            if any(mark in cmd for mark in marks):
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
