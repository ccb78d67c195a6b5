"""The reports API: a branch's report (staff: an operator sees their own figures, a manager their
branch) and the network's (administrators), each as JSON, CSV and an Excel workbook."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from queue_server.access.principal import Role
from queue_server.api.http import Endpoint, json_response, principal_of
from queue_server.catalog.loader import Catalog
from queue_server.catalog.regions import region_of, regions_by_municipality
from queue_server.domain import kpis
from queue_server.domain.numbering import local_day
from queue_server.errors import Forbidden, ValidationFailed
from queue_server.reporting.exports import XLSX_TYPE, tables_of, to_csv, to_xlsx
from queue_server.store.reports.page import read_page
from queue_server.store.reports.periods import Slice
from queue_server.store.reports.report import Report

if TYPE_CHECKING:
    from queue_server.app import Rigi

DEFAULT_DAYS = 7  # a report without a period covers the last week, today included
MAX_DAYS = 400  # a year and a bit, with its previous period beside it
LIST = r"^[A-Za-z0-9_:.@-]{1,64}(,[A-Za-z0-9_:.@-]{1,64}){0,49}$"
NAMES = r"^[A-Za-z0-9_:.@ -]{1,64}(,[A-Za-z0-9_:.@ -]{1,64}){0,49}$"  # regions have spaces


class ReportQuery(BaseModel):
    """The slice of a report; lists are comma-separated, dates are the branch's (inclusive)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    first: date | None = Field(default=None, alias="from", description="first day, YYYY-MM-DD")
    last: date | None = Field(default=None, alias="to", description="last day, YYYY-MM-DD")
    service: str | None = Field(default=None, pattern=LIST)
    agency: str | None = Field(default=None, pattern=LIST)
    priority: str | None = Field(default=None, pattern=LIST)
    channel: str | None = Field(default=None, pattern=LIST)
    counter: str | None = Field(default=None, pattern=LIST)
    operator: str | None = Field(default=None, pattern=LIST)
    branch: str | None = Field(default=None, pattern=LIST, description="network reports only")
    region: str | None = Field(
        default=None, pattern=NAMES, description="network reports only: regions or municipalities"
    )
    table: Literal[
        "kpis", "services", "branches", "days", "heatmap", "counters", "longest_waits"
    ] = Field(default="kpis", description="which table a CSV holds (see exports.TABLES)")


async def branch_report(request: Request, branch: str) -> Response:
    return await _answer(request, branch, "json")


async def branch_report_csv(request: Request, branch: str) -> Response:
    return await _answer(request, branch, "csv")


async def branch_report_xlsx(request: Request, branch: str) -> Response:
    return await _answer(request, branch, "xlsx")


async def network_report(request: Request) -> Response:
    return await _answer(request, None, "json")


async def network_report_csv(request: Request) -> Response:
    return await _answer(request, None, "csv")


async def network_report_xlsx(request: Request) -> Response:
    return await _answer(request, None, "xlsx")


