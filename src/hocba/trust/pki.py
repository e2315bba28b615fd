"""A demo PKI for local runs and tests: a trust dir plus signing material, good and bad.

`out_dir` is laid out as a trust dir (`anchors/`, `crls/`, `register.json`) with the signing
material beside it (`leaves/<name>.key.pem`, `leaves/<name>.chain.pem`, leaf then issuer) and
the intermediate in `ca/`, deliberately not in `intermediates/`: senders must ship it in
their chain, so a leaf-only chain is a real failure. A second issuing CA, revoked by the root's
CRL, issues the `revoked_intermediate` leaf: revocation must be checked above the leaf too.
The bad leaves (names in `BAD_LEAVES`) share one key: each is wrong for its certificate, not
its key, and key generation is the cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from hocba.trust.register import Register, RegisterEntry, add, save_register
from hocba.trust.signing import SigningKey, algorithm_for

RSA, ECDSA, ED25519 = "rsa", "ecdsa", "ed25519"
KEY_ALGORITHMS = (RSA, ECDSA, ED25519)  # what a Department's demo leaf can be
EXPIRED, NOT_YET_VALID, REVOKED, UNTRUSTED = "expired", "not_yet_valid", "revoked", "untrusted"
SHA1, RSA1024, UNREGISTERED = "sha1", "rsa1024", "unregistered"
REVOKED_INTERMEDIATE, NOT_FOR_SIGNING = "revoked_intermediate", "not_for_signing"
BAD_LEAVES = (
    EXPIRED, NOT_YET_VALID, REVOKED, REVOKED_INTERMEDIATE, UNTRUSTED, SHA1, RSA1024, UNREGISTERED,
    NOT_FOR_SIGNING,
)  # fmt: skip
# Approved, so that their own reason is the one seen rather than `verify.cert_not_approved`.
_APPROVED_BAD = (EXPIRED, NOT_YET_VALID, REVOKED, REVOKED_INTERMEDIATE, NOT_FOR_SIGNING)
_YEAR = timedelta(days=365)
# sha256WithRSAEncryption → sha1WithRSAEncryption: same length, differing in the last byte.
_SHA256_RSA_OID = bytes.fromhex("06092a864886f70d01010b")
_SHA1_RSA_OID = bytes.fromhex("06092a864886f70d010105")


@dataclass(frozen=True, slots=True)
class LeafFiles:
    key_path: Path
    chain_path: Path
    department_code: str
    algorithm: str  # Avro SignatureAlgorithm symbol the key signs with
    fingerprint: str  # SHA-256 of the leaf DER, lowercase hex (the register key)


@dataclass(frozen=True, slots=True)
class DemoPki:
    trust_dir: Path
    root_path: Path
    intermediate_path: Path
    crl_path: Path  # the issuing CA's CRL, revoking the `revoked` leaf
    root_crl_path: Path  # the root's CRL, revoking the `revoked_intermediate` CA
    register_path: Path
    leaves: Mapping[str, LeafFiles]


@dataclass(frozen=True, slots=True)
class _Ca:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate


def _name(org: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _rsa(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _issue(
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    issuer: _Ca | tuple[x509.Name, rsa.RSAPrivateKey],
    validity: tuple[datetime, datetime],
    *,
    ca: bool,
    signs: bool = True,
) -> x509.Certificate:
    """A certificate; `issuer` is a CA, or (own name, own key) for a self-signed root.

    A leaf that does not `sign` gets the key usage of an encryption certificate.
    """
    issuer_name, issuer_key = (
        (issuer.cert.subject, issuer.key) if isinstance(issuer, _Ca) else issuer
    )
    leaf_signs = signs and not ca
    usage = x509.KeyUsage(
        digital_signature=leaf_signs, content_commitment=leaf_signs,
        key_encipherment=not (ca or signs),
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if isinstance(issuer, _Ca):
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
        builder = builder.add_extension(aki, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _ca(name: x509.Name, bits: int, parent: _Ca | None, validity: tuple[datetime, datetime]) -> _Ca:
    key = _rsa(bits)
    return _Ca(key, _issue(name, key.public_key(), parent or (name, key), validity, ca=True))


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + body


def _resigned_sha1(cert: x509.Certificate, issuer: _Ca) -> x509.Certificate:
    """`cert` re-signed with SHA-1, which `CertificateBuilder` no longer allows."""
    tbs = cert.tbs_certificate_bytes.replace(_SHA256_RSA_OID, _SHA1_RSA_OID, 1)
    signature = issuer.key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    algorithm = _der(0x30, _SHA1_RSA_OID + b"\x05\x00")
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def _pem(path: Path, *blobs: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(blobs))
    return path


def _write_leaf(
    out_dir: Path, name: str, code: str, key: SigningKey, chain: tuple[x509.Certificate, ...]
) -> LeafFiles:
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return LeafFiles(
        key_path=_pem(out_dir / "leaves" / f"{name}.key.pem", key_pem),
        chain_path=_pem(
            out_dir / "leaves" / f"{name}.chain.pem", *(c.public_bytes(pem) for c in chain)
        ),
        department_code=code,
        algorithm=algorithm_for(key),
        fingerprint=chain[0].fingerprint(hashes.SHA256()).hex(),
    )


class _Spec(NamedTuple):
    name: str
    department_code: str
    key: SigningKey
    cert: x509.Certificate
    issuer: _Ca


def _new_key(algorithm: str) -> SigningKey:
    if algorithm == ECDSA:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    return _rsa(2048)


def extra_leaf_name(code: str, algorithm: str) -> str:
    """A Department's additional leaf (besides its RSA one, named by its code)."""
    return f"{code}.{algorithm}"


