"""One aiobotocore client per service, as Bedrock and the SNS alert sink open it."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession


async def open_client(
    service: str,
    *,
    region: str | None,
    endpoint_url: str | None,
    config: AioConfig,
    dummy_key: str = "local",
) -> tuple[Any, AsyncExitStack]:
    """The client (aiobotocore is untyped) and the stack whose `aclose()` closes it.

    Credentials come from the standard AWS chain. Only with an `endpoint_url`
    (the emulator, a local stub) and an empty chain are dummy keys used, so
    the request can be signed; real AWS without credentials still fails.
    """
    session = AioSession()
    credentials: dict[str, str] = {}
    if endpoint_url is not None and await session.get_credentials() is None:
        credentials = {"aws_access_key_id": dummy_key, "aws_secret_access_key": dummy_key}
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            session.create_client(
                service,
                region_name=region,
                endpoint_url=endpoint_url,
                config=config,
                **credentials,
            )
        )
        return client, stack.pop_all()
