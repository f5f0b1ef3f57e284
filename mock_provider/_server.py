"""The listening socket and the connections it accepts, on one asyncio event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket

from mock_provider._exchange import Exchange
from mock_provider._state import MockState

_BACKLOG = 512


class Server:
    """Accepts connections and serves each in its own task until `stop`.

    Args:
        state: what the server holds and how it misbehaves.
        host, port: where to listen; port 0 picks a free port (read it from `port` after `start`).
    """

    def __init__(self, state: MockState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self._host = host
        self._requested_port = port
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("server is not started; call start() first")
        port: int = self._listener.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        try:
            listener = socket.create_server((self._host, self._requested_port), backlog=_BACKLOG)
        except OSError:
            self.state.journal.close()  # stop() will not be called for a server that never started
            raise
        listener.setblocking(False)
        self._listener = listener
        self._accepting = asyncio.create_task(self._accept(listener), name="mock-provider-accept")

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sock, _ = await loop.sock_accept(listener)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = asyncio.create_task(Exchange(sock, self.state).run())
            self._connections.add(task)
            self.state.connections_accepted += 1
            self.state.connections_open += 1
            task.add_done_callback(self._connection_ended)

    def _connection_ended(self, task: asyncio.Task[None]) -> None:
        self._connections.discard(task)
        self.state.connections_open -= 1

    async def stop(self) -> None:
        """Stop accepting, end every connection (hung ones too) and wait for them."""
        tasks = [t for t in (self._accepting, *self._connections) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listener is not None:
            self._listener.close()
        self.state.journal.close()
