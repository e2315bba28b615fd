"""The verify stage: every good algorithm passes, every bad case fails with its own reason."""

from __future__ import annotations

import dataclasses
import functools
import math
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import Store, VerificationError
from hypothesis import given, settings
from hypothesis import strategies as st

from hocba.domain.messages import Submission
from hocba.domain.reasons import Reason
from hocba.pipeline import verify as verify_module
from hocba.pipeline.verify import Verifier, VerifyFailure, VerifyOk, VerifyResult
from hocba.trust import pki as demo
from hocba.trust.pki import DemoPki, generate_demo_pki
from hocba.trust.register import CertStatus, Register, set_status
from hocba.trust.signing import Signer, load_signer, sign
from hocba.trust.store import (
    MAX_PATH_DEPTH,
    TrustStore,
    build_chain,
    load_trust_store,
    one_per_ca,
    revoked_in,
)

CODES = ("SGD-2024-01", "SGD-2024-79")
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
PAYLOAD = b"\xc3\x01 one single-object-encoded RecordBatch"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    return generate_demo_pki(tmp_path_factory.mktemp("pki"), CODES, now=NOW)


@pytest.fixture(scope="module")
def store(pki: DemoPki) -> TrustStore:
    return load_trust_store(pki.trust_dir)


@pytest.fixture
def verifier(store: TrustStore) -> Verifier:
    return Verifier(store, clock_skew=timedelta(minutes=5))


@functools.cache
def _signer(key_path: Path, chain_path: Path, rsa_pss: bool) -> Signer:
    return load_signer(key_path, chain_path, rsa_pss=rsa_pss)  # RSA key loading is slow


def submission(pki: DemoPki, name: str, *, rsa_pss: bool = False, **changes: object) -> Submission:
    """A correctly signed submission from leaf `name`, then with `changes` applied."""
    leaf = pki.leaves[name]
    signer = _signer(leaf.key_path, leaf.chain_path, rsa_pss)
    signed = Submission(
        submission_id="9b2f6c1e-0000-4000-8000-000000000001",
        sender_code=leaf.department_code,
        vendor="vendor-a",
        sent_at_ms=int(NOW.timestamp() * 1000),
        payload=PAYLOAD,
        signature=sign(signer, PAYLOAD),
        signature_algorithm=signer.algorithm,
        certificate_chain=signer.chain_der,
    )
    return dataclasses.replace(signed, **changes)  # type: ignore[arg-type]


def reason(result: VerifyResult) -> Reason | None:
    return result.reason if isinstance(result, VerifyFailure) else None


@pytest.mark.parametrize(
    ("name", "rsa_pss"),
    [
        (CODES[0], False),
        (CODES[1], False),
        (CODES[0], True),
        (demo.ECDSA, False),
        (demo.ED25519, False),
    ],
)
def test_good_submissions_are_accepted(
    pki: DemoPki, verifier: Verifier, name: str, rsa_pss: bool
) -> None:
    result = verifier.verify(submission(pki, name, rsa_pss=rsa_pss), NOW)
    leaf = pki.leaves[name]
    assert result == VerifyOk(leaf.fingerprint, leaf.department_code)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (demo.UNTRUSTED, Reason.VERIFY_CHAIN_UNTRUSTED),
        (demo.EXPIRED, Reason.VERIFY_CERT_EXPIRED),
        (demo.NOT_YET_VALID, Reason.VERIFY_CERT_NOT_YET_VALID),
        (demo.REVOKED, Reason.VERIFY_CERT_REVOKED),
        (demo.SHA1, Reason.VERIFY_ALGORITHM_FORBIDDEN),
        (demo.RSA1024, Reason.VERIFY_KEY_TOO_WEAK),
        (demo.UNREGISTERED, Reason.VERIFY_CERT_NOT_APPROVED),
    ],
)
def test_bad_certificates_fail_with_their_reason(
    pki: DemoPki, verifier: Verifier, name: str, expected: Reason
) -> None:
    assert reason(verifier.verify(submission(pki, name), NOW)) is expected


