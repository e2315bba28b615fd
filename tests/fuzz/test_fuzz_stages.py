"""Property: no input crashes the pipeline; every non-accepted message has a reason code.

Random bytes, mutated envelopes, re-signed mutated payloads and mutated certificate chains
go through the real `process_batch` (real PKI, trust store and reference data from a small
scenario), and re-signed mutated payloads on through the real landing into chDB, where
ClickHouse reads the records. Each must come out exactly once, accepted or rejected with a
`Reason` — and never as `internal.error`, which would mean a stage raised on bad input.

Runs 200 examples per property by default. A longer run (e.g. before a release):

    HOCBA_FUZZ_PROFILE=long .venv/bin/pytest tests/fuzz -q

(`long` = 20,000 examples per property; `HOCBA_FUZZ_EXAMPLES=N` sets any other count.)
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hocba.context import ContextLoader
from hocba.domain.messages import RawMessage, Rejection, Submission
from hocba.domain.reasons import Reason
from hocba.landing import LandResult, RecordStage, land_prepared
from hocba.pipeline.codec import MAGIC, RECORD_BATCH, SUBMISSION, SchemaRegistry
from hocba.pipeline.decode import decode_envelope, first_block_count
from hocba.pipeline.process import PipelineContext, Prepared, process_batch
from hocba.publishing import build_submission
from hocba.reference.tables import mirror_reference
from hocba.scenario import Scenario, build_scenario, signed_messages
from hocba.settings import Settings
from hocba.store.base import Store
from hocba.store.chdb_store import ChdbStore
from hocba.trust.signing import Signer, sign

PROFILES = {"default": 200, "long": 20_000}
EXAMPLES = int(
    os.environ.get("HOCBA_FUZZ_EXAMPLES", PROFILES[os.environ.get("HOCBA_FUZZ_PROFILE", "default")])
)
LANDING = RecordStage.build(b"fuzz-key", False, 5_000)
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class World:
    """A real context and a few valid messages to mutate; built once for the module."""

    def __init__(self, root: Path) -> None:
        self.scenario: Scenario = build_scenario(
            root, records=12, provinces=("01",), schools_per_province=1
        )
        settings_ = Settings(
            trust_dir=self.scenario.trust_dir, reference_dir=self.scenario.reference_dir
        )
        self.ctx: PipelineContext = ContextLoader(settings_).current()
        self.registry: SchemaRegistry = self.ctx.registry
        self.valid = [m.value for m in signed_messages(self.scenario, batch_size=4)]
        self.signer: Signer = next(iter(self.scenario.signers.values()))
        first = decode_envelope(raw(self.valid[0]), self.registry, 1_048_576)
        assert isinstance(first, Submission)
        self.submission = first

    def envelope(self, payload: bytes, chain: list[bytes] | None = None) -> bytes:
        """A correctly signed envelope around `payload`, with the given chain."""
        _, value = build_submission(
            self.registry,
            payload,
            sign=partial(sign, self.signer),
            algorithm=self.signer.algorithm,
            chain_der=self.signer.chain_der if chain is None else chain,
            sender_code=self.submission.sender_code,
            vendor="fuzz",
        )
        return value


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("fuzz"))


def raw(value: bytes) -> RawMessage:
    return RawMessage("fuzz", 0, 0, 0, b"k", value)


def land_and_audit(store: Store, prepared: Prepared, worker: str) -> LandResult:
    """Land a batch and write its audit rows, as the lander does (without its retries)."""
    result = land_prepared(store, prepared, LANDING, worker)
    for table_name, rows in result.audit.items():
        store.insert_rows(table_name, rows)
    return result


def check(world: World, value: bytes) -> None:
    message = raw(value)
    prepared = process_batch([message], world.ctx)
    outcomes = [*prepared.accepted, *prepared.rejected]
    assert len(outcomes) == 1
    assert outcomes[0].message is message
    for rejection in prepared.rejected:
        assert isinstance(rejection, Rejection)
        assert isinstance(rejection.code, Reason)
        assert rejection.code is not Reason.INTERNAL_ERROR, rejection.detail


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """Bit flips, a truncation, an insertion or a deletion, a few at a time."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif data:
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


@fuzz
@given(data=st.binary(max_size=512))
def test_random_bytes(world: World, data: bytes) -> None:
    check(world, data)


@fuzz
@given(body=st.binary(max_size=512), schema=st.sampled_from([SUBMISSION, RECORD_BATCH]))
def test_random_bodies_behind_a_valid_header(world: World, body: bytes, schema: str) -> None:
    check(world, MAGIC + world.registry.writer_fingerprint(schema) + body)


