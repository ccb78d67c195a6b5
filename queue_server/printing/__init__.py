"""Ticket printing, the server's side: print jobs, the `/ws/printers` feed, staff routes."""

from queue_server.printing.routes import PRINTING_ENDPOINTS, printing_routes
from queue_server.printing.service import PrintService, printing, reprint_ticket, request_print

__all__ = [
    "PRINTING_ENDPOINTS",
    "PrintService",
    "printing",
    "printing_routes",
    "reprint_ticket",
    "request_print",
]
