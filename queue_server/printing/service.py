"""The printing service of one process: which agents are connected here, how jobs reach them,
and the lifespan part that starts it.

A job reaches its agent three ways, each enough on its own, all harmless together (the agent's
journal makes a repeated job an ack, not paper): at once when it is requested (through the hub,
so an agent connected to another process gets it too); every unacknowledged job when the agent
(re)connects; and again whenever an ack has not come within `ack_timeout`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from queue_server.printing.jobs import PrintChange, PrintJobs

if TYPE_CHECKING:
    from queue_server.app import Rigi
    from queue_server.printing.agents import AgentConnection

log = logging.getLogger(__name__)

ACK_TIMEOUT = timedelta(seconds=30)  # an agent prints a ticket in well under a second
RESEND_CHECK_S = 5.0


@dataclass
class PrintService:
    """Reachable as `rigi.printing` once the `printing` extension runs."""

    rigi: Rigi
    jobs: PrintJobs
    ack_timeout: timedelta = ACK_TIMEOUT
    resend_check_s: float = RESEND_CHECK_S

    def __post_init__(self) -> None:
        self._agents: dict[tuple[str, str], AgentConnection] = {}

    def attach(self, agent: AgentConnection) -> None:
        for printer_id in agent.printer_ids:
            self._agents[(agent.branch, printer_id)] = agent

    def serves_here(self, branch: str, printer_id: str) -> bool:
        """Whether an agent connected to this process drives the printer."""
        return (branch, printer_id) in self._agents

    def detach(self, agent: AgentConnection) -> list[str]:
        """Forget an agent; returns the printers that no newer connection has taken over."""
        released = []
        for printer_id in agent.printer_ids:
            if self._agents.get((agent.branch, printer_id)) is agent:
                del self._agents[(agent.branch, printer_id)]
                released.append(printer_id)
        return released

    async def apply(self, change: PrintChange, branch: str) -> dict[str, Any]:
        """Send a committed change's jobs (its transaction published its events). With a hub
        the agents' connections (here or in another process) pick the jobs up from the
        `printer.job` events."""
        if change.messages and (self.rigi.hub is None or not change.events):
            for message in change.messages:
                agent = self._agents.get((branch, message["printer"]))
                if agent is not None:
                    await agent.send_jobs([message])
        return change.result


async def request_print(
    rigi: Rigi, ticket_view: dict[str, Any], kiosk_id: str, reprint: bool = False
) -> dict[str, Any]:
    """Print a ticket issued at `kiosk_id`: store its job and send it to the agent serving that
    kiosk. Returns the ticket's `print` status ({status, error, reprint, printer}); a kiosk
    without a printer gets `no_printer`. Safe to call again for the same ticket (a retried
    issue): nothing is stored or printed twice unless `reprint` is asked for."""
    service = _running(rigi)
    change = await service.jobs.request(ticket_view, kiosk_id, reprint=reprint)
    return await service.apply(change, ticket_view["branch"])


async def reprint_ticket(rigi: Rigi, ticket_id: str) -> dict[str, Any]:
    """Print a ticket again at its kiosk, marked REPRINT."""
    service = _running(rigi)
    change = await service.jobs.reprint(ticket_id)
    branch = change.events[0].branch if change.events else None
    if branch is None:
        ticket = await rigi.store.ticket(ticket_id)
        branch = ticket["branch"]
    return await service.apply(change, branch)


@contextlib.asynccontextmanager
async def printing(rigi: Rigi) -> AsyncIterator[PrintService]:
    """Lifespan part: the print service (`Rigi.ticket_view` then adds each ticket's `print`).

    Enter it after `realtime` so that jobs travel through the hub.
    """
    service = PrintService(rigi, PrintJobs(rigi.database, rigi.catalog, rigi.store.clock))
    rigi.printing = service
    try:
        yield service
    finally:
        rigi.printing = None


def _running(rigi: Rigi) -> PrintService:
    if rigi.printing is None:
        raise RuntimeError("printing is not running")
    return rigi.printing
