"""A small TCP proxy for network adversity tests: pass, drop, stall and resume traffic.

It listens on ``127.0.0.1`` only (an ephemeral port), forwards every accepted connection to
one target, and is bounded: at most ``max_connections`` pairs at once (more are reset), reads
of at most 64 KiB, and a ``lifetime`` after which it closes itself even if a test forgot to.

- :meth:`Proxy.drop`: every current connection is closed abruptly on both sides, with an RST
  (``SO_LINGER`` 0), and whatever the proxy held is discarded.
- :meth:`Proxy.stall`: bytes stop flowing in both directions, nothing is closed; new
  connections are accepted (as the kernel would) but stall as well. :meth:`Proxy.resume`.
- :meth:`Proxy.stall_on`: stall as soon as a client sends a chunk containing some bytes
  (``b"COMMIT;"``), before or after forwarding that chunk: a test can cut a protocol step
  precisely, without racing the client.
- :attr:`Proxy.round_trips`: how many Sync and simple Query messages clients have sent. Each
  waits for the server's ReadyForQuery, so it is the number of round trips (a test's evidence
  that an operation costs one, not a timing).
- ``delay``: every chunk is held that many seconds in each direction (order kept, reading not
  paused), so 127.0.0.1 looks like a network with a round trip of ``2 * delay``. The benchmark
  B5 runs it in a process of its own: ``python -m tests._proxy HOST PORT --delay 0.0005``
  prints the port, then proxies until killed or ``--lifetime`` ends (:meth:`Proxy.stall_on`
  triggers are not looked for in delayed traffic). That process's event loop
  waits in ``select()``, which has microsecond timeouts (epoll's are whole milliseconds).

Example::

    async with Proxy("127.0.0.1", 5432) as proxy:
        url = make_url(...).set(host="127.0.0.1", port=proxy.port)
        ...
        proxy.drop()
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import selectors
import socket
import struct
import sys
from types import TracebackType
from typing import Self

__all__ = ["Proxy"]

_CHUNK = 64 * 1024
_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends an RST, not a FIN


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close ``writer``'s connection at once with an RST, dropping unsent data."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
    writer.transport.abort()


class _Trigger:
    def __init__(self, pattern: bytes, forward: bool) -> None:
        self.pattern = pattern
        self.forward = forward
        self.fired = asyncio.Event()


_SSL_OR_GSS_REQUEST = {80877103, 80877104}


class _MessageCounter:
    """Splits the client's byte stream into protocol messages and counts Sync/Query ones."""

    def __init__(self) -> None:
        self.count = 0
        self._started = False  # untyped messages (SSLRequest, StartupMessage) come first
        self._buffer = b""

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if not self._started:
                if len(self._buffer) < 8:
                    return
                length, code = struct.unpack("!ii", self._buffer[:8])
                if len(self._buffer) < length:
                    return
                self._buffer = self._buffer[length:]
                self._started = code not in _SSL_OR_GSS_REQUEST
                continue
            if len(self._buffer) < 5:
                return
            length = struct.unpack("!i", self._buffer[1:5])[0]
            if len(self._buffer) < 1 + length:
                return
            if self._buffer[:1] in (b"S", b"Q"):
                self.count += 1
            self._buffer = self._buffer[1 + length :]


