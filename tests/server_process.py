"""A real ``jupyter server`` subprocess with the extension, for tests that talk to it over HTTP
as a client on another process would (and that may kill and restart it)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, token: str, body: Any = None) -> Any:
    """A JSON request; the decoded reply (HTTP errors raise)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"token {token}")
    with urllib.request.urlopen(request, timeout=60) as response:
        payload = response.read()
    return json.loads(payload) if payload else None


def send(method: str, url: str, token: str, data: bytes | None) -> tuple[int, bytes]:
    """A request with a raw body; its status and body, errors included."""
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@dataclass
class JupyterServer:
    """A running ``jupyter server``: its URL, token, root directory and process."""

    url: str
    token: str
    root: Path
    proc: subprocess.Popen[bytes]

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """``http`` against ``<url>/<path>``."""
        return http(method, self.url + path, self.token, body)

    def stop(self) -> None:
        """SIGTERM, as a user's Ctrl-C would, and wait for the process to end."""
        self.proc.terminate()
        self.proc.wait(60)


def start_server(tmp_path: Path, *args: str, root: Path | None = None) -> JupyterServer:
    """Start ``jupyter server`` on a free port with a token and ``args`` (``--SelaApp...``)."""
    port, token = free_port(), uuid.uuid4().hex
    root = root or tmp_path / "root"
    root.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "JPY_PARENT_PID"}
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    log = tmp_path / f"server-{port}.log"
    proc = subprocess.Popen(
        [
            str(BIN / "jupyter"),
            "server",
            "--allow-root",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            *args,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w"),  # noqa: SIM115
    )
    server = JupyterServer(f"http://127.0.0.1:{port}/", token, root, proc)
    deadline = time.monotonic() + 60
    while True:
        try:
            server.api("GET", "api/status")
            return server
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError(log.read_text()) from None
            time.sleep(0.3)