def _leaf_specs(
    codes: Sequence[str],
    issuing: _Ca,
    revoked_issuing: _Ca,
    now: datetime,
    extra_algorithms: Sequence[str],
) -> list[_Spec]:
    first, good = codes[0], (now - timedelta(days=1), now + 2 * _YEAR)
    rogue = _ca(_name("Untrusted (demo)", "untrusted root CA"), 2048, None, _ca_validity(now))
    spare, weak = _rsa(2048), _rsa(1024)

    def leaf(
        name: str,
        key: SigningKey,
        validity: tuple[datetime, datetime] = good,
        code: str | None = None,
    ) -> _Spec:
        code = code or (name if name in codes else first)
        ca = {UNTRUSTED: rogue, REVOKED_INTERMEDIATE: revoked_issuing}.get(name, issuing)
        subject = _name(f"Sở GD&ĐT {code}", code)
        cert = _issue(
            subject, key.public_key(), ca, validity, ca=False, signs=name != NOT_FOR_SIGNING
        )
        return _Spec(name, code, key, _resigned_sha1(cert, ca) if name == SHA1 else cert, ca)

    return [
        *(leaf(code, _rsa(2048)) for code in codes),
        *(
            leaf(extra_leaf_name(code, algorithm), _new_key(algorithm), code=code)
            for code in codes
            for algorithm in extra_algorithms
        ),
        leaf(ECDSA, _new_key(ECDSA)),
        leaf(ED25519, _new_key(ED25519)),
        leaf(EXPIRED, spare, (now - 2 * _YEAR, now - _YEAR)),
        leaf(NOT_YET_VALID, spare, (now + _YEAR, now + 2 * _YEAR)),
        *(
            leaf(name, spare)
            for name in (
                REVOKED,
                REVOKED_INTERMEDIATE,
                UNREGISTERED,
                SHA1,
                UNTRUSTED,
                NOT_FOR_SIGNING,
            )
        ),
        leaf(RSA1024, weak),
    ]


def _ca_validity(now: datetime) -> tuple[datetime, datetime]:
    """Wide enough to cover the expired and not-yet-valid leaves' periods."""
    return now - 3 * _YEAR, now + 10 * _YEAR


def _crl(issuer: _Ca, serial: int, now: datetime) -> x509.CertificateRevocationList:
    revoked = (
        x509.RevokedCertificateBuilder()
        .serial_number(serial)
        .revocation_date(now - timedelta(hours=1))
        .build()
    )
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(now - timedelta(days=1))
        .next_update(now + timedelta(days=30))
        .add_revoked_certificate(revoked)
        .sign(issuer.key, hashes.SHA256())
    )


def generate_demo_pki(
    out_dir: Path,
    department_codes: Sequence[str],
    *,
    now: datetime | None = None,
    algorithms: Sequence[str] = (RSA,),
) -> DemoPki:
    """Every Department gets an RSA leaf named by its code, plus one leaf per other entry of
    `algorithms` (`extra_leaf_name`), all registered for it; then the shared test leaves."""
    if not department_codes:
        raise ValueError("at least one department code is needed")
    unknown = set(algorithms) - set(KEY_ALGORITHMS)
    if unknown:
        raise ValueError(f"unknown key algorithm(s) {sorted(unknown)}; use {KEY_ALGORITHMS}")
    extra = [a for a in dict.fromkeys(algorithms) if a != RSA]
    now = now or datetime.now(UTC)
    ministry = "Bộ GD&ĐT (demo)"
    root = _ca(_name(ministry, "hocba demo root CA"), 3072, None, _ca_validity(now))
    issuing = _ca(_name(ministry, "hocba demo issuing CA"), 2048, root, _ca_validity(now))
    revoked_ca = _ca(_name(ministry, "hocba demo revoked CA"), 2048, root, _ca_validity(now))
    specs = _leaf_specs(department_codes, issuing, revoked_ca, now, extra)
    leaves = {
        s.name: _write_leaf(out_dir, s.name, s.department_code, s.key, (s.cert, s.issuer.cert))
        for s in specs
    }
    register = Register()
    extra_names = [extra_leaf_name(c, a) for c in department_codes for a in extra]
    for name in (*department_codes, *extra_names, ECDSA, ED25519, *_APPROVED_BAD):
        entry = RegisterEntry(leaves[name].department_code, now.date())
        register = add(register, leaves[name].fingerprint, entry)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_register(out_dir / "register.json", register)
    revoked = next(s.cert.serial_number for s in specs if s.name == REVOKED)
    pem = serialization.Encoding.PEM
    return DemoPki(
        trust_dir=out_dir,
        root_path=_pem(out_dir / "anchors" / "root.pem", root.cert.public_bytes(pem)),
        intermediate_path=_pem(out_dir / "ca" / "intermediate.pem", issuing.cert.public_bytes(pem)),
        crl_path=_pem(
            out_dir / "crls" / "intermediate.crl.pem", _crl(issuing, revoked, now).public_bytes(pem)
        ),
        root_crl_path=_pem(
            out_dir / "crls" / "root.crl.pem",
            _crl(root, revoked_ca.cert.serial_number, now).public_bytes(pem),
        ),
        register_path=out_dir / "register.json",
        leaves=MappingProxyType(leaves),
    )
