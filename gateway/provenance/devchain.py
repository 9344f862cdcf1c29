"""A development signing chain, so `make run` signs manifests with no setup.

A root CA and one end-entity signing certificate, both ECDSA P-256, made
with `cryptography` and named so nobody mistakes them for real ones. The
end-entity certificate carries what c2pa-rs checks of a C2PA signer (found
by trying each against c2pa-rs 0.91, the library in c2pa-python 0.38):

- KeyUsage with digitalSignature (without it signing is refused);
- ExtendedKeyUsage naming emailProtection (c2pa-rs's verifier requires it;
  documentSigning alone signs but then fails "missing required EKU"), and
  documentSigning as well; never anyExtendedKeyUsage or serverAuth;
- BasicConstraints cA=false (a CA certificate is refused as a signer);
- AuthorityKeyIdentifier (required of any certificate not self-signed).

The chain file holds the signing certificate only: the root is the trust
anchor, and C2PA's x5chain should not repeat it. The three files are made in
a temporary directory and renamed into place in one step, so two processes
starting at once both end up with the same, complete chain.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEVELOPMENT_LABEL = "Titan Image Gateway DEVELOPMENT"
_ORGANIZATION = f"{DEVELOPMENT_LABEL} (not a real certificate authority)"
_ROOT_NAME = f"{DEVELOPMENT_LABEL} root CA — local use only"
_SIGNER_NAME = f"{DEVELOPMENT_LABEL} signer — local use only"
_SUBDIRECTORY = "dev-chain"
_KEY, _CHAIN, _ANCHORS = "signer-key.pem", "signer-chain.pem", "trust-anchors.pem"
_ROOT_DAYS, _SIGNER_DAYS = 20 * 365, 10 * 365
# Backdated so a signer whose clock is a little behind still accepts them.
_BACKDATE = dt.timedelta(hours=1)
_NO_USAGE = dict.fromkeys(
    (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    ),
    False,
)


@dataclass(frozen=True)
class DevChain:
    """Paths of the development signing key, its chain, and the root to trust."""

    key_pem: Path
    chain_pem: Path
    anchors_pem: Path


def ensure_dev_chain(directory: Path) -> DevChain:
    """Create the development chain under `directory` once; reuse it after."""
    final = directory / _SUBDIRECTORY
    if not final.exists():
        directory.mkdir(parents=True, exist_ok=True)
        _create_atomically(directory, final)
    chain = DevChain(final / _KEY, final / _CHAIN, final / _ANCHORS)
    for path in (chain.key_pem, chain.chain_pem, chain.anchors_pem):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; delete {final} to make a new chain")
    return chain


def _create_atomically(directory: Path, final: Path) -> None:
    """Write the files into a private temporary directory, then rename it.

    A rename onto a directory that already exists fails, so when two
    processes race, the loser drops its own files and uses the winner's."""
    staging = Path(tempfile.mkdtemp(prefix=".dev-chain-", dir=directory))
    try:
        _write_chain(staging)
        os.rename(staging, final)
    except OSError:
        if not final.is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_chain(target: Path) -> None:
    now = dt.datetime.now(dt.UTC) - _BACKDATE
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _root_certificate(root_key, now)
    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer = _signer_certificate(signer_key, root, root_key, now)
    key_bytes = signer_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(target / _KEY, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(key_bytes)
    (target / _CHAIN).write_bytes(signer.public_bytes(serialization.Encoding.PEM))
    (target / _ANCHORS).write_bytes(root.public_bytes(serialization.Encoding.PEM))


def _root_certificate(key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    name = _name(_ROOT_NAME)
    usage = x509.KeyUsage(**{**_NO_USAGE, "key_cert_sign": True, "crl_sign": True})
    return (
        _base(name, name, key.public_key(), now, _ROOT_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )


def _signer_certificate(
    key: ec.EllipticCurvePrivateKey,
    root: x509.Certificate,
    root_key: ec.EllipticCurvePrivateKey,
    now: dt.datetime,
) -> x509.Certificate:
    usage = x509.KeyUsage(**{**_NO_USAGE, "digital_signature": True})
    purposes = x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.EMAIL_PROTECTION, x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")]
    )
    authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key())
    return (
        _base(_name(_SIGNER_NAME), root.subject, key.public_key(), now, _SIGNER_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(purposes, critical=False)
        .add_extension(authority, critical=False)
        .sign(root_key, hashes.SHA256())
    )


def _base(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: dt.datetime,
    days: int,
) -> x509.CertificateBuilder:
    """Fields every certificate here shares, with its own key identifier."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
