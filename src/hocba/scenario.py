"""A complete synthetic national submission: PKI, reference data, signed messages.

Shared by `hocba demo`, the integration tests and the benchmark so all three exercise the
same realistic path: Departments sign class-sized batches with their own certificates,
and a few deliberately bad messages check that nothing bad lands and nothing is lost.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from hocba.domain.reasons import Reason
from hocba.kafka.producer import Outgoing
from hocba.pipeline.codec import SchemaRegistry, load_registry
from hocba.publishing import (
    batches,
    build_submission,
    encode_payload,
    record_to_json,
    sign_batch,
)
from hocba.reference.loader import default_departments, write_reference_dir
from hocba.reference.model import ExpectedEnrollment, ReferenceData, School
from hocba.reference.provinces import former_to_current, provinces_2024, provinces_2025
from hocba.synth import corrupt_record, demo_schools, generate_records
from hocba.trust.pki import RSA, extra_leaf_name, generate_demo_pki
from hocba.trust.signing import Signer, load_signer, sign

DEMO_PROVINCES = ("01", "79", "31", "48", "15", "24", "92", "38")
SCHOOL_YEAR = "2023-2024"


@dataclass(frozen=True, slots=True)
class Scenario:
    trust_dir: Path
    reference_dir: Path
    reference: ReferenceData
    signers: Mapping[str, Signer]  # department code -> its RSA signer
    records: tuple[dict[str, Any], ...]
    # key algorithm ("ecdsa", "ed25519") -> department code -> signer, when asked for
    other_signers: Mapping[str, Mapping[str, Signer]] = field(default_factory=dict)

    def signer(self, department: str, algorithm: str = RSA) -> Signer:
        if algorithm == RSA:
            return self.signers[department]
        return self.other_signers[algorithm][department]


def department_code(province_code_2024: str) -> str:
    return f"SGD-2024-{province_code_2024}"


def build_scenario(
    root: Path,
    *,
    records: int,
    provinces: Sequence[str] = DEMO_PROVINCES,
    schools_per_province: int = 4,
    seed: int = 7,
    algorithms: Sequence[str] = (RSA,),
) -> Scenario:
    """`algorithms`: the key types every sending Department gets a certificate for."""
    senders = [department_code(p) for p in provinces]
    pki = generate_demo_pki(root / "trust", senders, algorithms=algorithms)
    schools = demo_schools(
        provinces, schools_per_province, seed, former_to_current=former_to_current()
    )
    generated = generate_records(schools, school_year=SCHOOL_YEAR, count=records, seed=seed)
    reference = ReferenceData(
        provinces_2024=provinces_2024(),
        provinces_2025=provinces_2025(),
        former_to_current=former_to_current(),
        schools={s.code: s for s in schools},
        departments={
            d.code: replace(d, certificate_approved=d.code in senders)
            for d in default_departments(2024)
        },
        expected_enrollment=expected_enrollment(generated, schools),
    )
    write_reference_dir(root / "reference", reference)
    signers = {
        code: load_signer(pki.leaves[code].key_path, pki.leaves[code].chain_path)
        for code in senders
    }
    others = {
        algorithm: {
            code: load_signer(pki.leaves[name].key_path, pki.leaves[name].chain_path)
            for code in senders
            for name in [extra_leaf_name(code, algorithm)]
        }
        for algorithm in dict.fromkeys(algorithms)
        if algorithm != RSA
    }
    ordered = sorted(generated, key=lambda r: (r["school_code"], r["class_name"]))
    return Scenario(root / "trust", root / "reference", reference, signers, tuple(ordered), others)


def write_records_by_department(scenario: Scenario, directory: Path) -> dict[str, Path]:
    """One JSON-lines file per sending Department (`<code>.jsonl`), the input of `hocba
    publish`: a Department may only sign its own schools' records."""
    lines: dict[str, list[str]] = {}
    for record in scenario.records:
        school = scenario.reference.schools[record["school_code"]]
        text = json.dumps(record_to_json(record), ensure_ascii=False)
        lines.setdefault(department_code(school.province_code_2024), []).append(text)
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for code, department_lines in sorted(lines.items()):
        written[code] = directory / f"{code}.jsonl"
        written[code].write_text("\n".join(department_lines) + "\n", encoding="utf-8")
    return written


