"""A report's tables as CSV (one table) and as an Excel workbook (one sheet per table)."""

from __future__ import annotations

import csv
import io
from typing import Any

TABLES = ("kpis", "services", "branches", "days", "heatmap", "counters", "longest_waits")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def tables_of(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every table of a report's JSON as rows of named cells."""
    kpis = [
        {"metric": name, "value": value, "previous": report["previous"].get(name)}
        for name, value in report["kpis"].items()
    ]
    return {"kpis": kpis} | {name: report[name] for name in TABLES[1:]}


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    columns = _columns(rows)
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def to_xlsx(tables: dict[str, list[dict[str, Any]]]) -> bytes:
    from openpyxl import Workbook  # imported on first export: the server starts without it

    book = Workbook()
    book.remove(book.active)
    for name, rows in tables.items():
        sheet = book.create_sheet(name)
        columns = _columns(rows)
        sheet.append(columns)
        for row in rows:
            sheet.append([row.get(column) for column in columns])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns) or ["empty"]
