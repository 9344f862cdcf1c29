"""TLS for the gRPC port: server credentials from the `tls` settings, and the
caller's certificate identities from a call's auth context.

The files are read once, when the gateway starts; a missing, unreadable or
non-PEM file is a `TlsError` naming the setting and the file, which start-up
prints as one `error:` line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from gateway.settings import TlsSettings

# What each file must contain, by the PEM block it is read for.
_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PRIVATE_KEY = b"PRIVATE KEY-----"


class TlsError(ValueError):
    """A TLS file cannot be used; the message names the setting and the file."""


@dataclass(frozen=True)
class TlsMaterial:
    """The PEM bytes the `tls` settings name."""

    chain: bytes
    key: bytes
    client_ca: bytes | None
    require_client_cert: bool

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key, self.chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.require_client_cert,
        )


def read_pem(setting: str, path: Path, marker: bytes, what: str) -> bytes:
    """The bytes of `path`, which must hold `what` (a PEM block containing `marker`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TlsError(f"{setting} {path}: {exc.strerror or exc}") from exc
    if marker not in data:
        raise TlsError(f"{setting} {path}: no PEM {what} in the file")
    return data


def load_tls(tls: TlsSettings) -> TlsMaterial | None:
    """The material of `tls`, or None when TLS is off."""
    if tls.cert_file is None or tls.key_file is None:
        return None
    chain = read_pem("tls.cert_file", tls.cert_file, _CERTIFICATE, "certificate")
    key = read_pem("tls.key_file", tls.key_file, _PRIVATE_KEY, "private key")
    client_ca = None
    if tls.client_ca_file is not None:
        client_ca = read_pem("tls.client_ca_file", tls.client_ca_file, _CERTIFICATE, "certificate")
    return TlsMaterial(chain, key, client_ca, tls.require_client_cert)


def tls_problems(tls: TlsSettings) -> list[str]:
    """Why the `tls` files cannot be used (empty when they can, or TLS is off)."""
    try:
        load_tls(tls)
    except TlsError as exc:
        return [str(exc)]
    return []


def certificate_identities(auth_context: Mapping[str, Sequence[bytes]]) -> tuple[str, ...]:
    """The policy spellings of the verified peer certificate's names:
    `CN=<common name>`, `DNS:<name>`, `URI:<uri>`. Empty without TLS or without
    a client certificate (grpc only reports one it verified: the server asks for
    client certificates only when it requires and verifies them)."""
    if b"ssl" not in auth_context.get("transport_security_type", ()):
        return ()
    names = [f"CN={_text(cn)}" for cn in auth_context.get("x509_common_name", ())]
    dns = auth_context.get("peer_dns")
    uris = auth_context.get("peer_uri")
    if dns is not None or uris is not None:
        names += [f"DNS:{_text(n)}" for n in dns or ()]
        names += [f"URI:{_text(u)}" for u in uris or ()]
    else:  # older grpc: one untyped list of subject alternative names
        for san in auth_context.get("x509_subject_alternative_name", ()):
            text = _text(san)
            names.append(f"URI:{text}" if "://" in text else f"DNS:{text}")
    return tuple(names)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
