"""The verify stage: is this submission signed, over exactly its payload, by an approved sender?

Checks run in the order of DESIGN §3, each failing with its own reason. Everything about the
certificate chain (parsing, algorithm policy, path validation, revocation, the register) is
computed once per distinct chain and cached, because full path validation costs ~200 µs
against ~50 µs for a signature check (DESIGN §9). Validity periods are cached as numbers and
compared per message, so a cached verdict never outlives its certificates. The cache belongs to
one `TrustStore`: when the trust dir changes, build a new `Verifier`.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import SignatureAlgorithmOID
from cryptography.x509.verification import VerificationError

from hocba.domain.messages import Submission
from hocba.domain.reasons import Reason
from hocba.trust.register import CertStatus
from hocba.trust.signing import key_matches, signature_valid
from hocba.trust.store import TrustStore, build_chain, revoked_in

_ALLOWED_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_ALLOWED_CURVES = (ec.SECP256R1, ec.SECP384R1)  # P-384 only ever for CAs: leaves must be P-256


@dataclass(frozen=True, slots=True)
class VerifyOk:
    fingerprint: str  # SHA-256 of the leaf DER, lowercase hex
    department_code: str  # from the register; the province check happens at enrichment


@dataclass(frozen=True, slots=True)
class VerifyFailure:
    reason: Reason
    detail: str


VerifyResult = VerifyOk | VerifyFailure


@dataclass(frozen=True, slots=True)
class _Chain:
    """A parsed, policy-clean chain and what its validation decided, in check order."""

    leaf_key: CertificatePublicKeyTypes
    path_failure: VerifyFailure | None
    not_before_ms: int
    not_after_ms: int
    status_failure: VerifyFailure | None
    fingerprint: str
    department_code: str


# Characters of a sender-chosen text (a certificate's name, a path builder's complaint) kept in
# a failure's detail: every distinct chain's verdict is cached and its detail stored, and a
# certificate with thousands of name attributes made each one ~0.8 MB.
_SHOWN = 300


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def _named(cert: x509.Certificate) -> str:
    return _short(cert.subject.rfc4514_string())


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _rsa_cost_bounded(key: rsa.RSAPublicKey) -> bool:
    """An RSA check costs about the exponent's bits times the modulus' squared: a sender's
    chain of 3072-bit keys with 3071-bit exponents took ~0.7 s of a core per message. CAs
    issue exponents of 65537 (at most 32 bits here) and moduli of at most 4096 bits."""
    exponent = key.public_numbers().e
    return key.key_size <= 4096 and exponent % 2 == 1 and 3 <= exponent < 2**32


def _key_failure(cert: x509.Certificate) -> VerifyFailure | None:
    """A key no certificate of ours may carry, or too costly to check a signature with.
    Applied to every certificate presented before a path is built, since building checks
    signatures with the keys of candidate issuers."""
    who = _named(cert)
    try:
        key = cert.public_key()
    except UnsupportedAlgorithm as exc:
        return VerifyFailure(Reason.VERIFY_ALGORITHM_FORBIDDEN, _short(f"{who}: {exc}"))
    except ValueError as exc:  # parsing is lazy: a bad key field shows up here
        return VerifyFailure(Reason.VERIFY_CERT_MALFORMED, _short(f"{who}: {exc}"))
    if isinstance(key, rsa.RSAPublicKey) and not _rsa_cost_bounded(key):
        detail = f"{who} has an RSA key no CA issues ({key.key_size} bits, exponent of "
        detail += f"{key.public_numbers().e.bit_length()} bits)"
        return VerifyFailure(Reason.VERIFY_ALGORITHM_FORBIDDEN, detail)
    if isinstance(key, ec.EllipticCurvePublicKey) and not isinstance(key.curve, _ALLOWED_CURVES):
        return VerifyFailure(
            Reason.VERIFY_ALGORITHM_FORBIDDEN, f"{who} uses curve {key.curve.name}"
        )
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return VerifyFailure(Reason.VERIFY_ALGORITHM_FORBIDDEN, f"{who} has a forbidden key type")
    return None


def _policy_failure(cert: x509.Certificate) -> VerifyFailure | None:
    """The signature hash and key strength of a certificate the path relies on (the leaf,
    and the presented CAs on the path). A CA's bundle may carry certificates off the path,
    an old SHA-1 root say: those are not relied on, and do not refuse the message."""
    who = _named(cert)
    try:
        digest: hashes.HashAlgorithm | None = cert.signature_hash_algorithm
    except UnsupportedAlgorithm as exc:
        return VerifyFailure(Reason.VERIFY_ALGORITHM_FORBIDDEN, _short(f"{who}: {exc}"))
    except ValueError as exc:  # parsing is lazy: a bad algorithm field shows up here
        return VerifyFailure(Reason.VERIFY_CERT_MALFORMED, _short(f"{who}: {exc}"))
    if cert.signature_algorithm_oid != SignatureAlgorithmOID.ED25519 and not isinstance(
        digest, _ALLOWED_HASHES
    ):
        used = digest.name if digest else cert.signature_algorithm_oid.dotted_string
        return VerifyFailure(Reason.VERIFY_ALGORITHM_FORBIDDEN, f"{who} is signed with {used}")
    key = cert.public_key()  # parsed by `_key_failure` already
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        return VerifyFailure(Reason.VERIFY_KEY_TOO_WEAK, f"{who} has a {key.key_size}-bit RSA key")
    return None


def _status(store: TrustStore, chain: Sequence[x509.Certificate], fp: str) -> VerifyFailure | str:
    """The register's department code for an unrevoked, approved leaf, else the failure."""
    revoked = revoked_in(store, chain)
    if revoked is not None:
        detail = f"{_named(revoked)} serial {revoked.serial_number:x} is revoked"
        return VerifyFailure(Reason.VERIFY_CERT_REVOKED, detail)
    entry = store.register.get(fp)
    if entry is None:
        return VerifyFailure(Reason.VERIFY_CERT_NOT_APPROVED, f"leaf {fp} is not in the register")
    if entry.status is not CertStatus.APPROVED:
        detail = f"leaf {fp} is {entry.status.value} in the register"
        return VerifyFailure(Reason.VERIFY_CERT_NOT_APPROVED, detail)
    return entry.department_code