def test_tampered_payload_and_signature_are_invalid(pki: DemoPki, verifier: Verifier) -> None:
    good = submission(pki, CODES[0])
    flipped = bytes([good.signature[0] ^ 1]) + good.signature[1:]
    tampered_payload = dataclasses.replace(good, payload=PAYLOAD + b" ")
    tampered_signature = dataclasses.replace(good, signature=flipped)
    assert reason(verifier.verify(tampered_payload, NOW)) is Reason.VERIFY_SIGNATURE_INVALID
    assert reason(verifier.verify(tampered_signature, NOW)) is Reason.VERIFY_SIGNATURE_INVALID


def test_another_departments_key_under_the_victims_chain_is_invalid(
    pki: DemoPki, verifier: Verifier
) -> None:
    victim = submission(pki, CODES[0])
    forged = submission(
        pki, CODES[1], sender_code=CODES[0], certificate_chain=victim.certificate_chain
    )
    assert reason(verifier.verify(forged, NOW)) is Reason.VERIFY_SIGNATURE_INVALID


def test_missing_intermediate_is_untrusted(pki: DemoPki, verifier: Verifier) -> None:
    good = submission(pki, CODES[0])
    leaf_only = dataclasses.replace(good, certificate_chain=good.certificate_chain[:1])
    assert reason(verifier.verify(leaf_only, NOW)) is Reason.VERIFY_CHAIN_UNTRUSTED


@pytest.mark.parametrize("status", [CertStatus.SUSPENDED, CertStatus.WITHDRAWN])
def test_suspended_or_withdrawn_leaves_are_not_approved(
    pki: DemoPki, store: TrustStore, status: CertStatus
) -> None:
    fp = pki.leaves[CODES[0]].fingerprint
    changed = Verifier(dataclasses.replace(store, register=set_status(store.register, fp, status)))
    result = changed.verify(submission(pki, CODES[0]), NOW)
    assert reason(result) is Reason.VERIFY_CERT_NOT_APPROVED
    assert isinstance(result, VerifyFailure) and status.value in result.detail


def test_sender_must_be_the_registered_department(pki: DemoPki, verifier: Verifier) -> None:
    spoofed = submission(pki, CODES[0], sender_code=CODES[1])
    assert reason(verifier.verify(spoofed, NOW)) is Reason.VERIFY_SIGNER_NOT_AUTHORIZED


@pytest.mark.parametrize(
    ("chain", "expected"),
    [
        ((), Reason.VERIFY_CHAIN_EMPTY),
        ((b"\x30\x03not a certificate",), Reason.VERIFY_CERT_MALFORMED),
        (None, Reason.VERIFY_CERT_MALFORMED),  # a good leaf, then garbage
    ],
)
def test_empty_and_garbage_chains(
    pki: DemoPki, verifier: Verifier, chain: tuple[bytes, ...] | None, expected: Reason
) -> None:
    good = submission(pki, CODES[0])
    chain = (good.certificate_chain[0], b"garbage") if chain is None else chain
    assert (
        reason(verifier.verify(dataclasses.replace(good, certificate_chain=chain), NOW)) is expected
    )


def test_a_name_attribute_of_the_wrong_string_type_is_malformed(
    pki: DemoPki, verifier: Verifier
) -> None:
    """Found by tests/fuzz: countryName as a BIT STRING made `cryptography` raise TypeError."""
    good = submission(pki, CODES[0])
    country_vn = bytes.fromhex("0603550406") + b"\x13\x02VN"  # OID 2.5.4.6, PrintableString
    leaf = good.certificate_chain[0]
    assert country_vn in leaf
    bit_string = leaf.replace(country_vn, country_vn[:5] + b"\x03" + country_vn[6:], 1)
    chain = (bit_string, *good.certificate_chain[1:])
    result = verifier.verify(dataclasses.replace(good, certificate_chain=chain), NOW)
    assert reason(result) is Reason.VERIFY_CERT_MALFORMED


def _retired_root() -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "retired root")])
    key = rsa.generate_private_key(65537, 2048)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(datetime(2001, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2011, 1, 1, tzinfo=UTC))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )


