"""The in-process bus: the default when Rigi runs as one process (`memory://`)."""

from __future__ import annotations

from queue_server.bus.base import DEFAULT_MAX_QUEUED, Bus, BusUnavailable, Message, Subscription


class MemoryBus(Bus):
    """Fans each message out to the subscriptions of this process; nothing crosses processes.

    Delivery never waits: each subscription has its own bounded queue (see `Subscription`).
    """

    def __init__(self, *, max_queued: int = DEFAULT_MAX_QUEUED, channel_prefix: str = "") -> None:
        # `channel_prefix` separates deployments sharing a Redis; one process needs none.
        super().__init__(max_queued=max_queued)
        self._subscriptions: dict[str, set[Subscription]] = {}

    async def connect(self) -> None:
        self._connected = True

    async def disconnect(self) -> None:
        self._connected = False
        subscriptions, self._subscriptions = self._subscriptions, {}
        for subscribers in subscriptions.values():
            for subscription in subscribers:
                subscription._close()

    async def publish(self, channel: str, message: str) -> None:
        if not self._connected:
            raise BusUnavailable("the bus is not connected")
        item = Message(channel, message)
        # A copy, so a subscriber that leaves during fan-out cannot change the set under us.
        for subscription in tuple(self._subscriptions.get(channel, ())):
            subscription._deliver(item)

    async def _attach(self, subscription: Subscription) -> None:
        self._subscriptions.setdefault(subscription.channel, set()).add(subscription)

    async def _detach(self, subscription: Subscription) -> None:
        subscribers = self._subscriptions.get(subscription.channel)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._subscriptions[subscription.channel]
