"""What a node sends central: one gzip-compressed JSON batch of its log, in order.

`{"head": [seq, at], "starts": {epoch: first seq}, "events": [[epoch, seq, kind, at, data,
actor], …]}`: compact arrays, because a day of a centre is tens of thousands of events over a
rural link, and compression takes JSON's repeats out (about 8× here).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError, model_validator

from queue_server.errors import BadRequest, PayloadTooLarge, ValidationFailed
from queue_server.store.replica_tickets import TICKET_KEYS
from queue_server.store.replication import NodeEvent
from rigi_protocol.wire import compact_json

MAX_INFLATED_BYTES = 64 * 1024 * 1024  # a batch unpacked: far above 20,000 events
_GZIP_WBITS = 31

Row = tuple[str, int, str, datetime, str, str | None]  # as `store.replication.unshipped` reads


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    head: tuple[int, AwareDatetime | None]
    starts: dict[str, int] = {}
    events: list[tuple[str, int, str, AwareDatetime, dict[str, Any], str | None]] = []

    @model_validator(mode="after")
    def _tickets_have_their_ticket(self) -> Batch:
        """Central's feeds and ticket rows read a ticket event's `ticket`: a batch without one,
        or with one that lacks what a row needs, is refused whole, before anything of it is
        applied."""
        for _, seq, kind, _, data, _ in self.events:
            if not kind.startswith("ticket."):
                continue
            ticket = data.get("ticket")
            if not isinstance(ticket, dict):
                raise ValueError(f"event {seq} ({kind}) has no ticket")
            missing = sorted(TICKET_KEYS - set(ticket))
            if missing:
                raise ValueError(f"event {seq} ({kind}): its ticket has no {', '.join(missing)}")
        return self

    def node_events(self) -> list[NodeEvent]:
        return [NodeEvent(*item) for item in self.events]


def encode_batch(
    rows: Sequence[Row], head: tuple[int, datetime | None], starts: dict[str, int]
) -> bytes:
    """The request body: the rows' data go as stored (already JSON), unparsed."""
    events = ",".join(
        f"[{json.dumps(epoch)},{seq},{json.dumps(kind)},{json.dumps(at.isoformat())},{data},"
        f"{json.dumps(actor)}]"
        for epoch, seq, kind, at, data, actor in rows
    )
    head_json = compact_json([head[0], head[1].isoformat() if head[1] else None])
    text = f'{{"head":{head_json},"starts":{compact_json(starts)},"events":[{events}]}}'
    return gzip.compress(text.encode(), compresslevel=6)


def decode_batch(raw: bytes, encoding: str | None) -> Batch:
    """A node's batch, unpacked within bounds and validated; a clear error otherwise."""
    if encoding == "gzip":
        inflater = zlib.decompressobj(_GZIP_WBITS)
        try:
            raw = inflater.decompress(raw, MAX_INFLATED_BYTES)
        except zlib.error:
            raise BadRequest("The batch is not valid gzip.", code="malformed_batch") from None
        if inflater.unconsumed_tail:
            raise PayloadTooLarge(f"A batch unpacks to over {MAX_INFLATED_BYTES} bytes.")
    try:
        return Batch.model_validate_json(raw)
    except ValidationError as exc:
        raise ValidationFailed(
            "The batch is not a node's event batch.",
            code="malformed_batch",
            fields=[
                {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
                for e in exc.errors(include_url=False, include_input=False)[:5]
            ],
        ) from None


def decode_response(text: str) -> dict[str, Any]:
    answer = json.loads(text)
    if not isinstance(answer, dict):
        raise ValueError("central answered with something other than a cursor")
    return answer
