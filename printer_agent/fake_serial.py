"""A stand-in serial thermal printer: the far end of a pseudo-terminal pair.

The agent opens the pair's device (`/dev/pts/N`) as the printer's serial port, exactly as it
would open `/dev/ttyUSB0`; this side reads every byte it writes, decodes the tickets with the
network stand-in's decoder and answers the DLE EOT status queries the way a printer does.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty

from printer_agent.fake_printer import PAPER_STATUS, STATUS_OFFLINE, STATUS_ONLINE, Decoder, Ticket

POLL_S = 0.05


class FakeSerialPrinter:
    """`start()` it, give the agent `device`, read `tickets` and `received`, `stop()` it."""

    def __init__(self) -> None:
        self.online = True
        self.paper = "ok"
        self.tickets: list[Ticket] = []
        self.received = bytearray()
        self.errors: list[Exception] = []
        self.device = ""
        self._master = -1
        self._slave = -1
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> FakeSerialPrinter:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # bytes pass as they are: no echo, no newline translation
        self.device = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._serve, name="fake-serial", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> FakeSerialPrinter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_tickets(self, count: int, timeout: float = 20.0) -> list[Ticket]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.tickets) >= count, timeout)
            return list(self.tickets)

    def _serve(self) -> None:
        decoder = Decoder()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], POLL_S)
            if not ready:
                continue
            try:
                data = os.read(self._master, 65536)
            except OSError:  # the agent closed the port and no one else holds it
                continue
            try:
                self.received.extend(data)
                before = len(decoder.tickets)
                for query in decoder.feed(data):
                    os.write(self._master, bytes([self._status(query)]))
                if len(decoder.tickets) > before:
                    with self._changed:
                        self.tickets.extend(decoder.tickets[before:])
                        self._changed.notify_all()
            except Exception as exc:  # a decoding error must reach the test, not vanish
                self.errors.append(exc)
                return

    def _status(self, query: int) -> int:
        if query == 4:
            return PAPER_STATUS[self.paper]
        return STATUS_ONLINE if self.online else STATUS_OFFLINE