@fuzz
@given(st.data())
def test_mutated_envelopes(world: World, data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(world.valid))
    check(world, data.draw(mutated(original)))


@pytest.fixture(scope="module")
def store(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbStore]:
    opened = ChdbStore(tmp_path_factory.mktemp("fuzz-store") / "chdb", "fuzz")
    opened.ensure_schema()
    mirror_reference(opened, world.ctx.reference)
    yield opened
    opened.close()


@fuzz
@given(st.data())
def test_mutated_payloads_signed_correctly(
    world: World, store: ChdbStore, data: st.DataObject
) -> None:
    """Between two intact messages, so a payload that misleads the reader about its own
    length would show up as blame (or records) on its neighbours."""
    intact = raw(world.valid[1])
    mutant = raw(world.envelope(data.draw(mutated(world.submission.payload))))
    batch = [intact, mutant, raw(world.valid[2])]
    prepared = process_batch(batch, world.ctx)
    result = land_and_audit(store, prepared, "fuzz")
    assert result.counts["messages"] == 3
    assert all(r.message is mutant for r in result.rejected), result.rejected
    for rejection in result.rejected:
        assert rejection.code is not Reason.INTERNAL_ERROR, rejection.detail
    sent = {
        a.submission.submission_id: first_block_count(world.registry, a.submission.payload)
        for a in prepared.accepted
        if a.message is not mutant
    }
    audited = {r["submission_id"]: r for r in result.audit["submissions"].to_pylist()}
    for sid, records in sent.items():  # the neighbours: every record theirs, and landed
        row = audited[sid]
        assert row["outcome"] in ("accepted", "duplicate"), row
        assert row["records_landed"] + row["records_duplicate"] == row["records_total"] == records
    assert len(sent) == 2


@fuzz
@given(
    st.data(),
    st.sampled_from(["random_der", "shuffle", "drop", "duplicate", "mutate", "empty"]),
)
def test_mutated_certificate_chains(world: World, data: st.DataObject, kind: str) -> None:
    chain = list(world.signer.chain_der)
    if kind == "random_der":
        chain[data.draw(st.integers(0, len(chain) - 1))] = data.draw(st.binary(max_size=300))
    elif kind == "shuffle":
        random.Random(data.draw(st.integers(0, 2**32))).shuffle(chain)
    elif kind == "drop":
        del chain[data.draw(st.integers(0, len(chain) - 1))]
    elif kind == "duplicate":
        chain.append(chain[data.draw(st.integers(0, len(chain) - 1))])
    elif kind == "mutate":
        at = data.draw(st.integers(0, len(chain) - 1))
        chain[at] = data.draw(mutated(chain[at]))
    else:
        chain = []
    check(world, world.envelope(world.submission.payload, chain))


def test_the_world_accepts_its_valid_messages(world: World) -> None:
    """Guards the properties above: the unmutated messages do get accepted."""
    prepared = process_batch([raw(v) for v in world.valid], world.ctx)
    assert len(prepared.accepted) == len(world.valid), prepared.rejected


def test_a_certificate_of_a_version_x509_does_not_have_is_cert_malformed(world: World) -> None:
    """Found by the fuzzer: the DER loads, and reading its version (3, where X.509 has 0 to
    2) raises `InvalidVersion`, which is not a `ValueError`: it was `internal.error`."""
    chain = list(world.signer.chain_der)
    version = b"\xa0\x03\x02\x01\x02"  # [0] EXPLICIT INTEGER 2: v3
    at = chain[0].index(version) + len(version) - 1
    chain[0] = chain[0][:at] + b"\x03" + chain[0][at + 1 :]
    prepared = process_batch([raw(world.envelope(world.submission.payload, chain))], world.ctx)
    assert [r.code for r in prepared.rejected] == [Reason.VERIFY_CERT_MALFORMED]


def test_a_certificate_with_a_malformed_subject_is_cert_malformed(world: World) -> None:
    """Found by the fuzzer: the DER loads (parsing is lazy) but reading its subject fails."""
    chain = list(world.signer.chain_der)
    issuer_end = chain[1].index(b"\x13\x02VN") + 4
    subject_at = chain[1].index(b"\x13\x02VN", issuer_end)
    chain[1] = chain[1][:subject_at] + b"\x11" + chain[1][subject_at + 1 :]
    prepared = process_batch([raw(world.envelope(world.submission.payload, chain))], world.ctx)
    assert [r.code for r in prepared.rejected] == [Reason.VERIFY_CERT_MALFORMED]
