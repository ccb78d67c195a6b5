"""Ticket printing, the server's side: print jobs, the `/ws/printers` feed, staff routes."""

from queue_server.printing.routes import PRINTING_ENDPOINTS
from queue_server.printing.service import PrintService, printing, reprint_ticket, request_print

__all__ = [
    "PRINTING_ENDPOINTS",
    "PrintService",
    "printing",
    "reprint_ticket",
    "request_print",
]
