"""The trust store: anchors, optional intermediates, CRLs and the approved-certificate register.

Layout of a trust dir: `anchors/*.pem`, `intermediates/*.pem` (may be empty: senders normally
ship their intermediates in the chain), `crls/*.pem|*.crl|*.der` (PEM or DER, as CAs publish
them), `register.json`. Path validation is RFC 5280 as implemented by
`cryptography.x509.verification` with the end-entity profile adapted to document signing: no
SAN needed, any (or no) EKU (DESIGN §10), but a key usage that allows signing.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
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


def _warn_without_crl(
    cas: Sequence[x509.Certificate], crls: Sequence[x509.CertificateRevocationList]
) -> None:
    """Revocation fails open for a CA with no CRL: say so at each load, so an operator who
    forgot one (or installed the wrong one) learns it before a revoked certificate passes."""
    for ca in cas:
        if not any(same_name(crl.issuer, ca.subject) for crl in crls):
            log.warning(
                "no CRL of %s in crls/: a certificate it revoked would still be accepted",
                ca.subject.rfc4514_string(),
            )


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
    intermediates = tuple(
        c
        for p in _files(trust_dir / "intermediates")
        for c in x509.load_pem_x509_certificates(p.read_bytes())
    )
    _warn_without_crl((*anchors, *intermediates), crls)
    return TrustStore(
        anchors=anchors,
        intermediates=intermediates,
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
    return verifier.verify(leaf, [*one_per_ca(presented, at), *store.intermediates]).chain


def one_per_ca(presented: Sequence[x509.Certificate], at: datetime) -> list[x509.Certificate]:
    """A sender's CA certificates as path building should see them: one per issuer, name and
    key, and none self-issued. A re-issued CA certificate may travel with its old one: the
    one valid at `at` is kept, else the one valid longest; a cross-certificate (another
    issuer) is another candidate. Roots and a root's rollover links (self-issued) are
    trusted only from the store (`anchors/`, `intermediates/`).

    Path building tries every order of the candidates for an issuer: copies of one CA (one
    name and key, many serials, issuing each other) cost ~0.6 s of a core per message sent
    with a fresh leaf, ~2 ms as one candidate. Telling a self-signed copy from a rollover link
    would cost a signature check per certificate sent, ~10 ms a message with P-384 keys."""
    best: dict[tuple[bytes, bytes, bytes], tuple[tuple[bool, datetime], x509.Certificate]] = {}
    for cert in presented:
        if cert.issuer == cert.subject:
            continue
        spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        ca = (cert.issuer.public_bytes(), cert.subject.public_bytes(), spki)
        rank = (
            cert.not_valid_before_utc <= at <= cert.not_valid_after_utc,
            cert.not_valid_after_utc,
        )
        if ca not in best or rank > best[ca][0]:
            best[ca] = (rank, cert)
    return [cert for _, cert in best.values()]


def same_name(a: x509.Name, b: x509.Name) -> bool:
    """Names compared as RFC 5280 §7.1 says: attribute texts without regard to case, Unicode
    form (RFC 4518 normalises to NFKC) or runs of spaces. A CRL whose issuer a CA spelled in
    other case, or with Vietnamese letters decomposed, still counts."""
    return _folded(a) == _folded(b)


def _folded(name: x509.Name) -> tuple[frozenset[tuple[str, str | bytes]], ...]:
    return tuple(
        frozenset(
            (a.oid.dotted_string, _prepared(a.value))
            if isinstance(a.value, str)
            else (a.oid.dotted_string, a.value)
            for a in rdn
        )
        for rdn in name.rdns
    )


def _prepared(text: str) -> str:
    """RFC 4518's string preparation, as far as names in this country need it: case folded
    between two NFKC normalisations (one form for composed and decomposed letters), runs of
    spaces made one."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(folded.split())


def _signed_by_one_of(
    crl: x509.CertificateRevocationList, signers: Sequence[x509.Certificate]
) -> bool:
    for signer in signers:
        try:
            if crl.is_signature_valid(signer.public_key()):  # type: ignore[arg-type]  # CA keys sign
                return True
        except (TypeError, ValueError, UnsupportedAlgorithm):  # a key of another type
            continue
    return False


def revoked_in(store: TrustStore, chain: Sequence[x509.Certificate]) -> x509.Certificate | None:
    """The first certificate of a validated chain listed in a CRL of its issuer.

    The CRL counts when signed by the issuer's key on the path or by another certificate of
    that CA in the store: after a key rollover a CA signs its CRLs with its new key (RFC 5280
    §6.3.3), and the operator installs the new CA certificate in `intermediates/`. Counting
    more CRLs can only refuse more. One listing the certificate but signed by no known key
    of its CA is not applied, and said in the log."""
    for cert, issuer in zip(chain, [*chain[1:], chain[-1]], strict=True):
        for crl in store.crls:
            if not same_name(crl.issuer, cert.issuer):
                continue
            if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is None:
                continue
            cas = [
                c
                for c in (*store.anchors, *store.intermediates)
                if same_name(c.subject, crl.issuer)
            ]
            if _signed_by_one_of(crl, [issuer, *cas]):
                return cert
            log.warning(
                "a CRL of %s lists %s serial %x but is signed by no key of that CA the worker "
                "knows, so it is not applied: install the CA certificate that signed it in "
                "intermediates/",
                crl.issuer.rfc4514_string(),
                cert.subject.rfc4514_string(),
                cert.serial_number,
            )
    return None
