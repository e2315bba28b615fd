"""Signing and checking the envelope signature over exactly the `payload` bytes (DESIGN §2).

Both sides live here so that the vendor's publisher and the verify stage cannot disagree on
padding, hash or encoding: the `signature_algorithm` enum symbol fully determines them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from hocba.domain.limits import MAX_CERTIFICATE_BYTES, MAX_CHAIN_LENGTH

RSA_PKCS1V15_SHA256 = "RSA_PKCS1V15_SHA256"
RSA_PSS_SHA256 = "RSA_PSS_SHA256"
ECDSA_P256_SHA256 = "ECDSA_P256_SHA256"
ED25519 = "ED25519"

# PSS with MGF1-SHA256: signing uses the digest length as salt, checking accepts any salt length.
_PSS_SIGN = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
_PSS_CHECK = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


# How the reference data spell a Department's code (`reference.loader.default_departments`).
DEPARTMENT_CODE = re.compile(r"SGD-\d{4}-\d{2}")


@dataclass(frozen=True, slots=True)
class Signer:
    private_key: SigningKey
    chain_der: tuple[bytes, ...]
    algorithm: str
    named_department: str | None  # the Department code the leaf's common name is, if it is one


def key_matches(algorithm: str, public_key: CertificatePublicKeyTypes) -> bool:
    """Whether a leaf key can have produced a signature declared as `algorithm`."""
    if algorithm in (RSA_PKCS1V15_SHA256, RSA_PSS_SHA256):
        return isinstance(public_key, rsa.RSAPublicKey)
    if algorithm == ECDSA_P256_SHA256:
        return isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(
            public_key.curve, ec.SECP256R1
        )
    return algorithm == ED25519 and isinstance(public_key, ed25519.Ed25519PublicKey)


def algorithm_for(key: SigningKey, *, rsa_pss: bool = False) -> str:
    """The envelope's `signature_algorithm` symbol a key signs with."""
    if isinstance(key, rsa.RSAPrivateKey):
        return RSA_PSS_SHA256 if rsa_pss else RSA_PKCS1V15_SHA256
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return ECDSA_P256_SHA256
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return ED25519
    raise ValueError(f"no allowed signature algorithm for a {type(key).__name__}")


def load_signer(
    key_path: Path, chain_path: Path, *, rsa_pss: bool = False, password: bytes | None = None
) -> Signer:
    """The key and its chain, checked to belong together: a mismatch would otherwise show up
    only as every message dead-lettered `verify.signature_invalid`."""
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=password)
    except TypeError:  # cryptography's word for "encrypted, and no password" (or the reverse)
        state = "is encrypted: give its passphrase" if password is None else "is not encrypted"
        raise ValueError(f"{key_path} {state}") from None
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise ValueError(f"{key_path}: a {type(key).__name__} cannot sign submissions")
    certificates = x509.load_pem_x509_certificates(chain_path.read_bytes())
    public = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if certificates[0].public_key().public_bytes(*public) != key.public_key().public_bytes(*public):
        raise ValueError(f"{key_path} is not the key of {chain_path}'s first certificate")
    chain = tuple(c.public_bytes(serialization.Encoding.DER) for c in certificates)
    if len(chain) > MAX_CHAIN_LENGTH or max(map(len, chain)) > MAX_CERTIFICATE_BYTES:
        raise ValueError(
            f"{chain_path} holds {len(chain)} certificates, the largest of "
            f"{max(map(len, chain))} bytes; the Ministry's workers take at most "
            f"{MAX_CHAIN_LENGTH}, of at most {MAX_CERTIFICATE_BYTES} bytes each "
            "(decode.too_large): keep the leaf and the CAs that issued it"
        )
    names = certificates[0].subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else ""
    named = common_name if DEPARTMENT_CODE.fullmatch(common_name) else None
    return Signer(key, chain, algorithm_for(key, rsa_pss=rsa_pss), named)


def sign(signer: Signer, payload: bytes) -> bytes:
    key = signer.private_key
    if isinstance(key, rsa.RSAPrivateKey):
        pad = _PSS_SIGN if signer.algorithm == RSA_PSS_SHA256 else padding.PKCS1v15()
        return key.sign(payload, pad, hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(payload, ec.ECDSA(hashes.SHA256()))
    return key.sign(payload)


def signature_valid(
    algorithm: str, public_key: CertificatePublicKeyTypes, payload: bytes, signature: bytes
) -> bool:
    """Check `signature`; a key that does not match `algorithm` is simply invalid."""
    if not key_matches(algorithm, public_key):
        return False
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            pad = _PSS_CHECK if algorithm == RSA_PSS_SHA256 else padding.PKCS1v15()
            public_key.verify(signature, payload, pad, hashes.SHA256())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, payload)
        else:
            return False
    except InvalidSignature:
        return False
    return True
