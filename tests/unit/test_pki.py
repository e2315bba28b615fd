"""The demo PKI's material, the trust store loaded from it, and signing round trips."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from hocba.domain.limits import MAX_CHAIN_LENGTH
from hocba.trust import pki as demo
from hocba.trust.pki import DemoPki, generate_demo_pki
from hocba.trust.register import CertStatus, load_register, save_register, set_status
from hocba.trust.signing import (
    ECDSA_P256_SHA256,
    ED25519,
    RSA_PKCS1V15_SHA256,
    RSA_PSS_SHA256,
    load_signer,
    sign,
    signature_valid,
)
from hocba.trust.store import load_trust_store

CODES = ("SGD-2024-01", "SGD-2024-79")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    return generate_demo_pki(tmp_path_factory.mktemp("pki"), CODES)


def _chain(pki: DemoPki, name: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pki.leaves[name].chain_path.read_bytes())


def test_layout_is_a_trust_dir_without_the_intermediate(pki: DemoPki) -> None:
    store = load_trust_store(pki.trust_dir)
    assert pki.root_path == pki.trust_dir / "anchors" / "root.pem"
    assert len(store.anchors) == 1 and store.intermediates == () and len(store.crls) == 2
    assert pki.intermediate_path.parent.name == "ca"
    assert set(pki.leaves) == {*CODES, demo.ECDSA, demo.ED25519, *demo.BAD_LEAVES}


@pytest.mark.parametrize(
    ("name", "key_type", "algorithm"),
    [
        (CODES[0], rsa.RSAPublicKey, RSA_PKCS1V15_SHA256),
        (CODES[1], rsa.RSAPublicKey, RSA_PKCS1V15_SHA256),
        (demo.ECDSA, ec.EllipticCurvePublicKey, ECDSA_P256_SHA256),
        (demo.ED25519, ed25519.Ed25519PublicKey, ED25519),
    ],
)
def test_department_leaves_are_document_signing_certificates(
    pki: DemoPki, name: str, key_type: type, algorithm: str
) -> None:
    leaf, issuer = _chain(pki, name)
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert isinstance(leaf.public_key(), key_type)
    assert pki.leaves[name].algorithm == algorithm
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == (
        pki.leaves[name].department_code
    )
    assert leaf.issuer == issuer.subject
    assert issuer.public_bytes(serialization.Encoding.PEM) == pki.intermediate_path.read_bytes()
    assert pki.leaves[name].fingerprint == leaf.fingerprint(hashes.SHA256()).hex()


def test_bad_leaves_are_bad_in_their_own_way(pki: DemoPki) -> None:
    now = _chain(pki, CODES[0])[0].not_valid_before_utc
    assert _chain(pki, demo.EXPIRED)[0].not_valid_after_utc < now
    assert _chain(pki, demo.NOT_YET_VALID)[0].not_valid_before_utc > now
    assert isinstance(_chain(pki, demo.SHA1)[0].signature_hash_algorithm, hashes.SHA1)
    weak = _chain(pki, demo.RSA1024)[0].public_key()
    assert isinstance(weak, rsa.RSAPublicKey) and weak.key_size == 1024
    leaf, rogue = _chain(pki, demo.UNTRUSTED)
    assert rogue.subject == rogue.issuer == leaf.issuer
    assert rogue.subject != load_trust_store(pki.trust_dir).anchors[0].subject
    crl = x509.load_pem_x509_crl(pki.crl_path.read_bytes())
    revoked = _chain(pki, demo.REVOKED)[0].serial_number
    assert crl.get_revoked_certificate_by_serial_number(revoked) is not None


def test_register_approves_exactly_the_leaves_meant_to_pass_it(pki: DemoPki) -> None:
    register = load_register(pki.register_path)
    approved = {name for name, leaf in pki.leaves.items() if register.get(leaf.fingerprint)}
    assert approved == {
        *CODES,
        demo.ECDSA,
        demo.ED25519,
        demo.EXPIRED,
        demo.NOT_YET_VALID,
        demo.REVOKED,
        demo.REVOKED_INTERMEDIATE,
        demo.NOT_FOR_SIGNING,
    }
    entry = register.get(pki.leaves[CODES[1]].fingerprint)
    assert entry is not None and entry.department_code == CODES[1]
    assert entry.status is CertStatus.APPROVED


def test_every_department_can_get_a_leaf_per_key_algorithm(tmp_path: Path) -> None:
    pki = generate_demo_pki(tmp_path, CODES, algorithms=(demo.RSA, demo.ECDSA, demo.ED25519))
    register = load_register(pki.register_path)
    for code in CODES:
        for algorithm, symbol in ((demo.ECDSA, ECDSA_P256_SHA256), (demo.ED25519, ED25519)):
            leaf = pki.leaves[demo.extra_leaf_name(code, algorithm)]
            assert (leaf.department_code, leaf.algorithm) == (code, symbol)
            entry = register.get(leaf.fingerprint)
            assert entry is not None and entry.department_code == code
    with pytest.raises(ValueError, match="unknown key algorithm"):
        generate_demo_pki(tmp_path / "dsa", CODES, algorithms=("dsa",))


def test_a_register_change_is_loaded(pki: DemoPki, tmp_path: Path) -> None:
    copy = shutil.copytree(pki.trust_dir, tmp_path / "trust")
    register = load_register(copy / "register.json")
    fp = pki.leaves[CODES[0]].fingerprint
    save_register(copy / "register.json", set_status(register, fp, CertStatus.SUSPENDED))
    assert load_trust_store(copy).register.get(fp).status is CertStatus.SUSPENDED  # type: ignore[union-attr]


def test_a_trust_dir_without_anchors_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no trust anchors"):
        load_trust_store(tmp_path)


@pytest.mark.parametrize(
    ("name", "rsa_pss", "algorithm"),
    [
        (CODES[0], False, RSA_PKCS1V15_SHA256),
        (CODES[0], True, RSA_PSS_SHA256),
        (demo.ECDSA, False, ECDSA_P256_SHA256),
        (demo.ED25519, False, ED25519),
    ],
)
def test_sign_then_check(pki: DemoPki, name: str, rsa_pss: bool, algorithm: str) -> None:
    leaf = pki.leaves[name]
    signer = load_signer(leaf.key_path, leaf.chain_path, rsa_pss=rsa_pss)
    public = _chain(pki, name)[0].public_key()
    signature = sign(signer, b"payload")
    assert signer.algorithm == algorithm
    assert signer.chain_der == tuple(
        c.public_bytes(serialization.Encoding.DER) for c in _chain(pki, name)
    )
    assert signature_valid(algorithm, public, b"payload", signature)
    assert not signature_valid(algorithm, public, b"payload!", signature)
    other = ED25519 if algorithm != ED25519 else RSA_PKCS1V15_SHA256
    assert not signature_valid(other, public, b"payload", signature)


def test_a_key_that_is_not_the_chains_is_refused(pki: DemoPki) -> None:
    """Signing anyway would dead-letter every message as verify.signature_invalid."""
    rsa_leaf, ecdsa_leaf = pki.leaves[CODES[0]], pki.leaves[demo.ECDSA]
    with pytest.raises(ValueError, match="is not the key of"):
        load_signer(rsa_leaf.key_path, ecdsa_leaf.chain_path)


def test_a_chain_the_workers_would_refuse_is_refused_before_signing(
    pki: DemoPki, tmp_path: Path
) -> None:
    leaf = pki.leaves[CODES[0]]
    long_chain = tmp_path / "long-chain.pem"
    long_chain.write_bytes(leaf.chain_path.read_bytes() * MAX_CHAIN_LENGTH)
    with pytest.raises(ValueError, match=f"take at most {MAX_CHAIN_LENGTH}"):
        load_signer(leaf.key_path, long_chain)


def test_an_encrypted_key_needs_its_passphrase(pki: DemoPki, tmp_path: Path) -> None:
    leaf = pki.leaves[demo.ECDSA]
    key = serialization.load_pem_private_key(leaf.key_path.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    with pytest.raises(ValueError, match="is encrypted: give its passphrase"):
        load_signer(encrypted, leaf.chain_path)
    assert (
        load_signer(encrypted, leaf.chain_path, password=b"s3cret").algorithm == ECDSA_P256_SHA256
    )
