"""The trust store: anchors, optional intermediates, CRLs and the approved-certificate register.

Layout of a trust dir: `anchors/*.pem`, `intermediates/*.pem` (may be empty: senders normally
ship their intermediates in the chain), `crls/*.pem|*.crl|*.der` (PEM or DER, as CAs publish
them), `register.json`. Path validation is RFC 5280 as implemented by
`cryptography.x509.verification` with the end-entity profile adapted to document signing: no
SAN needed, any (or no) EKU (DESIGN §10), but a key usage that allows signing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
)

from hocba.trust.register import Register, load_register

log = logging.getLogger("hocba.trust")
_CRL_PATTERNS = ("*.pem", "*.crl", "*.der")
# CAs between a leaf and its anchor. Government and public CAs here issue from a root through
# one or two intermediates; a deeper path only adds orders for path building to try.
MAX_PATH_DEPTH = 4


def _signing_usage(_policy: Policy, cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    """A leaf's key usage, when present, must allow signing documents (RFC 5280 §4.2.1.3)."""
    if usage is not None and not (usage.digital_signature or usage.content_commitment):
        raise ValueError(
            f"{cert.subject.rfc4514_string()}: key usage allows neither digitalSignature "
            "nor nonRepudiation"
        )


_EE_POLICY = (
    ExtensionPolicy.webpki_defaults_ee()
    .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
    .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _signing_usage)
)
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca()


@dataclass(frozen=True, slots=True)
class TrustStore:
    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...]
    register: Register
    anchor_store: Store
    # Issuers whose CRL is past its next update: its revocations are still applied, but newer
    # ones are unknown, so operators must be told (a warning and a metric), never left silent.
    expired_crls: tuple[str, ...] = ()


def _files(directory: Path, patterns: Sequence[str] = ("*.pem",)) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted({p for pattern in patterns for p in directory.glob(pattern)})


def _load_crl(path: Path) -> x509.CertificateRevocationList:
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def load_crls(trust_dir: Path) -> tuple[x509.CertificateRevocationList, ...]:
    return tuple(_load_crl(p) for p in _files(trust_dir / "crls", _CRL_PATTERNS))


def past_next_update(
    crls: Sequence[x509.CertificateRevocationList], at: datetime
) -> tuple[str, ...]:
    """The issuers whose CRL is past its next update at `at`."""
    return tuple(
        crl.issuer.rfc4514_string()
        for crl in crls
        if crl.next_update_utc is not None and crl.next_update_utc < at
    )


def _expired(crls: Sequence[x509.CertificateRevocationList], at: datetime) -> tuple[str, ...]:
    expired = past_next_update(crls, at)
    for issuer in expired:
        log.warning("the CRL of %s is past its next update: newer revocations are unknown", issuer)
    return expired


def load_trust_store(trust_dir: Path, *, now: datetime | None = None) -> TrustStore:
    """Load and parse everything; `now` (default: the clock) judges CRL freshness."""
    anchors = tuple(
        c
        for p in _files(trust_dir / "anchors")
        for c in x509.load_pem_x509_certificates(p.read_bytes())
    )
    if not anchors:
        raise ValueError(f"{trust_dir}: no trust anchors in anchors/*.pem")
    register_path = trust_dir / "register.json"
    crls = load_crls(trust_dir)
    return TrustStore(
        anchors=anchors,
        intermediates=tuple(
            c
            for p in _files(trust_dir / "intermediates")
            for c in x509.load_pem_x509_certificates(p.read_bytes())
        ),
        crls=crls,
        register=load_register(register_path) if register_path.is_file() else Register(),
        anchor_store=Store(list(anchors)),
        expired_crls=_expired(crls, now or datetime.now(UTC)),
    )


def build_chain(
    store: TrustStore, leaf: x509.Certificate, presented: Sequence[x509.Certificate], at: datetime
) -> list[x509.Certificate]:
    """The validated path leaf → anchor; raises `VerificationError` when there is none."""
    verifier = (
        PolicyBuilder()
        .store(store.anchor_store)
        .time(at)
        .max_chain_depth(MAX_PATH_DEPTH)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
        .build_client_verifier()
    )
    return verifier.verify(leaf, [*one_per_ca(presented), *store.intermediates]).chain


def one_per_ca(presented: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """A sender's CA certificates as path building should see them: one per CA (name and
    key), the one valid longest (a re-issued CA certificate may travel with its old one), and
    none self-issued, since a root is trusted only from the store.

    Path building tries every order of the candidates for an issuer: a chain of copies of one
    CA (one name and key, many serials, issuing each other) cost ~0.6 s of a core per message
    sent with a fresh leaf, ~2 ms once each CA is one certificate."""
    best: dict[tuple[bytes, bytes], x509.Certificate] = {}
    for cert in presented:
        if cert.issuer == cert.subject:
            continue
        spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        ca = (cert.subject.public_bytes(), spki)
        kept = best.get(ca)
        if kept is None or cert.not_valid_after_utc > kept.not_valid_after_utc:
            best[ca] = cert
    return list(best.values())


def revoked_in(store: TrustStore, chain: Sequence[x509.Certificate]) -> x509.Certificate | None:
    """The first certificate of a validated chain listed in a CRL signed by its issuer."""
    for cert, issuer in zip(chain, [*chain[1:], chain[-1]], strict=True):
        for crl in store.crls:
            if (
                crl.issuer == cert.issuer
                and crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
                and crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]  # CA keys sign
            ):
                return cert
    return None