# What parsing a hostile DER can raise: cryptography signals some defects with their own types,
# and a name attribute whose string type does not fit its OID (a BIT STRING where only the
# unique identifier may have one) with TypeError, found by tests/fuzz.
_MALFORMED = (
    ValueError,
    TypeError,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    x509.InvalidVersion,
)


def _load_certificate(der: bytes) -> x509.Certificate:
    """Parse the version, names and extensions now: `cryptography` parses them lazily, and a
    malformed one must be `verify.cert_malformed` here, not an exception raised by a later
    check."""
    cert = x509.load_der_x509_certificate(der)
    cert.version  # noqa: B018  # raises InvalidVersion outside X.509's 0 to 2
    for name in (cert.subject, cert.issuer):
        name.rfc4514_string()
    len(cert.extensions)
    return cert


def _path(
    store: TrustStore, certs: Sequence[x509.Certificate], now: datetime
) -> list[x509.Certificate]:
    """The validated path, built at a time its certificates hold: validity is judged per
    message, against the path's own window. The path is not known before it is built, so
    first at a time the leaf holds, then at one every presented certificate holds; a CA's
    bundle may carry an unrelated certificate long expired, which the second alone would
    turn into an impossible time."""
    times = []
    for considered in (certs[:1], certs):
        start = max(c.not_valid_before_utc for c in considered)
        end = min(c.not_valid_after_utc for c in considered)
        times.append(min(max(now, start), end))
    try:
        return build_chain(store, certs[0], certs[1:], times[0])
    except (VerificationError, ValueError):
        if times[1] == times[0]:  # the same build again would fail the same way
            raise
    return build_chain(store, certs[0], certs[1:], times[1])


def _validate(store: TrustStore, ders: Sequence[bytes], now: datetime) -> _Chain | VerifyFailure:
    """Everything that depends only on the chain (and the store), not on the message."""
    certs = []
    for index, der in enumerate(ders):
        try:
            certs.append(_load_certificate(der))
        except _MALFORMED as exc:
            detail = _short(f"certificate {index}: {exc}")
            return VerifyFailure(Reason.VERIFY_CERT_MALFORMED, detail)
    failure = next(filter(None, map(_key_failure, certs)), None) or _policy_failure(certs[0])
    if failure is not None:
        return failure
    leaf, fp = certs[0], certs[0].fingerprint(hashes.SHA256()).hex()
    try:
        path = _path(store, certs, now)
    except (VerificationError, ValueError) as exc:
        # With no path, a CA below policy is the likelier cause, and the more useful reason.
        failure = next(filter(None, map(_policy_failure, certs[1:])), None)
        if failure is not None:
            return failure
        untrusted = VerifyFailure(Reason.VERIFY_CHAIN_UNTRUSTED, _short(str(exc)))
        return _Chain(leaf.public_key(), untrusted, 0, 0, None, fp, "")
    relied_on = [c for c in path[1:] if c in certs[1:]]
    failure = next(filter(None, map(_policy_failure, relied_on)), None)
    if failure is not None:
        return failure
    status = _status(store, path, fp)
    return _Chain(
        leaf_key=leaf.public_key(),
        path_failure=None,
        not_before_ms=max(_ms(c.not_valid_before_utc) for c in path),
        not_after_ms=min(_ms(c.not_valid_after_utc) for c in path),
        status_failure=status if isinstance(status, VerifyFailure) else None,
        fingerprint=fp,
        department_code=status if isinstance(status, str) else "",
    )