@pytest.mark.parametrize("extra", ["long-expired root", "sha1-signed certificate"])
def test_an_unrelated_certificate_in_the_chain_does_not_break_it(
    pki: DemoPki, verifier: Verifier, extra: str
) -> None:
    """A CA's "full chain" bundle may carry certificates off the path: a root retired long
    ago, an old one signed with SHA-1. Nothing relies on them."""
    good = submission(pki, CODES[0])
    if extra == "long-expired root":
        unrelated = _retired_root()
    else:
        unrelated = submission(pki, demo.SHA1).certificate_chain[0]
    bundle = dataclasses.replace(good, certificate_chain=(*good.certificate_chain, unrelated))
    leaf = pki.leaves[CODES[0]]
    assert verifier.verify(bundle, NOW) == VerifyOk(leaf.fingerprint, leaf.department_code)


def _self_signed_with_exponent(exponent_bits: int) -> bytes:
    """A 2048-bit RSA certificate whose public exponent has `exponent_bits` bits."""
    base = rsa.generate_private_key(65537, 2048).private_numbers()
    p, q = base.p, base.q
    lam = (p - 1) * (q - 1) // math.gcd(p - 1, q - 1)
    e = (1 << (exponent_bits - 1)) | 1
    while math.gcd(e, lam) != 1:
        e += 2
    d = pow(e, -1, lam)
    public = rsa.RSAPublicNumbers(e, p * q)
    key = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), public)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "big exponent")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .sign(key.private_key(), hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def test_an_rsa_exponent_no_ca_issues_is_refused_before_any_signature_check(
    pki: DemoPki, verifier: Verifier
) -> None:
    """A chain of such keys took ~0.7 s of a core per message to reject (a cheap DoS)."""
    good = submission(pki, CODES[0])
    chain = (_self_signed_with_exponent(1000),)
    result = verifier.verify(dataclasses.replace(good, certificate_chain=chain), NOW)
    assert reason(result) is Reason.VERIFY_ALGORITHM_FORBIDDEN
    assert "exponent of 1000 bits" in str(getattr(result, "detail", ""))


@pytest.mark.parametrize("algorithm", ["ED25519", "ECDSA_P256_SHA256", "RSA_PKCS1V15_SHA1", ""])
def test_declared_algorithm_must_fit_the_leaf_key(
    pki: DemoPki, verifier: Verifier, algorithm: str
) -> None:
    mismatched = submission(pki, CODES[0], signature_algorithm=algorithm)
    assert reason(verifier.verify(mismatched, NOW)) is Reason.VERIFY_ALGORITHM_FORBIDDEN


@pytest.mark.parametrize(
    ("sent_at", "received_at", "expected"),
    [
        (NOW - timedelta(days=1, minutes=4), NOW, None),  # before not_before, within the skew
        (NOW - timedelta(days=1, minutes=6), NOW, Reason.VERIFY_CERT_NOT_YET_VALID),
        (NOW, NOW + timedelta(days=800), Reason.VERIFY_CERT_EXPIRED),
        (NOW + timedelta(minutes=4), NOW, None),  # the sender's clock ahead, within the skew
        (NOW + timedelta(minutes=6), NOW, Reason.VERIFY_SENT_IN_FUTURE),
        (NOW + timedelta(days=800), NOW, Reason.VERIFY_SENT_IN_FUTURE),
    ],
)
def test_validity_is_checked_at_sending_and_at_receipt(
    pki: DemoPki,
    verifier: Verifier,
    sent_at: datetime,
    received_at: datetime,
    expected: Reason | None,
) -> None:
    assert verifier.verify(submission(pki, CODES[0]), NOW) == VerifyOk(
        pki.leaves[CODES[0]].fingerprint, CODES[0]
    )  # cached now: the later time must still be judged
    timed = submission(pki, CODES[0], sent_at_ms=int(sent_at.timestamp() * 1000))
    assert reason(verifier.verify(timed, received_at)) is expected
    assert verifier.validations == 1


def test_checks_run_in_the_documented_order(pki: DemoPki, verifier: Verifier) -> None:
    revoked_and_spoofed = submission(pki, demo.REVOKED, sender_code=CODES[1], signature=b"x")
    weak_and_unregistered = submission(pki, demo.RSA1024, signature_algorithm="ED25519")
    assert reason(verifier.verify(revoked_and_spoofed, NOW)) is Reason.VERIFY_CERT_REVOKED
    assert reason(verifier.verify(weak_and_unregistered, NOW)) is Reason.VERIFY_KEY_TOO_WEAK


def test_chain_validation_is_cached_per_chain(pki: DemoPki, store: TrustStore) -> None:
    verifier = Verifier(store, cache_size=1)
    a, b = submission(pki, CODES[0]), submission(pki, CODES[1])
    for sub, validations in ((a, 1), (a, 1), (b, 2), (b, 2), (a, 3)):  # size 1: b evicts a
        assert isinstance(verifier.verify(sub, NOW), VerifyOk)
        assert verifier.validations == validations
    forged = dataclasses.replace(a, payload=b"other")
    assert reason(verifier.verify(forged, NOW)) is Reason.VERIFY_SIGNATURE_INVALID  # not cached
    assert verifier.validations == 3


def test_unexpected_errors_become_failures(pki: DemoPki, verifier: Verifier) -> None:
    result = verifier.verify(submission(pki, CODES[0]), None)  # type: ignore[arg-type]
    assert reason(result) is Reason.INTERNAL_ERROR


@settings(max_examples=60, deadline=None)
@given(chain=st.lists(st.binary(max_size=64), max_size=3), signature=st.binary(max_size=64))
def test_arbitrary_bytes_never_raise(
    pki: DemoPki, store: TrustStore, chain: list[bytes], signature: bytes
) -> None:
    sub = submission(pki, CODES[0], certificate_chain=tuple(chain), signature=signature)
    result = Verifier(store).verify(sub, NOW)
    assert reason(result) in {Reason.VERIFY_CHAIN_EMPTY, Reason.VERIFY_CERT_MALFORMED}


def test_an_untrusted_chain_is_built_once_when_a_second_try_could_not_differ(
    pki: DemoPki, store: TrustStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sender can force a cache miss by changing bytes in a certificate: each miss must
    not cost two identical path builds."""
    builds: list[datetime] = []
    real = verify_module.build_chain

    def counted(*args: Any) -> Any:
        builds.append(args[3])
        return real(*args)

    monkeypatch.setattr(verify_module, "build_chain", counted)
    untrusted = submission(pki, demo.UNTRUSTED)
    result = Verifier(store).verify(untrusted, NOW)
    assert reason(result) is Reason.VERIFY_CHAIN_UNTRUSTED
    assert len(builds) == 1


def _ec_cert(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = True,
    days: int = 30,
    starts_in: int = -1,  # days
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + timedelta(days=starts_in))
        .not_valid_after(NOW + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(signer, hashes.SHA256())
    )


def _cn(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def test_a_name_the_sender_chose_is_cut_short_in_the_failure(verifier: Verifier) -> None:
    """Every distinct chain's verdict is cached and its detail stored: a certificate with
    thousands of name attributes made each ~0.8 MB, enough to exhaust a worker's memory."""
    key = ec.generate_private_key(ec.SECP521R1())  # a forbidden curve: the name is reported
    long_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "u")] * 1000)
    cert = _ec_cert(long_name, long_name, key, key)
    chain = (cert.public_bytes(serialization.Encoding.DER),)
    sub = Submission("id", CODES[0], "v", int(NOW.timestamp() * 1000), PAYLOAD, b"", "", chain)
    result = verifier.verify(sub, NOW)
    assert reason(result) is Reason.VERIFY_ALGORITHM_FORBIDDEN
    assert isinstance(result, VerifyFailure) and 100 < len(result.detail) <= 400


