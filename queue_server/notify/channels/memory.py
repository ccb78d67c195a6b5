"""A channel that keeps what it "sent", for tests and demos."""

from __future__ import annotations

from queue_server.notify.channels.base import Outgoing

MEMORY_MAX = 10_000  # oldest dropped beyond this: a demo left running does not grow forever


class MemoryChannel:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def send(self, message: Outgoing) -> None:
        self.sent.append(message)
        del self.sent[:-MEMORY_MAX]

    async def close(self) -> None:
        return None
