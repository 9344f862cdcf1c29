"""TLS and mutual TLS on the gRPC port: certificates made here with
`cryptography` (a CA, a server certificate for 127.0.0.1 and client ones)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from gateway.settings import TlsSettings, load_settings
from gateway.tls import tls_problems
from tests.auth import DEV_KEY, bearer
from tests.streams import collect
from tests.test_cli_e2e import printed_paths, run_cli
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc, usage_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks
from titan.gateway.v1 import usage_service_pb2 as usage_pb

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

POLICY = """
version: 1
tiers:
  basic: {}
tenants:
  - id: acme
    tier: basic
    client_certificates: ["CN=acme-renderer", "URI:spiffe://example.org/acme"]
"""


@dataclass(frozen=True)
class Pem:
    cert: Path
    key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(
    dir_: Path,
    stem: str,
    cn: str,
    *,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    sans: list[x509.GeneralName] | None = None,
    usage: x509.ObjectIdentifier | None = None,
) -> tuple[Pem, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    is_ca = issuer is None
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn) if is_ca else issuer[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    cert = builder.sign(key if is_ca else issuer[1], hashes.SHA256())
    pem = Pem(dir_ / f"{stem}.crt", dir_ / f"{stem}.key")
    pem.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem, cert, key


@dataclass(frozen=True)
class Pki:
    ca: Pem
    server: Pem
    acme_cn: Pem  # CN=acme-renderer
    acme_uri: Pem  # CN unmapped, URI SAN mapped
    stranger: Pem  # signed by the CA, mapped to no tenant
    rogue: Pem  # CN=acme-renderer, signed by another CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca, ca_cert, ca_key = _issue(d, "ca", "Titan Test CA")
    issuer = (ca_cert, ca_key)
    server_sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
    ]
    server = _issue(d, "server", "localhost", issuer=issuer, sans=server_sans,
                    usage=ExtendedKeyUsageOID.SERVER_AUTH)[0]  # fmt: skip
    client = ExtendedKeyUsageOID.CLIENT_AUTH
    acme_cn = _issue(d, "acme-cn", "acme-renderer", issuer=issuer, usage=client)[0]
    uri = [x509.UniformResourceIdentifier("spiffe://example.org/acme")]
    acme_uri = _issue(d, "acme-uri", "worker-7", issuer=issuer, sans=uri, usage=client)[0]
    stranger = _issue(d, "stranger", "nobody", issuer=issuer, usage=client)[0]
    _, other_cert, other_key = _issue(d, "other-ca", "Other CA")
    rogue = _issue(d, "rogue", "acme-renderer", issuer=(other_cert, other_key), usage=client)[0]
    return Pki(ca, server, acme_cn, acme_uri, stranger, rogue)


def _credentials(pki: Pki, client: Pem | None = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        pki.ca.cert.read_bytes(),
        client.key.read_bytes() if client else None,
        client.cert.read_bytes() if client else None,
    )


def _target(gateway) -> str:  # the server certificate names 127.0.0.1
    return f"127.0.0.1:{gateway.port}"


def _request(seed: int = 1) -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a red fox"),
        config=tasks.ImageGenerationConfig(width=512, height=512, seed=seed),
    )


async def _generate(channel: grpc.aio.Channel) -> list:
    stub = image_service_pb2_grpc.ImageServiceStub(channel)
    return await collect(stub.GenerateImages(_request(), timeout=30))


@pytest.fixture
async def tls_gateway(make_gateway, pki):
    return await make_gateway(tls={"cert_file": pki.server.cert, "key_file": pki.server.key})


@pytest.fixture
async def mtls_gateway(make_gateway, pki, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    tls = {
        "cert_file": pki.server.cert,
        "key_file": pki.server.key,
        "client_ca_file": pki.ca.cert,
        "require_client_cert": True,
    }
    return await make_gateway(tls=tls, policy_file=policy)


async def test_tls_server_is_verified_and_a_key_still_authenticates(tls_gateway, pki) -> None:
    async with grpc.aio.secure_channel(
        _target(tls_gateway), _credentials(pki), interceptors=bearer(DEV_KEY)
    ) as ch:
        events = await _generate(ch)
    assert events


async def test_tls_without_a_key_is_unauthenticated(tls_gateway, pki) -> None:
    async with grpc.aio.secure_channel(_target(tls_gateway), _credentials(pki)) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _generate(ch)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_plaintext_client_cannot_talk_to_a_tls_port(tls_gateway) -> None:
    async with grpc.aio.insecure_channel(_target(tls_gateway), interceptors=bearer(DEV_KEY)) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _generate(ch)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("which", ["acme_cn", "acme_uri"])
async def test_a_mapped_client_certificate_is_its_tenant(mtls_gateway, pki, which) -> None:
    creds = _credentials(pki, getattr(pki, which))
    async with grpc.aio.secure_channel(_target(mtls_gateway), creds) as ch:
        assert await _generate(ch)
        usage = await usage_service_pb2_grpc.UsageServiceStub(ch).GetUsage(
            usage_pb.GetUsageRequest(), timeout=30
        )
    assert usage.tenant_id == "acme"
    assert usage.window_images == 1


async def test_an_unmapped_client_certificate_is_unauthenticated(mtls_gateway, pki) -> None:
    async with grpc.aio.secure_channel(
        _target(mtls_gateway), _credentials(pki, pki.stranger)
    ) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _generate(ch)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "client certificate" in (err.value.details() or "")


async def test_a_key_wins_over_the_certificate(mtls_gateway, pki) -> None:
    creds = _credentials(pki, pki.acme_cn)
    async with grpc.aio.secure_channel(
        _target(mtls_gateway), creds, interceptors=bearer("tgw_not_a_key")
    ) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _generate(ch)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("which", [None, "rogue"])
async def test_no_or_an_unverified_client_certificate_fails_the_handshake(
    mtls_gateway, pki, which
) -> None:
    creds = _credentials(pki, getattr(pki, which) if which else None)
    async with grpc.aio.secure_channel(_target(mtls_gateway), creds) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _generate(ch)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_the_cli_generates_over_mutual_tls(mtls_gateway, pki, tmp_path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = await run_cli(
        "generate", "a red fox", "--width", "512", "--height", "512",
        "--target", _target(mtls_gateway), "--out", str(out),
        "--tls-ca", str(pki.ca.cert), "--tls-cert", str(pki.acme_cn.cert),
        "--tls-key", str(pki.acme_cn.key),
    )  # fmt: skip
    assert code == 0, stderr
    assert [p.parent for p in printed_paths(stdout)] == [out]


def test_a_missing_or_non_pem_tls_file_is_one_startup_line(pki, tmp_path) -> None:
    missing = tmp_path / "missing.crt"
    settings = TlsSettings(cert_file=missing, key_file=pki.server.key)
    assert tls_problems(settings) == [f"tls.cert_file {missing}: No such file or directory"]
    settings = TlsSettings(cert_file=pki.server.cert, key_file=pki.server.cert)
    assert tls_problems(settings) == [
        f"tls.key_file {pki.server.cert}: no PEM private key in the file"
    ]


def test_client_certificates_need_tls_and_are_required() -> None:
    with pytest.raises(ValueError, match="need TLS"):
        TlsSettings(client_ca_file=Path("ca.crt"), require_client_cert=True)
    with pytest.raises(ValueError, match=r"needs tls\.require_client_cert"):
        TlsSettings(cert_file=Path("a"), key_file=Path("b"), client_ca_file=Path("ca.crt"))


def test_tls_settings_come_from_nested_variables(monkeypatch, pki) -> None:
    monkeypatch.setenv("TITAN_GW_TLS__CERT_FILE", str(pki.server.cert))
    monkeypatch.setenv("TITAN_GW_TLS__KEY_FILE", str(pki.server.key))
    monkeypatch.setenv("TITAN_GW_TLS_CA", "ignored-by-the-server")  # a CLI variable
    assert load_settings().tls.cert_file == pki.server.cert