def test_path_building_sees_one_certificate_per_ca_and_none_self_issued() -> None:
    """Copies of one CA (one name and key) issuing each other made path building try every
    order of them: ~0.6 s of a core per message sent with a fresh leaf. What a chain needs
    stays: a cross-certificate, and of a CA's renewals the one valid at the time."""
    root_key, ca_key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in "123")
    root = _ec_cert(_cn("root"), _cn("root"), root_key, root_key)
    old, new = (_ec_cert(_cn("CA"), _cn("root"), ca_key, root_key, days=d) for d in (10, 300))
    renewal = _ec_cert(_cn("CA"), _cn("root"), ca_key, root_key, days=900, starts_in=5)
    copy = _ec_cert(_cn("CA"), _cn("CA"), ca_key, ca_key)  # self-issued: from the store only
    cross = _ec_cert(_cn("CA"), _cn("other root"), ca_key, other_key)
    presented = [root, old, new, renewal, copy, cross, old]
    assert one_per_ca(presented, NOW) == [new, cross]
    assert one_per_ca(presented, NOW + timedelta(days=400)) == [renewal, cross]


def test_a_path_longer_than_the_depth_limit_is_refused() -> None:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _ec_cert(_cn("root"), _cn("root"), root_key, root_key)
    store = TrustStore((root,), (), (), Register({}), Store([root]))

    def leaf_below(cas: int) -> tuple[x509.Certificate, list[x509.Certificate]]:
        issuer, issuer_key, chain = _cn("root"), root_key, []
        for depth in range(cas):
            key = ec.generate_private_key(ec.SECP256R1())
            chain.append(_ec_cert(_cn(f"CA {depth}"), issuer, key, issuer_key))
            issuer, issuer_key = _cn(f"CA {depth}"), key
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        return _ec_cert(_cn("leaf"), issuer, leaf_key, issuer_key, ca=False), chain

    leaf, cas = leaf_below(MAX_PATH_DEPTH)
    assert len(build_chain(store, leaf, cas, NOW)) == MAX_PATH_DEPTH + 2
    leaf, cas = leaf_below(MAX_PATH_DEPTH + 1)
    with pytest.raises(VerificationError, match="max depth"):
        build_chain(store, leaf, cas, NOW)


