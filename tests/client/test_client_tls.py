"""Both clients over mutual TLS: the client certificate is the tenant."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from gateway.client import TLS, AsyncGatewayClient, ClientError, GatewayClient
from tests.client.requests import fox

# The certificates and TLS gateways of the server's own TLS tests.
from tests.test_tls import mtls_gateway, pki  # noqa: F401


def _target(gateway) -> str:  # the server certificate names 127.0.0.1
    return f"127.0.0.1:{gateway.port}"


async def test_the_async_client_is_its_certificates_tenant(mtls_gateway, pki) -> None:  # noqa: F811
    tls = TLS.from_files(ca=pki.ca.cert, cert=pki.acme_cn.cert, key=pki.acme_cn.key)
    async with AsyncGatewayClient(_target(mtls_gateway), tls=tls, timeout=60) as gw:
        result = await gw.generate_images(fox(1))
        usage = await gw.usage()
    assert len(result.images) == 1
    assert (usage.tenant_id, usage.window_images) == ("acme", 1)


async def test_without_a_client_certificate_the_handshake_fails(mtls_gateway, pki) -> None:  # noqa: F811
    tls = TLS.from_files(ca=pki.ca.cert)
    async with AsyncGatewayClient(_target(mtls_gateway), tls=tls, timeout=60) as gw:
        with pytest.raises(ClientError) as caught:
            await gw.usage()
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


def test_a_certificate_needs_its_key() -> None:
    with pytest.raises(ValueError, match="go together"):
        TLS(cert=b"pem")


async def test_the_sync_client_is_its_certificates_tenant_too(mtls_gateway, pki) -> None:  # noqa: F811
    tls = TLS.from_files(ca=pki.ca.cert, cert=pki.acme_uri.cert, key=pki.acme_uri.key)

    def usage() -> str:  # in a thread: the gateway serves from this test's loop
        with GatewayClient(_target(mtls_gateway), tls=tls, timeout=60) as gw:
            return gw.usage().tenant_id

    assert await asyncio.to_thread(usage) == "acme"
