"""Real kernel gateways for the tests: a local Jupyter Kernel Gateway, and a Jupyter Enterprise
Gateway whose kernels cannot see the server's disk.

Enterprise Gateway pins an older jupyter_server and jupyter_client than ours, so it lives in a
virtual environment of its own, made once and kept in the user's cache directory. Its kernels run
the test environment's Python inside a mount namespace of their own (``unshare --mount``) with
an empty tmpfs over the runs directory, over this package's source (so that nothing of
``sela_jupyter`` imports there) and over ``HOME`` (unless Python lives under it): what a pod on
a cluster sees of the Jupyter server's machine, which is nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server_process import free_port

import sela_jupyter

BIN = Path(sys.executable).parent
#: The Enterprise Gateway release the tests run against.
ENTERPRISE_GATEWAY = "jupyter_enterprise_gateway==3.3.0"
#: A shell command's prefix that runs it in a mount namespace of its own.
IN_OWN_MOUNTS = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c"]
#: The kernel spec the isolated kernels are started from.
ISOLATED_SPEC = "python3_isolated"


@dataclass
class Gateway:
    """A gateway process: its command and environment, URL, log, the kernel spec simulations
    use there, and the directory its kernels' connection files are written to (which tells its
    kernel processes apart from any other)."""

    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    runtime_dir: Path
    log: Path
    kernel_name: str = "python3"
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it and wait until it answers."""
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=self.log.open("a")
        )
        _wait_until_up(self)

    def stop(self) -> None:
        """Stop it (its kernels go down with it)."""
        if self.process is not None:
            _stop(self.process)
            self.process = None

    def restart(self, down_for: float = 2.0) -> None:
        """Stop it, wait ``down_for`` seconds, and start it again on the same port."""
        self.stop()
        time.sleep(down_for)
        self.start()

    def kernels(self) -> list[dict[str, Any]]:
        """The gateway's kernels (``GET /api/kernels``). Kernel Gateway answers 500 while a
        kernel it lists is being restarted, so that is asked again."""
        for attempt in range(20):
            try:
                with urllib.request.urlopen(self.url + "/api/kernels", timeout=10) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as error:
                if error.code != 500 or attempt == 19:
                    raise
                time.sleep(0.25)
        raise AssertionError("unreachable")

    def kernel_pids(self, kernel_id: str) -> list[int]:
        """Process ids of the kernel ``kernel_id`` (found by its connection file)."""
        marker = f"kernel-{kernel_id}.json"
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            text = [a.decode(errors="replace") for a in argv]
            if any("ipykernel_launcher" in a for a in text) and any(marker in a for a in text):
                pids.append(int(proc.name))
        return pids

    def computing_kernel(self, window: float = 0.2) -> str | None:
        """The kernel that used the most CPU over ``window`` seconds, if it used a quarter of
        it or more: one in the middle of a fit, not one between simulations."""

        def cpu_ticks(kernel_id: str) -> int:
            ticks = 0
            for pid in self.kernel_pids(kernel_id):
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                ticks += int(fields[11]) + int(fields[12])  # utime + stime
            return ticks

        ids = [k["id"] for k in self.kernels()]
        before = {i: cpu_ticks(i) for i in ids}
        time.sleep(window)
        used = {i: cpu_ticks(i) - before[i] for i in ids}
        busiest = max(used, key=used.__getitem__, default=None)
        hertz = os.sysconf("SC_CLK_TCK")
        return busiest if busiest and used[busiest] >= window * hertz / 4 else None

    def kill_kernel(self, kernel_id: str) -> None:
        """SIGKILL the kernel's process, as when its pod is killed."""
        pids = self.kernel_pids(kernel_id)
        assert pids, f"no process for kernel {kernel_id}; log:\n{self.log.read_text()[-3000:]}"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)


def _wait_until_up(gateway: Gateway, timeout: float = 90.0) -> None:
    assert gateway.process is not None
    deadline = time.monotonic() + timeout
    while True:
        try:
            gateway.kernels()
            return
        except Exception:
            if time.monotonic() > deadline or gateway.process.poll() is not None:
                gateway.process.kill()
                raise AssertionError(
                    f"{gateway.name} did not start:\n{gateway.log.read_text()[-3000:]}"
                ) from None
            time.sleep(0.3)


