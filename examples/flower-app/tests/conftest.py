"""Run the app with real Flower processes on 127.0.0.1: a SuperLink (in simulation mode, or
with SuperNodes for a deployment) and ``flwr run``.

Every process is started in its own process group and ended by its PID and group when the test
ends, whatever happened. Every address is 127.0.0.1 with a free port; ``FLWR_HOME`` is a
temporary folder; no app dependency is installed at run time; everything is bounded in time.
On failure the logs of every process are printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pytest

APP = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RUN_TIMEOUT = 420.0  # seconds for one `flwr run` to finish
START_TIMEOUT = 60.0  # seconds for a SuperLink to accept connections


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@dataclass
class Fleet:
    """The processes of one run, their logs and environment."""

    workdir: Path
    env: dict[str, str]
    home: Path
    processes: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)
    _logs: list[TextIO] = field(default_factory=list)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start ``args`` (an executable of this environment) in its own process group."""
        log_path = self.workdir / f"{name}.log"
        log = log_path.open("wb")
        self._logs.append(log)  # type: ignore[arg-type]
        process = subprocess.Popen(
            [str(BIN / args[0]), *args[1:]],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.workdir,
            start_new_session=True,  # its own process group: ended with everything it spawns
        )
        self.processes.append((name, process, log_path))
        return process

    def stop(self) -> None:
        """End every process (and its group) by its PID: SIGTERM, then SIGKILL."""
        for _, process, _ in reversed(self.processes):
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, process, _ in reversed(self.processes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(process, signal.SIGKILL)
            process.wait()
        for log in self._logs:
            log.close()

    def logs(self) -> str:
        """The output of every process, for a failure report."""
        parts = []
        for name, _, path in self.processes:
            text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
            parts.append(f"----- {name} -----\n{text[-20000:]}")
        return "\n".join(parts)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)  # the group id is the PID (start_new_session)


@dataclass
class AppRun:
    """What a finished run left: the ServerApp's JSON summary and the `flwr run` output."""

    result: dict[str, Any]
    output: str


class Flower:
    """Starts a SuperLink (and SuperNodes) and runs the app with `flwr run`."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.port = 0

    def superlink(self, *, simulation: bool) -> None:
        """A SuperLink on 127.0.0.1, in simulation mode or for SuperNodes."""
        self.port = free_port()
        args = [
            "flower-superlink",
            "--insecure",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--database",
            ":flwr-in-memory:",
            "--disable-runtime-dependency-installation",
        ]
        if simulation:
            args.append("--simulation")
        process = self.fleet.start("superlink", *args)
        wait_for_port(self.port, process, START_TIMEOUT)
        (self.fleet.home / "config.toml").write_text(
            f'[superlink]\ndefault = "test"\n\n[superlink.test]\n'
            f'address = "127.0.0.1:{self.port}"\ninsecure = true\n',
            encoding="utf-8",
        )

    def supernode(self, partition_id: int, num_partitions: int) -> None:
        """A SuperNode with its data partition, connected to the SuperLink."""
        self.fleet.start(
            f"supernode-{partition_id}",
            "flower-supernode",
            "--insecure",
            "--superlink",
            f"127.0.0.1:{self.port}",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
            "--node-config",
            f"partition-id={partition_id} num-partitions={num_partitions}",
        )

    def run(self, run_config: dict[str, object], *, federation_config: str = "") -> AppRun:
        """`flwr run` the app to its end; the ServerApp's JSON summary and the output."""
        result_file = self.fleet.workdir / f"result-{len(self.fleet.processes)}.json"
        overrides = {**run_config, "result-file": str(result_file)}
        args = [
            str(BIN / "flwr"),
            "run",
            str(APP),
            "test",
            "--stream",
            "--run-config",
            " ".join(f"{k}={json.dumps(v)}" for k, v in overrides.items()),
        ]
        if federation_config:
            args += ["--federation-config", federation_config]
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            env=self.fleet.env,
            cwd=self.fleet.workdir,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        output = done.stdout + done.stderr
        if done.returncode != 0 or not result_file.exists():
            raise AssertionError(
                f"flwr run exited with {done.returncode} and no result file:\n{output}\n"
                f"{self.fleet.logs()}"
            )
        return AppRun(json.loads(result_file.read_text(encoding="utf-8")), output)


def _harness(workdir: Path) -> Flower:
    if shutil.which("flower-superlink", path=str(BIN)) is None:
        pytest.fail("flower-superlink is not installed in this environment")
    home = workdir / "flwr-home"
    home.mkdir()
    env = {
        **os.environ,
        "FLWR_HOME": str(home),
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        # Ray: the node address is the loopback address (no cluster address is looked up)
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return Flower(Fleet(workdir, env, home))


@pytest.fixture(scope="module")
def simulation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flower]:
    """A SuperLink in simulation mode (Ray), shared by the runs of a test module."""
    flower = _harness(tmp_path_factory.mktemp("simulation"))
    try:
        flower.superlink(simulation=True)
        yield flower
    finally:
        flower.fleet.stop()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flower]:
    """A SuperLink and two SuperNodes (partitions 0 and 1 of 2), shared by a test module."""
    flower = _harness(tmp_path_factory.mktemp("deployment"))
    try:
        flower.superlink(simulation=False)
        flower.supernode(0, 2)
        flower.supernode(1, 2)
        yield flower
    finally:
        flower.fleet.stop()