async def _answer(request: Request, branch: str | None, form: str) -> Response:
    rigi = request.app.state.rigi
    catalog: Catalog = rigi.catalog
    query = _query(request)
    where = _slice(request, catalog, branch, query, local_day(rigi.store.clock()))
    timezones = {b.id: b.timezone for b in catalog.branches.values()}
    page = await read_page(rigi.database, where, timezones)
    regions = _regions(rigi)
    body = _body(page.report, page.previous.total, where, page.previous_period, catalog, regions)
    name = f"rigi-report-{branch or 'network'}-{where.first}-{where.last}"
    if form == "csv":
        text = to_csv(tables_of(body)[query.table])
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}-{query.table}.csv"'},
        )
    if form == "xlsx":
        return Response(
            to_xlsx(tables_of(body)),
            media_type=XLSX_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return json_response(body)


def _query(request: Request) -> ReportQuery:
    try:
        return ReportQuery.model_validate(dict(request.query_params))
    except ValidationError as error:
        raise ValidationFailed(
            "Some report parameters are wrong.",
            code="bad_report_query",
            fields=[
                {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
                for e in error.errors(include_url=False, include_input=False)
            ],
        ) from None


def _slice(
    request: Request, catalog: Catalog, branch: str | None, query: ReportQuery, today: date
) -> Slice:
    """The slice asked for, narrowed to what the caller may see."""
    last = query.last or today
    first = query.first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise ValidationFailed("The period ends before it begins.", code="bad_period")
    if (last - first).days >= MAX_DAYS:
        raise ValidationFailed(f"A report covers at most {MAX_DAYS} days.", code="bad_period")
    operators = _split(query.operator)
    principal = principal_of(request)
    if principal.role is Role.OPERATOR:
        if operators not in (None, (principal.actor,)):
            raise Forbidden("An operator sees only their own figures.", code="forbidden_operator")
        operators = (principal.actor,)
    if branch is not None:
        catalog.branch(branch)
        if query.branch or query.region:
            raise ValidationFailed(
                "A branch's report has no branch or region filter.", code="bad_report_query"
            )
        branches: tuple[str, ...] | None = (branch,)
    else:
        branches = _split(query.branch)
        if query.region:
            wanted = set(_split(query.region) or ())
            regions = _regions(request.app.state.rigi)
            in_regions = tuple(
                b.id
                for b in catalog.branches.values()
                if {regions.get(b.id), b.municipality} & wanted
            )
            branches = tuple(b for b in branches or in_regions if b in in_regions)
    return Slice(
        first=first,
        last=last,
        branches=branches,
        agencies=_split(query.agency),
        services=_split(query.service),
        priorities=_split(query.priority),
        channels=_split(query.channel),
        counters=_split(query.counter),
        operators=operators,
    )


def _body(
    report: Report,
    previous: kpis.Sums,
    where: Slice,
    previous_period: tuple[date, date],
    catalog: Catalog,
    regions: dict[str, str | None],
) -> dict[str, Any]:
    municipalities = {b.id: b.municipality for b in catalog.branches.values()}
    return {
        "period": {"from": where.first.isoformat(), "to": where.last.isoformat()},
        "previous_period": {
            "from": previous_period[0].isoformat(),
            "to": previous_period[1].isoformat(),
        },
        "source": "facts" if where.needs_facts else "rollups",
        "kpis": kpis.figures(report.total),
        "previous": kpis.figures(previous),
        "services": [
            {"service_id": service, "agency_id": _agency(catalog, service)} | kpis.figures(sums)
            for service, sums in sorted(report.by_service.items())
        ],
        "branches": [
            {
                "branch_id": branch,
                "region": regions.get(branch),
                "municipality": municipalities.get(branch),
            }
            | kpis.figures(sums)
            for branch, sums in sorted(report.by_branch.items())
        ],
        "days": [
            {"date": day.isoformat()} | kpis.figures(sums)
            for day, sums in sorted(report.by_day.items())
        ],
        "heatmap": [
            {"weekday": weekday, "hour": hour, "arrivals": count}
            for (weekday, hour), count in sorted(report.arrivals.items())
        ],
        "counters": [
            {"branch_id": branch, "counter_id": counter, "operator": operator or None}
            | spent.figures()
            for (branch, counter, operator), spent in sorted(report.counters.items())
        ],
        "longest_waits": report.longest,
    }


def _split(value: str | None) -> tuple[str, ...] | None:
    return tuple(value.split(",")) if value else None


def _regions(rigi: Rigi) -> dict[str, str | None]:
    """Branch → its region: the one the organisation sets, else its municipality's (config/
    municipalities.csv), None where neither is known; a region filter also takes a
    municipality's name."""
    by_municipality = regions_by_municipality(rigi.settings.config)
    return {b.id: region_of(b, by_municipality) for b in rigi.catalog.branches.values()}


def _agency(catalog: Catalog, service_id: str) -> str | None:
    service = catalog.services.get(service_id)
    return service.agency if service else None


R = "/api/v1/reports"
B = "/api/v1/branches/{branch}/reports"
_ERRORS = (404, 422)
_CSV = "text/csv"

REPORT_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", B, branch_report, "A branch's report: KPIs, by service, day, hour, counter",
             access="staff", errors=_ERRORS, tags=("reports",), query=ReportQuery),
    Endpoint("GET", B + ".csv", branch_report_csv, "One table of a branch's report as CSV",
             access="staff", errors=_ERRORS, tags=("reports",), query=ReportQuery,
             media_type=_CSV),
    Endpoint("GET", B + ".xlsx", branch_report_xlsx, "A branch's report as an Excel workbook",
             access="staff", errors=_ERRORS, tags=("reports",), query=ReportQuery,
             media_type=XLSX_TYPE),
    Endpoint("GET", R, network_report, "The network's report, by branch and region",
             access="admin", errors=_ERRORS, tags=("reports",), query=ReportQuery),
    Endpoint("GET", R + ".csv", network_report_csv, "One table of the network's report as CSV",
             access="admin", errors=_ERRORS, tags=("reports",), query=ReportQuery,
             media_type=_CSV),
    Endpoint("GET", R + ".xlsx", network_report_xlsx, "The network's report as a workbook",
             access="admin", errors=_ERRORS, tags=("reports",), query=ReportQuery,
             media_type=XLSX_TYPE),
)  # fmt: skip