@contextmanager
def kernel_gateway(root: Path) -> Iterator[Gateway]:
    """A local Jupyter Kernel Gateway (from the test environment) on 127.0.0.1, no token."""
    port, runtime = free_port(), root / "runtime"
    runtime.mkdir(parents=True)
    gateway = Gateway(
        "kernel gateway",
        [
            str(BIN / "jupyter-kernelgateway"),
            "--ip=127.0.0.1",
            f"--port={port}",
            "--KernelGatewayApp.allow_origin=*",
            "--JupyterWebsocketPersonality.list_kernels=True",
            # It logs every message jupyter_server's gateway client sends (megabytes, for a
            # file's chunk) as a warning about the message's missing channel name.
            "--log-level=ERROR",
        ],
        {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)},
        port,
        runtime,
        root / "gateway.log",
    )
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


def cache_dir() -> Path:
    """Where test tools made once are kept between runs: ``SELA_TEST_CACHE``, or
    ``sela-jupyter`` in the user's cache directory."""
    if os.environ.get("SELA_TEST_CACHE"):
        return Path(os.environ["SELA_TEST_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sela-jupyter"


def enterprise_gateway_venv() -> Path:
    """The virtual environment with Enterprise Gateway, made (about a minute) the first time."""
    venv = cache_dir() / ("venv-" + ENTERPRISE_GATEWAY.replace("==", "-"))
    stamp = venv / ".installed"
    if stamp.is_file():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
    installed = subprocess.run([*pip, ENTERPRISE_GATEWAY], capture_output=True, text=True)
    if installed.returncode != 0:
        raise RuntimeError(f"could not install {ENTERPRISE_GATEWAY}:\n{installed.stderr[-3000:]}")
    stamp.touch()
    return venv


def hidden_paths(runs_dir: Path) -> list[Path]:
    """What the isolated kernels must not see: the runs, this package's source, and ``HOME``
    unless the test environment's Python lives under it."""
    paths = [runs_dir, Path(sela_jupyter.__file__).parent]
    home = Path.home().resolve()
    if not Path(sys.executable).resolve().is_relative_to(home):
        paths.append(home)
    return [p.resolve() for p in paths]


def isolation_problem() -> str | None:
    """Why kernels cannot be put in a mount namespace of their own here, or None."""
    if shutil.which("unshare") is None:
        return "no `unshare` on this machine (util-linux)"
    probe = subprocess.run(
        [
            *IN_OWN_MOUNTS,
            "mount -t tmpfs none /mnt",
        ],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return f"`unshare --mount` is not permitted here: {probe.stderr.strip()}"
    return None


def isolated_kernel_spec(root: Path, hidden: list[Path]) -> Path:
    """A Jupyter path holding :data:`ISOLATED_SPEC`: the test environment's Python kernel,
    started in its own mount namespace with an empty tmpfs over each of ``hidden``."""
    mounts = " && ".join(f"mount -t tmpfs none '{p}'" for p in hidden)
    script = f"{mounts} && cd / && exec '{sys.executable}' -m ipykernel_launcher -f \"$0\""
    spec = root / "kernels" / ISOLATED_SPEC
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    *IN_OWN_MOUNTS,
                    script,
                    "{connection_file}",
                ],
                "display_name": "Python 3 (no shared disk)",
                "language": "python",
            }
        )
    )
    return root


@contextmanager
def enterprise_gateway(root: Path, runs_dir: Path) -> Iterator[Gateway]:
    """Jupyter Enterprise Gateway on 127.0.0.1 whose kernels cannot see ``runs_dir``."""
    venv = enterprise_gateway_venv()
    runs_dir.mkdir(parents=True, exist_ok=True)
    kernels = isolated_kernel_spec(root / "jupyter", hidden_paths(runs_dir))
    port, runtime = free_port(), root / "runtime"
    runtime.mkdir(parents=True)
    env = {
        "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}",
        "HOME": os.environ.get("HOME", "/root"),
        "JUPYTER_PATH": str(kernels),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_DATA_DIR": str(root / "data"),
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        # Enterprise Gateway refuses kernels to root by default; CI runs as root.
        "EG_UNAUTHORIZED_USERS": "nobody-at-all",
        "EG_LIST_KERNELS": "True",
        "EG_DEFAULT_KERNEL_NAME": ISOLATED_SPEC,
    }
    command = [
        str(venv / "bin" / "jupyter-enterprisegateway"),
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port_retries=0",
    ]
    log = root / "enterprise-gateway.log"
    gateway = Gateway("enterprise gateway", command, env, port, runtime, log, ISOLATED_SPEC)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