def expected_enrollment(
    records: Sequence[Mapping[str, Any]], schools: Sequence[School]
) -> tuple[ExpectedEnrollment, ...]:
    """Demo denominators: each province-grade expects ~40 % more than was generated."""
    province = {s.code: s.province_code_2024 for s in schools}
    counts: dict[tuple[str, int], int] = {}
    for r in records:
        key = (province[r["school_code"]], r["grade"])
        counts[key] = counts.get(key, 0) + 1
    return tuple(
        ExpectedEnrollment(p, SCHOOL_YEAR, g, round(n * 1.4))
        for (p, g), n in sorted(counts.items())
    )


def signed_messages(
    scenario: Scenario,
    batch_size: int,
    registry: SchemaRegistry | None = None,
    algorithms: Sequence[str] = (RSA,),
) -> list[Outgoing]:
    """Message n is signed with `algorithms[n % len(algorithms)]` (built into the scenario)."""
    registry = registry or load_registry()
    out: list[Outgoing] = []
    for n, chunk in enumerate(batches(scenario.records, batch_size)):
        school = scenario.reference.schools[chunk[0]["school_code"]]
        sender = department_code(school.province_code_2024)
        signer = scenario.signer(sender, algorithms[n % len(algorithms)])
        sid, value = sign_batch(registry, chunk, signer, sender_code=sender, vendor="demo-vendor")
        out.append(Outgoing(sid.encode(), value))
    return out


def _new_student(record: Mapping[str, Any], n: int) -> dict[str, Any]:
    """The same record for another student (serial digits changed), so it is not a duplicate."""
    pid = record["personal_id"]
    serial = (int(pid[6:]) + 500_000 + n) % 1_000_000
    return dict(record, personal_id=f"{pid[:6]}{serial:06d}", student_code=f"X{serial:09d}")


def bad_messages(
    scenario: Scenario,
    good: Sequence[Outgoing],
    seed: int = 1,
    registry: SchemaRegistry | None = None,
) -> list[Outgoing]:
    """Garbage, a tampered payload, an exact re-send, and a batch of three new records of
    which the first is invalid (so two land and the message is dead-lettered once)."""
    registry = registry or load_registry()
    rng = random.Random(seed)
    sender, signer = next(iter(scenario.signers.items()))
    school = next(
        s
        for s in scenario.reference.schools.values()
        if department_code(s.province_code_2024) == sender
    )
    sample = [r for r in scenario.records if r["school_code"] == school.code][:3]
    payload = encode_payload(registry, sample)
    tampered = bytearray(payload)
    tampered[-5] ^= 0x01
    _, tampered_value = build_submission(
        registry,
        bytes(tampered),
        sign=lambda _p: sign(signer, payload),
        algorithm=signer.algorithm,
        chain_der=signer.chain_der,
        sender_code=sender,
        vendor="demo-vendor",
    )
    fresh = [_new_student(r, n) for n, r in enumerate(sample)]
    invalid = corrupt_record(fresh[0], Reason.VALIDATE_GRADE_LEVEL)
    mixed = encode_payload(registry, [invalid, *fresh[1:]])
    _, mixed_value = build_submission(
        registry,
        mixed,
        sign=partial(sign, signer),
        algorithm=signer.algorithm,
        chain_der=signer.chain_der,
        sender_code=sender,
        vendor="demo-vendor",
    )
    return [
        Outgoing(b"garbage", b"this is not an Avro message"),
        Outgoing(b"tampered", tampered_value),
        rng.choice(list(good)),
        Outgoing(b"mixed", mixed_value),
    ]
