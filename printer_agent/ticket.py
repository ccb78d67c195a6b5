"""The ticket a print job carries, parsed from the server's JSON into plain typed data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from printer_agent.errors import BadJob
from rigi_protocol.languages import DEFAULT_LANGUAGE, LANGUAGES

try:
    from zoneinfo import ZoneInfo

    TBILISI: Any = ZoneInfo("Asia/Tbilisi")
except Exception:  # pragma: no cover - only without tzdata; Georgia has kept UTC+4 since 2005
    TBILISI = timezone(timedelta(hours=4), "Asia/Tbilisi")


@dataclass(frozen=True)
class Ticket:
    """What is printed: never a citizen's name, only the ticket and the branch."""

    id: str
    label: str
    language: str
    service_name: Mapping[str, str]
    branch_name: Mapping[str, str]
    issued_at: datetime
    people_ahead: int | None
    wait_minutes: int | None
    status_url: str
    # What to have ready, each in the languages written, and where it can be done online.
    documents: tuple[Mapping[str, str], ...] = ()
    online_url: str = ""
    # Priority asked at a kiosk where the branch wants the attendant to confirm it.
    priority_requested: bool = False

    def service_in(self, language: str) -> str:
        """The service's name in `language`, else Georgian, else English, else any."""
        return _pick(self.service_name, language)

    def documents_in(self, language: str) -> list[str]:
        """Each document to have ready, in `language` or the nearest written one."""
        return [_pick(document, language) for document in self.documents]

    def branch_in(self, language: str) -> str:
        return _pick(self.branch_name, language)

    @property
    def local_issued_at(self) -> datetime:
        return self.issued_at.astimezone(TBILISI)


def _pick(names: Mapping[str, str], language: str) -> str:
    for key in (language, DEFAULT_LANGUAGE, "en"):
        if names.get(key):
            return names[key]
    return next(iter(names.values()), "")


def _names(raw: Mapping[str, Any], key: str) -> dict[str, str]:
    """Accept `{"service_name": {"ka": …}}`, `service_names`, or `service_name_ka` fields."""
    value = raw.get(key) or raw.get(key + "s")
    names: dict[str, str] = {}
    if isinstance(value, Mapping):
        names.update({str(k): str(v) for k, v in value.items() if v})
    elif isinstance(value, str) and value:
        names[str(raw.get("language") or "ka")] = value
    for language in LANGUAGES:
        flat = raw.get(f"{key}_{language}")
        if flat:
            names[language] = str(flat)
    return names


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise BadJob(f"ticket.issued_at is not an ISO time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _optional_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadJob(f"ticket.{name} must be a whole number, got {value!r}") from None


def ticket_from_job(job_id: str, raw: Mapping[str, Any]) -> Ticket:
    """Parse the `ticket` object of a print job; a malformed one raises BadJob."""
    if not isinstance(raw, Mapping):
        raise BadJob("job.ticket must be an object")
    label = str(raw.get("label") or "").strip()
    if not label:
        raise BadJob("ticket.label is required")
    language = str(raw.get("language") or "ka")
    if language not in LANGUAGES:
        language = "ka"
    return Ticket(
        id=str(job_id),
        label=label,
        language=language,
        service_name=_names(raw, "service_name"),
        branch_name=_names(raw, "branch_name"),
        issued_at=_time(raw.get("issued_at") or datetime.now(UTC)),
        people_ahead=_optional_int(raw.get("people_ahead"), "people_ahead"),
        wait_minutes=_optional_int(raw.get("wait_minutes"), "wait_minutes"),
        status_url=str(raw.get("status_url") or ""),
        documents=_documents(raw.get("documents")),
        online_url=str(raw.get("online_url") or ""),
        priority_requested=raw.get("priority_requested") is True,
    )


MAX_DOCUMENTS = 20


def _documents(value: Any) -> tuple[Mapping[str, str], ...]:
    """`[{"ka": …, "en": …}, …]`; anything else is no list (a ticket prints without it)."""
    if not isinstance(value, list):
        return ()
    return tuple(
        {k: str(v) for k, v in item.items() if isinstance(v, str) and v}
        for item in value[:MAX_DOCUMENTS]
        if isinstance(item, Mapping)
    )


SAMPLE_SERVICE = {
    "ka": "პირადობის მოწმობა",
    "en": "ID card",
    "ru": "Удостоверение личности",
    "az": "Şəxsiyyət vəsiqəsi",
    "hy": "Անձը հաստատող փաստաթուղթ",
}
SAMPLE_BRANCH = {"ka": "იუსტიციის სახლი — თბილისი", "en": "Public Service Hall — Tbilisi"}


def sample_ticket(language: str = "ka", *, ticket_id: str = "sample-0001") -> Ticket:
    """A realistic ticket for previews, tests and the benchmark."""
    return Ticket(
        id=ticket_id,
        label="A012",
        language=language,
        service_name=SAMPLE_SERVICE,
        branch_name=SAMPLE_BRANCH,
        issued_at=datetime(2026, 11, 23, 9, 14, 5, tzinfo=UTC),
        people_ahead=3,
        wait_minutes=12,
        status_url=f"https://rigi.example.ge/t/{ticket_id}",
    )


def sample_ticket_json(language: str = "ka", *, ticket_id: str = "sample-0001") -> dict[str, Any]:
    """The same sample ticket as the server sends it inside a print job."""
    ticket = sample_ticket(language, ticket_id=ticket_id)
    return {
        "label": ticket.label,
        "language": language,
        "service_name": dict(ticket.service_name),
        "branch_name": dict(ticket.branch_name),
        "issued_at": ticket.issued_at.isoformat().replace("+00:00", "Z"),
        "people_ahead": ticket.people_ahead,
        "wait_minutes": ticket.wait_minutes,
        "status_url": ticket.status_url,
    }
