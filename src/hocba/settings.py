"""Frozen settings: the only place the environment (`HOCBA_*`) is read.

Every component gets a `Settings` object passed in, so tests can build one directly and
nothing reads `os.environ` behind the caller's back.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_PSEUDONYM_KEY = "hocba-demo-pseudonym-key-change-me"
MIN_PSEUDONYM_KEY_CHARS = 24  # `openssl rand -base64 16`: 128 bits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOCBA_", frozen=True, extra="ignore")

    kafka_bootstrap: str | None = Field(
        default=None, description="host:port of Kafka; unset = start the embedded broker"
    )
    clickhouse_url: SecretStr | None = Field(
        default=None,
        description="http(s)://user:password@host:8123/ of a ClickHouse server; unset = chDB",
    )
    data_dir: Path = Field(default=Path(".hocba"), description="embedded state (chDB, Faust)")
    trust_dir: Path | None = Field(default=None, description="trust anchors, CRLs, register")
    reference_dir: Path | None = Field(default=None, description="reference data files")

    submissions_topic: str = "hocba.submissions"
    dlq_topic: str = "hocba.submissions.dlq"
    landing_topic: str = Field(
        default="hocba.landing", description="hand-off from verifying workers to the lander"
    )
    reference_topic_prefix: str = Field(
        default="hocba.reference",
        description="compacted <prefix>.schools|departments|provinces: reference system of record",
    )
    topic_partitions: int = Field(default=12, ge=1)
    topic_replication: int = Field(
        default=1,
        ge=1,
        description="replication factor of the topics created when missing (workers, "
        "reference load, Faust's tables): 3 on a production cluster, where a worker that "
        "starts before the topic operator would otherwise create them unreplicated",
    )
    consumer_group: str = "hocba-worker"
    database: str = "hocba"

    cpu_processes: int = Field(
        default=0,
        ge=0,
        le=16,
        description="child processes that decode envelopes and verify signatures; 0: a thread",
    )
    dedupe_table: bool = Field(
        default=False,
        description="layer-1 dedupe in a changelog-backed Faust table (Apache Kafka); off: "
        "an in-process LRU, since the embedded broker stalls Faust table recovery",
    )
    batch_max_messages: int = Field(
        default=1_000,
        ge=1,
        description="messages taken at once; cut further at HOCBA_BATCH_MAX_BYTES",
    )
    batch_max_bytes: int = Field(
        default=8_388_608,
        ge=1,
        description="bytes of messages per batch staged in ClickHouse (~200 class messages)",
    )
    batch_max_ms: int = Field(default=200, ge=1)
    fetch_max_wait_ms: int = Field(
        default=100,
        ge=1,
        le=30_000,  # well under Faust's request timeout, or every idle fetch would time out
        description="longest the broker may hold a fetch that finds no new message "
        "(Faust's own: 1,500; the embedded broker holds it that long even when one arrives)",
    )
    max_message_bytes: int = Field(default=1_048_576, ge=1)
    max_records_per_message: int = Field(default=5_000, ge=1)
    clock_skew_s: int = Field(default=300, ge=0)

    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    broker_session_timeout_s: float = Field(default=45.0, gt=0)
    broker_heartbeat_interval_s: float = Field(default=3.0, gt=0)
    pseudonym_key: SecretStr = Field(
        default=SecretStr(DEMO_PSEUDONYM_KEY),
        description="HMAC key of the pseudonyms that replace personal IDs and names: a "
        "secret of 16 random bytes or more (`openssl rand -base64 32`); changing it re-keys "
        "every student, so set it once",
    )
    keep_identity: bool = Field(
        default=False, description="store raw personal IDs and names (off: pseudonyms only)"
    )
    worker_name: str = Field(
        default_factory=socket.gethostname,
        description="names this worker in dead letters (`hocba.worker`); default: the host "
        "name, which in Kubernetes is the pod's",
    )
    store_fault_file: Path | None = Field(
        default=None,
        description="fault injection: every store call fails while this file exists",
    )

    @field_validator("clickhouse_url")
    @classmethod
    def _server_url(cls, url: SecretStr | None) -> SecretStr | None:
        """A URL clickhouse-connect cannot use would otherwise fall back to localhost:8123.
        The message never repeats the URL: it holds the password."""
        if url is not None:
            parts = urlsplit(url.get_secret_value())
            if parts.scheme not in ("http", "https", "clickhouse") or not parts.hostname:
                raise ValueError("must be like http://user:password@host:8123/")
        return url

    @property
    def chdb_path(self) -> Path:
        return self.data_dir / "chdb"

    @property
    def faust_dir(self) -> Path:
        return self.data_dir / "faust"


def lander_group(consumer_group: str) -> str:
    """The lander's consumer group on the landing topic: its own, beside the workers'."""
    return f"{consumer_group}-lander"


def pseudonym_key_problem(settings: Settings) -> str | None:
    """Why the pseudonym key must not protect real records, or None.

    A personal ID has 12 digits: anyone who knows the key can hash every possible ID and
    reverse every pseudonym. The demo key is published, and the deploy templates' placeholder
    says CHANGE-ME.
    """
    key = settings.pseudonym_key.get_secret_value()
    if key == DEMO_PSEUDONYM_KEY or "change-me" in key.lower():
        return "HOCBA_PSEUDONYM_KEY is the published demo key or a placeholder"
    if len(key) < MIN_PSEUDONYM_KEY_CHARS:
        return (
            f"HOCBA_PSEUDONYM_KEY has {len(key)} characters, fewer than the "
            f"{MIN_PSEUDONYM_KEY_CHARS} of 16 random bytes in base64"
        )
    return None


def redacted_url(url: str) -> str:
    """`url` with its password masked: operators must see which server they configured."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:****@{host}").geturl()