def _revoking(issuer: x509.Name, key: ec.EllipticCurvePrivateKey, serial: int) -> Any:
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer)
        .last_update(NOW - timedelta(days=1))
        .next_update(NOW + timedelta(days=7))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW).build()
        )
        .sign(key, hashes.SHA256())
    )


CA_NAME = unicodedata.normalize("NFC", "Sở GD&ĐT Hà Nội")


def test_a_crl_counts_in_any_case_and_form_of_its_issuer_and_after_a_key_rollover(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Revocation failed open, in silence, on a CRL naming its CA in other case (RFC 5280
    §7.1 ignores case), in other Unicode form (Vietnamese letters composed in one, decomposed
    in the other: RFC 4518 compares them NFKC-normalised), and on one signed with the CA's
    new key after a rollover."""
    root_key, ca_key, new_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in "1234")
    root = _ec_cert(_cn("root"), _cn("root"), root_key, root_key)
    issuing = _ec_cert(_cn(CA_NAME), _cn("root"), ca_key, root_key)
    rolled_over = _ec_cert(_cn(CA_NAME), _cn("root"), new_key, root_key)
    leaf = _ec_cert(_cn("leaf"), _cn(CA_NAME), leaf_key, ca_key, ca=False)
    path = [leaf, issuing, root]

    def store(crl: Any, *intermediates: x509.Certificate) -> TrustStore:
        return TrustStore((root,), intermediates, (crl,), Register({}), Store([root]))

    shouted = _revoking(_cn("SỞ  GD&ĐT HÀ NỘI"), ca_key, leaf.serial_number)
    assert revoked_in(store(shouted), path) == leaf
    decomposed = _revoking(_cn(unicodedata.normalize("NFD", CA_NAME)), ca_key, leaf.serial_number)
    assert decomposed.issuer != issuing.subject
    assert revoked_in(store(decomposed), path) == leaf
    by_new_key = _revoking(_cn(CA_NAME), new_key, leaf.serial_number)
    assert revoked_in(store(by_new_key), path) is None  # its key is unknown: not applied...
    assert "is signed by no key of that CA" in caplog.text  # ...and said
    assert revoked_in(store(by_new_key, rolled_over), path) == leaf


def test_a_ca_without_a_crl_is_named_when_the_store_loads(
    pki: DemoPki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trust_dir = tmp_path / "trust"
    (trust_dir / "anchors").mkdir(parents=True)
    anchors = sorted((pki.trust_dir / "anchors").glob("*.pem"))
    (trust_dir / "anchors" / "root.pem").write_bytes(anchors[0].read_bytes())
    load_trust_store(pki.trust_dir)
    assert "no CRL of" not in caplog.text
    load_trust_store(trust_dir)
    assert "no CRL of CN=" in caplog.text
