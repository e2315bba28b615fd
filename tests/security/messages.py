"""Hostile (and a few good) submissions for the security suite, one per attack or mistake.

Each case is named, and the name is its Kafka key, so a dead letter maps back to the case that
produced it. `EXPECTED` is static so pytest can parametrize on it before anything is built.
All messages come from the first Department (which owns the demo PKI's extra and bad leaves)
and carry its records, unless the case is about another Department or province.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any

from hocba.domain.reasons import Reason
from hocba.kafka.producer import Outgoing
from hocba.pipeline.codec import load_registry
from hocba.publishing import build_submission, encode_payload
from hocba.scenario import Scenario, department_code
from hocba.trust import pki as demo
from hocba.trust.signing import Signer, load_signer, sign

# The first Department sends everything; the second is the victim of a spoof or a forgery
# target; the third has its certificate suspended before the worker starts.
PROVINCES = ("01", "79", "48")
SENDER, OTHER, SUSPENDED = (department_code(p) for p in PROVINCES)
RECORDS_PER_MESSAGE = 3

GOOD = ("valid_rsa", "valid_ecdsa", "valid_ed25519")
EXPECTED: Mapping[str, Reason | None] = MappingProxyType(
    {
        **dict.fromkeys(GOOD),
        "tampered_payload": Reason.VERIFY_SIGNATURE_INVALID,
        "tampered_signature": Reason.VERIFY_SIGNATURE_INVALID,
        "other_departments_key": Reason.VERIFY_SIGNATURE_INVALID,
        "untrusted_root": Reason.VERIFY_CHAIN_UNTRUSTED,
        "missing_intermediate": Reason.VERIFY_CHAIN_UNTRUSTED,
        "not_for_signing": Reason.VERIFY_CHAIN_UNTRUSTED,
        "expired": Reason.VERIFY_CERT_EXPIRED,
        "not_yet_valid": Reason.VERIFY_CERT_NOT_YET_VALID,
        "revoked_leaf": Reason.VERIFY_CERT_REVOKED,
        "revoked_intermediate": Reason.VERIFY_CERT_REVOKED,
        "sha1": Reason.VERIFY_ALGORITHM_FORBIDDEN,
        "rsa1024": Reason.VERIFY_KEY_TOO_WEAK,
        "not_in_register": Reason.VERIFY_CERT_NOT_APPROVED,
        "suspended": Reason.VERIFY_CERT_NOT_APPROVED,
        "sender_of_another_province": Reason.VERIFY_SIGNER_NOT_AUTHORIZED,
        "school_of_another_province": Reason.VERIFY_SIGNER_NOT_AUTHORIZED,
        "empty_chain": Reason.VERIFY_CHAIN_EMPTY,
        "garbage_der": Reason.VERIFY_CERT_MALFORMED,
        "not_avro": Reason.DECODE_NOT_AVRO,
    }
)
BAD = tuple(name for name, reason in EXPECTED.items() if reason is not None)
# Where cases share a code, the dead letter's detail must show the failure had the right cause.
DETAIL: Mapping[str, str] = MappingProxyType(
    {
        "not_for_signing": "key usage allows neither digitalSignature nor nonRepudiation",
        "revoked_leaf": f"CN={SENDER},",
        "revoked_intermediate": "CN=hocba demo revoked CA,",
        "not_in_register": "is not in the register",
        "suspended": "is suspended in the register",
        "sender_of_another_province": f"certificate registered to '{SENDER}'",
        "school_of_another_province": "outside the sender's province",
    }
)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    submission_id: str  # '' when the value is not even an envelope
    value: bytes
    records_to_land: int

    @property
    def outgoing(self) -> Outgoing:
        return Outgoing(self.name.encode(), self.value)


def _flip(data: bytes, at: int = -1) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 0x01
    return bytes(changed)


def leaf_signer(scenario: Scenario, leaf: str) -> Signer:
    """The signer of one of the demo PKI's named leaves (`leaves/<name>.{key,chain}.pem`)."""
    leaves = scenario.trust_dir / "leaves"
    return load_signer(leaves / f"{leaf}.key.pem", leaves / f"{leaf}.chain.pem")


def leaf_fingerprint(signer: Signer) -> str:
    """The register key of a signer's certificate."""
    return hashlib.sha256(signer.chain_der[0]).hexdigest()


