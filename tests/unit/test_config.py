"""`hocba config show`: what the worker would run with, secrets masked, bad values named."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hocba.cli.main import app
from hocba.runner import worker_env
from hocba.settings import Settings, pseudonym_key_problem

PASSWORD = "s3cret-pw"
KEY = "pseudonym-key-of-the-ministry"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the variables a test sets: none inherited from the developer's shell."""
    for name in os.environ:
        if name.startswith("HOCBA_"):
            monkeypatch.delenv(name)


def show(*args: str, **env: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["config", "show", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_secrets_are_masked_and_the_rest_is_shown() -> None:
    code, out, _ = show(
        HOCBA_CLICKHOUSE_URL=f"https://hocba:{PASSWORD}@ch.example:8443/",
        HOCBA_PSEUDONYM_KEY=KEY,
        HOCBA_TOPIC_PARTITIONS="24",
    )
    assert code == 0
    assert PASSWORD not in out and KEY not in out
    lines = out.splitlines()
    assert "HOCBA_TOPIC_PARTITIONS=24" in lines
    assert "HOCBA_CLICKHOUSE_URL=https://hocba:****@ch.example:8443/" in lines  # which server
    assert "HOCBA_PSEUDONYM_KEY=**********" in lines


def test_json_is_parseable_and_masked() -> None:
    code, out, _ = show(
        "--json", HOCBA_CLICKHOUSE_URL=f"http://u:{PASSWORD}@ch:8123/", HOCBA_PSEUDONYM_KEY=KEY
    )
    assert code == 0
    data = json.loads(out)
    assert data["consumer_group"] == "hocba-worker"
    assert data["topic_partitions"] == 12
    assert data["worker_name"] == socket.gethostname()  # the pod, in dead letters' headers
    assert PASSWORD not in out and KEY not in out


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HOCBA_TOPIC_PARTITIONS", "abc"),
        ("HOCBA_TOPIC_PARTITIONS", "-3"),
        ("HOCBA_CPU_PROCESSES", "-1"),
        ("HOCBA_WEB_PORT", "99999"),
    ],
)
def test_an_invalid_value_is_one_line_naming_the_variable(variable: str, value: str) -> None:
    code, out, err = show(**{variable: value})
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: {variable}: ")
    assert "Traceback" not in err and "validation error" not in err


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (None, "the published demo key or a placeholder"),
        ("CHANGE-ME-to-32-random-bytes-base64", "the published demo key or a placeholder"),
        ("short-secret", "has 12 characters, fewer than the 24 of 16 random bytes"),
        ("k2Jv9Qm4Xr7Tz1Lw8Ns5Hd==", None),  # `openssl rand -base64 16`: 128 bits
    ],
)
def test_a_pseudonym_key_anyone_could_know_is_named(key: str | None, problem: str | None) -> None:
    settings = Settings() if key is None else Settings(pseudonym_key=key)  # type: ignore[arg-type]
    found = pseudonym_key_problem(settings)
    assert found == problem if problem is None else problem in str(found)


def test_a_worker_on_a_clickhouse_server_refuses_the_demo_key() -> None:
    """Before it connects to anything: the URL points nowhere. No key set: the demo's."""
    done = subprocess.run(
        [sys.executable, "-m", "hocba.cli.main", "worker"],
        env={**os.environ, "HOCBA_CLICKHOUSE_URL": "http://127.0.0.1:1/"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "HOCBA_PSEUDONYM_KEY is the published demo key" in done.stderr
    assert "a new key re-keys every student" in " ".join(done.stderr.split())


@pytest.mark.parametrize("url", ["notaurl", "ftp://ch:21/", "http:///nohost"])
def test_a_clickhouse_url_that_is_not_one_is_refused_without_echoing_it(url: str) -> None:
    code, _, err = show(HOCBA_CLICKHOUSE_URL=url)
    assert code == 2
    assert "HOCBA_CLICKHOUSE_URL: Value error, must be like http://user:password@host:8123/" in (
        " ".join(err.split())
    )
    assert url not in err


def test_an_unreachable_clickhouse_is_one_line() -> None:
    result = CliRunner().invoke(
        app, ["stats"], env={"HOCBA_CLICKHOUSE_URL": f"http://u:{PASSWORD}@127.0.0.1:1/"}
    )
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()  # the errno of "Connection refused" differs by OS
    assert line.startswith("error: cannot reach ClickHouse at 127.0.0.1:1 ([Errno ")
    assert line.endswith("Connection refused): is it up, and HOCBA_CLICKHOUSE_URL right?")


def test_a_worker_gets_the_server_url_its_settings_hold_and_no_other(tmp_path: Path) -> None:
    """The bench pins the embedded store whatever the environment says; a URL inherited
    from the parent's environment would have sent its workers' records to a server."""
    url = "http://user:pass@clickhouse.example:8123/"
    environ = {"HOCBA_CLICKHOUSE_URL": url, "PATH": "/usr/bin"}
    embedded = Settings(data_dir=tmp_path, clickhouse_url=None)
    env = worker_env(embedded, "127.0.0.1:9092", environ, {})
    assert "HOCBA_CLICKHOUSE_URL" not in env and env["PATH"] == "/usr/bin"
    server = Settings(data_dir=tmp_path, clickhouse_url=url)  # type: ignore[arg-type]
    assert worker_env(server, "127.0.0.1:9092", environ, {})["HOCBA_CLICKHOUSE_URL"] == url