class _Pair:
    """One client connection and its upstream connection, with their two pumps."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.tasks: list[asyncio.Task[None]] = []
        self.counter = _MessageCounter()

    def reset(self) -> None:
        _reset(self.client)
        _reset(self.upstream)
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()


class _Lateness:
    """How late the event loop wakes up after a timer (seconds, a moving average).

    A timer fires late by the OS's wake-up latency and the loop's own work (~0.1-0.3 ms on a
    loaded machine); a delayed chunk waits that much less, so the delay it gets is, on
    average, the one asked for instead of always more.
    """

    def __init__(self) -> None:
        self.value = 0.0

    def observe(self, late: float) -> None:
        self.value += 0.05 * (min(max(late, 0.0), 0.0005) - self.value)


class _Delayed:
    """Writes chunks to ``dst`` ``delay`` seconds after they were read, in order."""

    def __init__(self, dst: asyncio.StreamWriter, delay: float, lateness: _Lateness) -> None:
        self._dst = dst
        self._delay = delay
        self._lateness = lateness
        self._loop = asyncio.get_running_loop()
        self._queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self._deliver())

    def send(self, data: bytes) -> None:
        self._queue.append((self._loop.time() + self._delay, data))
        self._ready.set()

    async def flush(self) -> None:
        """Wait until everything read so far was written (an EOF keeps its place in line)."""
        self._queue.append((self._loop.time() + self._delay, b""))
        self._ready.set()
        await asyncio.shield(self._task)

    def cancel(self) -> None:
        if not self._task.done():
            self._task.cancel()
        elif not self._task.cancelled():
            self._task.exception()  # retrieved: the pump already ended on the same error

    async def _deliver(self) -> None:
        while True:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            due, data = self._queue[0]
            # Never more than most of the delay: some sleep is left, so lateness is observed.
            early = min(self._lateness.value, 0.8 * self._delay)
            wait = due - early - self._loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                self._lateness.observe(self._loop.time() - (due - early))
            self._queue.popleft()
            if not data:
                return
            self._dst.write(data)
            await self._dst.drain()


class Proxy:
    """A TCP proxy from ``127.0.0.1:<port>`` to ``target_host:target_port``; see the module."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        max_connections: int = 32,
        lifetime: float = 60.0,
        delay: float = 0.0,
    ) -> None:
        if not 0.0 <= delay <= 1.0:
            raise ValueError(f"delay must be between 0 and 1 second, got {delay!r}")
        self.target = (target_host, target_port)
        self.delay = delay
        self._lateness = _Lateness()
        self.max_connections = max_connections
        self.lifetime = lifetime
        self.port = 0
        self.accepted = 0  # client connections accepted so far
        self._pairs: set[_Pair] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._triggers: list[_Trigger] = []
        self._server: asyncio.Server | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._counted = 0  # round trips of connections already closed

    async def start(self) -> int:
        """Listen on an ephemeral port of 127.0.0.1; the port."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._expiry = asyncio.get_running_loop().call_later(self.lifetime, self._expire)
        return self.port

    @property
    def connections(self) -> int:
        """How many client connections are being proxied now."""
        return len(self._pairs)

    @property
    def round_trips(self) -> int:
        """Sync and simple Query messages sent by clients so far (see the module)."""
        return self._counted + sum(pair.counter.count for pair in self._pairs)

    def drop(self) -> int:
        """Reset every current connection, both sides; how many there were."""
        pairs = list(self._pairs)
        self._pairs.clear()
        self._counted += sum(pair.counter.count for pair in pairs)
        for pair in pairs:
            pair.reset()
        return len(pairs)

    def stall(self) -> None:
        """Stop forwarding bytes (both directions, all connections), closing nothing."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward bytes again, starting with whatever was held during the stall."""
        self._flowing.set()

    def stall_on(self, pattern: bytes, *, forward: bool) -> asyncio.Event:
        """Stall when a client sends a chunk containing ``pattern`` (once); set when it did.

        ``forward``: the chunk itself reaches the server before the stall (then its reply
        is held); otherwise the chunk is held too (delivered on :meth:`resume`, discarded on
        :meth:`drop`).
        """
        trigger = _Trigger(pattern, forward)
        self._triggers.append(trigger)
        return trigger.fired

    async def close(self) -> None:
        """Stop listening and reset every connection. Idempotent."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if self._server is not None:
            self._server.close()
        self.drop()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def _expire(self) -> None:
        # The proxy stops by itself: a test that hangs or forgets to close it cannot leave it
        # listening for the rest of the run.
        self._expiry = None
        if self._server is not None:
            self._server.close()
        self.drop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            # Only close() cancels a handler. End normally: asyncio's stream server logs a
            # handler task that ends cancelled as an error (Python 3.11).
            _reset(writer)
        finally:
            self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None or len(self._pairs) >= self.max_connections:
            _reset(writer)
            return
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.target), timeout=10
            )
        except (OSError, TimeoutError):
            _reset(writer)
            return
        pair = _Pair(writer, up_writer)
        self._pairs.add(pair)
        pair.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, pair, from_client=True)),
            asyncio.create_task(self._pump(up_reader, writer, pair, from_client=False)),
        ]
        await asyncio.gather(*pair.tasks, return_exceptions=True)

    async def _pump(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        pair: _Pair,
        *,
        from_client: bool,
    ) -> None:
        delayed = _Delayed(dst, self.delay, self._lateness) if self.delay else None
        try:
            while True:
                data = await src.read(_CHUNK)
                if not data:
                    break
                await self._flowing.wait()
                if delayed is not None:
                    if from_client:
                        pair.counter.feed(data)
                    delayed.send(data)
                    continue
                if from_client:
                    pair.counter.feed(data)
                    trigger = next((t for t in self._triggers if t.pattern in data), None)
                    if trigger is not None:
                        self._triggers.remove(trigger)
                        self.stall()
                        if trigger.forward:
                            dst.write(data)
                            await dst.drain()
                        trigger.fired.set()
                        if trigger.forward:
                            continue
                        await self._flowing.wait()
                dst.write(data)
                await dst.drain()
            if delayed is not None:
                await delayed.flush()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if delayed is not None:
                delayed.cancel()
            # One side ended (EOF, error, or a drop): end the pair. An orderly EOF is passed
            # on as a close of the other side, which is what a real network path does.
            if pair in self._pairs:
                self._pairs.discard(pair)
                self._counted += pair.counter.count
                for writer in (pair.client, pair.upstream):
                    if not writer.transport.is_closing():
                        writer.close()
                current = asyncio.current_task()
                for task in pair.tasks:
                    if task is not current:
                        task.cancel()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def _serve_forever(host: str, port: int, delay: float, lifetime: float) -> None:
    async with Proxy(host, port, delay=delay, lifetime=lifetime, max_connections=256) as proxy:
        print(proxy.port, flush=True)
        await asyncio.sleep(lifetime)


def main(argv: list[str] | None = None) -> None:
    """``python -m tests._proxy HOST PORT --delay S``: print the port, proxy until killed."""
    parser = argparse.ArgumentParser(prog="python -m tests._proxy")
    parser.add_argument("host", choices=["127.0.0.1", "::1", "localhost"])
    parser.add_argument("port", type=int)
    parser.add_argument("--delay", type=float, default=0.0, help="one-way delay, seconds")
    parser.add_argument("--lifetime", type=float, default=3600.0, help="seconds, then exit")
    args = parser.parse_args(argv)
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    try:
        loop.run_until_complete(_serve_forever(args.host, args.port, args.delay, args.lifetime))
    finally:
        loop.close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