def province_records(scenario: Scenario, province: str) -> list[dict[str, Any]]:
    schools = scenario.reference.schools
    return [r for r in scenario.records if schools[r["school_code"]].province_code_2024 == province]


def envelope(
    signer: Signer,
    records: Sequence[Mapping[str, Any]],
    *,
    sender: str = SENDER,
    chain: Sequence[bytes] | None = None,
    signing_key: Signer | None = None,
    tamper: Callable[[bytes], bytes] | None = None,
    tamper_signature: bool = False,
) -> tuple[str, bytes]:
    """A submission as `signer` would send it, then forged as asked.

    `signing_key` signs instead of `signer` (whose chain is still sent); `tamper` changes the
    payload after signing; `tamper_signature` flips a bit of the signature.
    """
    registry = load_registry()
    payload = encode_payload(registry, records)
    signature = sign(signing_key or signer, payload)
    return build_submission(
        registry,
        tamper(payload) if tamper else payload,
        sign=lambda _: _flip(signature, 0) if tamper_signature else signature,
        algorithm=signer.algorithm,
        chain_der=signer.chain_der if chain is None else chain,
        sender_code=sender,
        vendor="security-suite",
    )


def build_cases(scenario: Scenario) -> dict[str, Case]:
    """One message per entry of `EXPECTED`; good ones carry records no other message carries."""
    own = province_records(scenario, PROVINCES[0])
    chunks = [own[i : i + RECORDS_PER_MESSAGE] for i in range(0, len(own), RECORDS_PER_MESSAGE)]
    if len(chunks) < len(GOOD) or len(chunks[len(GOOD) - 1]) < RECORDS_PER_MESSAGE:
        raise ValueError("the scenario has too few records of the first province")
    records = dict(zip(GOOD, chunks, strict=False))
    bad_records = chunks[0]
    rsa = scenario.signers[SENDER]
    by_leaf = partial(leaf_signer, scenario)
    forged: dict[str, tuple[str, bytes]] = {
        "valid_rsa": envelope(rsa, records["valid_rsa"]),
        "valid_ecdsa": envelope(by_leaf(demo.ECDSA), records["valid_ecdsa"]),
        "valid_ed25519": envelope(by_leaf(demo.ED25519), records["valid_ed25519"]),
        "tampered_payload": envelope(rsa, bad_records, tamper=_flip),
        "tampered_signature": envelope(rsa, bad_records, tamper_signature=True),
        "other_departments_key": envelope(rsa, bad_records, signing_key=scenario.signers[OTHER]),
        "untrusted_root": envelope(by_leaf(demo.UNTRUSTED), bad_records),
        "missing_intermediate": envelope(rsa, bad_records, chain=rsa.chain_der[:1]),
        "not_for_signing": envelope(by_leaf(demo.NOT_FOR_SIGNING), bad_records),
        "expired": envelope(by_leaf(demo.EXPIRED), bad_records),
        "not_yet_valid": envelope(by_leaf(demo.NOT_YET_VALID), bad_records),
        "revoked_leaf": envelope(by_leaf(demo.REVOKED), bad_records),
        "revoked_intermediate": envelope(by_leaf(demo.REVOKED_INTERMEDIATE), bad_records),
        "sha1": envelope(by_leaf(demo.SHA1), bad_records),
        "rsa1024": envelope(by_leaf(demo.RSA1024), bad_records),
        "not_in_register": envelope(by_leaf(demo.UNREGISTERED), bad_records),
        "suspended": envelope(
            scenario.signers[SUSPENDED],
            province_records(scenario, PROVINCES[2])[:RECORDS_PER_MESSAGE],
            sender=SUSPENDED,
        ),
        "sender_of_another_province": envelope(rsa, bad_records, sender=OTHER),
        "school_of_another_province": envelope(
            rsa, province_records(scenario, PROVINCES[1])[:RECORDS_PER_MESSAGE]
        ),
        "empty_chain": envelope(rsa, bad_records, chain=()),
        "garbage_der": envelope(rsa, bad_records, chain=(b"\x30\x82\x01\x00garbage",)),
        "not_avro": ("", b"\x30\x82 not an Avro single-object message"),
    }
    if set(forged) != set(EXPECTED):
        raise AssertionError(f"cases and EXPECTED differ: {set(forged) ^ set(EXPECTED)}")
    return {
        name: Case(name, sid, value, len(records.get(name, ())))
        for name, (sid, value) in forged.items()
    }