def _chain_key(ders: Sequence[bytes]) -> bytes:
    """SHA-256 of the length-prefixed DERs, so [A+B] and [A, B] never share an entry."""
    digest = hashlib.sha256()
    for der in ders:
        digest.update(len(der).to_bytes(4, "big"))
        digest.update(der)
    return digest.digest()


def _window_failure(chain: _Chain, label: str, at_ms: int, skew_ms: int) -> VerifyFailure | None:
    if chain.not_before_ms - skew_ms <= at_ms <= chain.not_after_ms + skew_ms:
        return None  # the hot path: no formatting
    reason = (
        Reason.VERIFY_CERT_NOT_YET_VALID
        if at_ms < chain.not_before_ms
        else Reason.VERIFY_CERT_EXPIRED
    )
    valid = f"{_iso(chain.not_before_ms)} to {_iso(chain.not_after_ms)}"
    return VerifyFailure(reason, f"the chain is valid {valid}; {label} {_iso(at_ms)}")


class Verifier:
    """The verify stage over one `TrustStore`, with a bounded LRU cache of chain verdicts.

    Thread-safe: signature checks release the GIL, so callers may verify from several threads.
    `validations` counts cache misses (full chain validations): the tests hold the cache to it.
    """

    def __init__(
        self,
        store: TrustStore,
        clock_skew: timedelta = timedelta(minutes=5),
        cache_size: int = 4096,
    ) -> None:
        self.store = store
        self.validations = 0
        self._skew_ms = int(clock_skew.total_seconds() * 1000)
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, _Chain | VerifyFailure] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, submission: Submission, received_at: datetime) -> VerifyResult:
        """Never raises: an unexpected error is a failure too (`received_at` must be aware)."""
        try:
            return self._verify(submission, received_at)
        except Exception as exc:
            return VerifyFailure(
                Reason.INTERNAL_ERROR, _short(f"verify: {type(exc).__name__}: {exc}")
            )

    def _verify(self, sub: Submission, received_at: datetime) -> VerifyResult:
        if not sub.certificate_chain:
            return VerifyFailure(Reason.VERIFY_CHAIN_EMPTY, "the certificate chain is empty")
        chain = self._chain(sub.certificate_chain, received_at)
        if isinstance(chain, VerifyFailure):
            return chain
        if not key_matches(sub.signature_algorithm, chain.leaf_key):
            detail = (
                f"{sub.signature_algorithm} does not fit the leaf's {type(chain.leaf_key).__name__}"
            )
            return VerifyFailure(Reason.VERIFY_ALGORITHM_FORBIDDEN, detail)
        if chain.path_failure is not None:
            return chain.path_failure
        received_ms = _ms(received_at)
        if sub.sent_at_ms > received_ms + self._skew_ms:
            # Unsigned and the sender's to set: a date ahead of receipt would also stand in
            # `records.sent_at` and in the latency figures as if true.
            detail = f"sent_at {_iso(sub.sent_at_ms)} is after its receipt {_iso(received_ms)}"
            return VerifyFailure(Reason.VERIFY_SENT_IN_FUTURE, detail)
        for label, at_ms in (("sent_at", sub.sent_at_ms), ("received", received_ms)):
            late_or_early = _window_failure(chain, label, at_ms, self._skew_ms)
            if late_or_early is not None:
                return late_or_early
        if chain.status_failure is not None:
            return chain.status_failure
        if sub.sender_code != chain.department_code:
            detail = (
                f"sender {sub.sender_code!r}, certificate registered to {chain.department_code!r}"
            )
            return VerifyFailure(Reason.VERIFY_SIGNER_NOT_AUTHORIZED, detail)
        if not signature_valid(sub.signature_algorithm, chain.leaf_key, sub.payload, sub.signature):
            return VerifyFailure(
                Reason.VERIFY_SIGNATURE_INVALID, "signature does not match payload"
            )
        return VerifyOk(chain.fingerprint, chain.department_code)

    def _chain(self, ders: Sequence[bytes], now: datetime) -> _Chain | VerifyFailure:
        key = _chain_key(ders)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        verdict = _validate(self.store, ders, now)  # outside the lock: ~200 µs, GIL released
        with self._lock:
            self.validations += 1
            self._cache[key] = verdict
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return verdict
