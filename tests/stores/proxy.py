"""A TCP proxy the test controls: forwards bytes until `hang()`, then holds them."""

from __future__ import annotations

import asyncio
import contextlib


class HangingProxy:
    """Listens on 127.0.0.1:<port> and forwards every connection to `upstream`.

    `hang()` stops forwarding in both directions (connections stay open, bytes
    wait: a database that stopped answering); `resume()` lets them through.
    New connections made while hung reach the upstream only on resume.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def hang(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            await self._flowing.wait()
            upstream_r, upstream_w = await asyncio.open_connection(*self._upstream)
            try:
                await asyncio.gather(
                    self._pump(client_r, upstream_w), self._pump(upstream_r, client_w)
                )
            finally:
                upstream_w.close()
                with contextlib.suppress(OSError):
                    await upstream_w.wait_closed()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            client_w.close()
            with contextlib.suppress(OSError):
                await client_w.wait_closed()
            self._pipes.discard(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            await self._flowing.wait()
            sink.write(data)
            await sink.drain()
        sink.close()
