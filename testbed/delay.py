"""A TCP proxy that holds every byte back for a fixed one-way time, as a distant origin would.

This machine has no netem, so a round trip to a far-away S3 is emulated here: a connection
costs one round trip before its first byte reaches the server (the TCP handshake), and every
chunk in either direction arrives `one_way` seconds after it was sent, in order. Bandwidth is
not limited. Being below HTTP, it delays an `Expect: 100-continue` exchange like any other
bytes, which an HTTP-level proxy (answering 100 itself) would hide.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from testbed.loopthread import LoopThread


class DelayProxy(LoopThread):
    def __init__(self, upstream_url: str, round_trip: float) -> None:
        super().__init__()
        parts = urlsplit(upstream_url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"{upstream_url!r}: need a host and a port")
        self._upstream = (parts.hostname, parts.port)
        self._one_way = round_trip / 2
        self._open: set[asyncio.Task[None]] = set()

    async def _serve(self, stop: asyncio.Event) -> None:
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=1024)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        self.ready()
        async with server:
            await stop.wait()
        # Connections still open (an end of stream on its way) end with the proxy.
        for task in self._open:
            task.cancel()
        await asyncio.gather(*self._open, return_exceptions=True)

    async def _connection(self, client_r: asyncio.StreamReader,
                          client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._open.add(task)
        try:
            await self._relay(client_r, client_w)
        except asyncio.CancelledError:
            pass  # the proxy is closing (asyncio would log a cancelled connection as an error)
        finally:
            self._open.discard(task)

    async def _relay(self, client_r: asyncio.StreamReader,
                     client_w: asyncio.StreamWriter) -> None:
        # SYN out, SYN-ACK back: what the client sends meanwhile waits in the socket buffer,
        # and leaves (one more one-way time) only once the handshake is over.
        await asyncio.sleep(2 * self._one_way)
        try:
            server_r, server_w = await asyncio.open_connection(*self._upstream)
        except OSError:
            client_w.close()
            return
        try:
            # A reset on one side ends that pump; the other ends when its reader does.
            await asyncio.gather(self._pump(client_r, server_w), self._pump(server_r, client_w),
                                 return_exceptions=True)
        finally:
            for writer in (client_w, server_w):
                writer.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.wait_closed()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward each chunk `one_way` after it was read; end of stream travels as late."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        try:
            while True:
                data = await reader.read(1 << 16)
                queue.put_nowait((loop.time() + self._one_way, data))
                if not data:
                    break
        except (ConnectionError, OSError):
            queue.put_nowait((loop.time() + self._one_way, b""))
        except asyncio.CancelledError:  # the proxy is closing
            sender.cancel()
            raise
        await sender
