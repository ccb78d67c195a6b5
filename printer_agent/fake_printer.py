"""A stand-in network thermal printer for tests, the benchmark and demos without hardware.

It listens on TCP like a real printer's port 9100, answers the DLE EOT status queries that
python-escpos sends (online, paper), and decodes what it receives: printer text, `GS v 0` raster
images back into pixels, and cuts, which close a ticket. Its switches (`online`, `paper`) let a
test pull the paper or open the cover.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field

from PIL import Image

ESC, GS, DLE, EOT, LF = 0x1B, 0x1D, 0x10, 0x04, 0x0A
# Status bytes as python-escpos reads them (RT_MASK_* in escpos.constants).
STATUS_ONLINE, STATUS_OFFLINE = 0x12, 0x1A
PAPER_STATUS = {"ok": 0x12, "near_end": 0x1E, "out": 0x72}
_ESC_ONE_ARG = set(b"E!a{-Mtd3GJV ")
_ESC_NO_ARG = set(b"@2")
_GS_ONE_ARG = set(b"!bBHfhw")
_GS_TWO_ARGS = set(b"LW")
_CUT_WITH_FEED = {65, 66, 97, 98, 103, 104}


class Incomplete(Exception):
    """The buffer ends inside a command; wait for more bytes."""


@dataclass
class Ticket:
    """What one cut-off piece of paper would show."""

    text: str = ""
    rasters: list[Image.Image] = field(default_factory=list)
    cut_at: float = 0.0

    @property
    def lines(self) -> list[str]:
        return [line for line in self.text.splitlines() if line.strip()]


def raster_to_image(width_bytes: int, height: int, data: bytes) -> Image.Image:
    """Turn `GS v 0` data (1 = black dot) back into a mode-1 image (0 = black)."""
    image = Image.frombytes("1", (width_bytes * 8, height), data)
    return image.point(lambda value: 255 - value, mode="1")


class Decoder:
    """Incremental ESC/POS decoder; unknown commands raise, so a test cannot miss them."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.current = Ticket()
        self.tickets: list[Ticket] = []
        self.status_queries: list[int] = []

    def feed(self, data: bytes) -> list[int]:
        """Consume bytes; returns the DLE EOT status queries found (they need answers)."""
        self.buffer.extend(data)
        queries: list[int] = []
        pos = 0
        buf = self.buffer
        try:
            while pos < len(buf):
                pos, query = self._step(buf, pos)
                if query is not None:
                    queries.append(query)
        except Incomplete:
            pass
        del buf[:pos]
        self.status_queries.extend(queries)
        return queries

    def _need(self, buf: bytearray, end: int) -> None:
        if end > len(buf):
            raise Incomplete

    def _step(self, buf: bytearray, pos: int) -> tuple[int, int | None]:
        byte = buf[pos]
        if byte == DLE:
            self._need(buf, pos + 3)
            if buf[pos + 1] != EOT:
                raise ValueError(f"unknown DLE command {bytes(buf[pos : pos + 3])!r}")
            return pos + 3, buf[pos + 2]
        if byte == ESC:
            self._need(buf, pos + 2)
            command = buf[pos + 1]
            if command in _ESC_NO_ARG:
                return pos + 2, None
            if command in _ESC_ONE_ARG:
                self._need(buf, pos + 3)
                return pos + 3, None
            raise ValueError(f"unknown ESC command {bytes(buf[pos : pos + 2])!r}")
        if byte == GS:
            self._need(buf, pos + 2)
            command = buf[pos + 1]
            if command == ord("v"):
                self._need(buf, pos + 8)
                width_bytes = buf[pos + 4] + 256 * buf[pos + 5]
                height = buf[pos + 6] + 256 * buf[pos + 7]
                end = pos + 8 + width_bytes * height
                self._need(buf, end)
                self.current.rasters.append(
                    raster_to_image(width_bytes, height, bytes(buf[pos + 8 : end]))
                )
                return end, None
            if command == ord("V"):
                self._need(buf, pos + 3)
                end = pos + 4 if buf[pos + 2] in _CUT_WITH_FEED else pos + 3
                self._need(buf, end)
                self.current.cut_at = time.perf_counter()
                self.tickets.append(self.current)
                self.current = Ticket()
                return end, None
            if command == ord("("):
                self._need(buf, pos + 5)
                end = pos + 5 + buf[pos + 3] + 256 * buf[pos + 4]
                self._need(buf, end)
                return end, None
            if command in _GS_ONE_ARG:
                self._need(buf, pos + 3)
                return pos + 3, None
            if command in _GS_TWO_ARGS:
                self._need(buf, pos + 4)
                return pos + 4, None
            raise ValueError(f"unknown GS command {bytes(buf[pos : pos + 2])!r}")
        if byte == LF or byte >= 0x20:
            end = pos
            while end < len(buf) and (buf[end] == LF or buf[end] >= 0x20):
                end += 1
            self.current.text += bytes(buf[pos:end]).decode("latin-1")
            return end, None
        return pos + 1, None  # CR and other controls print nothing


def decode(data: bytes) -> list[Ticket]:
    """Decode a complete byte stream into its tickets (for tests of Dummy output)."""
    decoder = Decoder()
    decoder.feed(data)
    if decoder.buffer:
        raise ValueError(f"stream ends inside a command: {bytes(decoder.buffer[:16])!r}")
    return decoder.tickets


class FakePrinter:
    """A loopback TCP printer; `start()` it, read `tickets`, `stop()` it to go offline."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.online = True
        self.paper = "ok"
        # A jammed printer answers its status and then drops the connection: jobs fail mid-way.
        self.drop_after_status = False
        self.tickets: list[Ticket] = []
        self.received = bytearray()
        self.errors: list[Exception] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []

    def start(self) -> FakePrinter:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.host, self.port))
        server.listen(8)
        self.port = server.getsockname()[1]
        self._server = server
        thread = threading.Thread(target=self._accept, args=(server,), daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop listening and drop every connection, like a printer switched off."""
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=2)
        self._threads.clear()

    def __enter__(self) -> FakePrinter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_tickets(self, count: int, timeout: float = 20.0) -> list[Ticket]:
        """Block until `count` tickets were cut (or the timeout passes); returns them all."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.tickets) >= count, timeout)
            return list(self.tickets)

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with self._lock:
                self._connections.add(connection)
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, connection: socket.socket) -> None:
        decoder = Decoder()
        try:
            with connection:
                while True:
                    data = connection.recv(65536)
                    if not data:
                        return
                    with self._lock:
                        self.received.extend(data)
                    before = len(decoder.tickets)
                    queries = decoder.feed(data)
                    for query in queries:
                        connection.sendall(bytes([self._status(query)]))
                    if self.drop_after_status and 4 in queries:
                        return
                    if len(decoder.tickets) > before:
                        with self._changed:
                            self.tickets.extend(decoder.tickets[before:])
                            self._changed.notify_all()
        except OSError:
            return
        except Exception as exc:  # a decoding error must reach the test, not vanish
            self.errors.append(exc)
        finally:
            with self._lock:
                self._connections.discard(connection)

    def _status(self, query: int) -> int:
        if query == 4:
            return PAPER_STATUS[self.paper]
        return STATUS_ONLINE if self.online else STATUS_OFFLINE
