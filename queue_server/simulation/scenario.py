"""Scenarios: a hall's services, counters, hours and visitor traffic, read from YAML.

A scenario is self-contained: it defines its own services inline, so it does not depend on the
shipped catalogue. Times of day are "HH:MM" (hours may exceed 24 for long validation runs).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "config" / "scenarios"
DISTRIBUTIONS = ("lognormal", "exponential")


class ScenarioError(ValueError):
    """A scenario file that cannot be simulated; the message names the bad field."""


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    name: str
    agency: str
    daily_visits: float
    mean_service_s: float
    target_wait_s: float
    service_cv: float = 0.6  # coefficient of variation of the log-normal service time


@dataclass(frozen=True, slots=True)
class Counter:
    """One counter: what it serves (service → weight) and when it is staffed."""

    id: str
    profile: dict[str, float]
    duty: tuple[tuple[float, float], ...]  # staffed intervals in seconds after midnight


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    description: str
    open_s: float
    close_s: float
    services: tuple[Service, ...]
    counters: tuple[Counter, ...]
    arrival_profile: tuple[float, ...]  # relative arrival weight of each opening hour
    distribution: str = "lognormal"
    priority_share: float = 0.05
    no_show_share: float = 0.04
    no_show_timeout_s: float = 60.0
    warmup_s: float = 0.0  # visits issued before open + warmup are left out of the figures
    erlang_check: tuple[float, ...] = ()  # utilisations at which to compare with Erlang C

    def service(self, service_id: str) -> Service:
        for service in self.services:
            if service.id == service_id:
                return service
        raise KeyError(service_id)

    def offered_load(self) -> float:
        """Mean work arriving per second of opening, over staffed counter-seconds: ρ."""
        work = sum(s.daily_visits * s.mean_service_s for s in self.services)
        staffed = sum(end - start for counter in self.counters for start, end in counter.duty)
        return work / staffed if staffed else float("inf")

    def with_utilisation(self, utilisation: float) -> Scenario:
        """The same hall with arrivals scaled so that the offered load is `utilisation`."""
        factor = utilisation / self.offered_load()
        services = tuple(
            dataclasses.replace(s, daily_visits=s.daily_visits * factor) for s in self.services
        )
        return dataclasses.replace(self, services=services)

    def with_priority_share(self, share: float) -> Scenario:
        return dataclasses.replace(self, priority_share=share)

    def warmed_up(self, warmup_s: float) -> Scenario:
        """The scenario run longer so that nothing counts before `warmup_s`, with the same
        measured hours after it (constant arrivals and counters staffed to closing time: the
        validation scenarios), at the same load."""
        extra_s = warmup_s - self.warmup_s
        if extra_s <= 0:
            return self
        if len(set(self.arrival_profile)) > 1 or extra_s % 3600:
            raise ValueError("a longer warm-up needs constant arrivals and whole hours")
        counters = tuple(
            dataclasses.replace(
                c, duty=tuple((s, e + extra_s if e >= self.close_s else e) for s, e in c.duty)
            )
            for c in self.counters
        )
        return dataclasses.replace(
            self,
            close_s=self.close_s + extra_s,
            warmup_s=warmup_s,
            counters=counters,
            arrival_profile=self.arrival_profile + self.arrival_profile[-1:] * int(extra_s // 3600),
        ).with_utilisation(self.offered_load())


def parse_clock(value: object, field: str) -> float:
    """'HH:MM' → seconds after midnight."""
    try:
        hours, minutes = str(value).split(":")
        return int(hours) * 3600.0 + int(minutes) * 60.0
    except ValueError:
        raise ScenarioError(f"{field}: expected a time of day as HH:MM, got {value!r}") from None


def find_scenario(name_or_path: str) -> Path:
    """A scenario by its name in config/scenarios, or by a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = SCENARIO_DIR / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
    raise ScenarioError(f"No scenario {name_or_path!r}; known scenarios: {known}")


def all_scenarios() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.yaml"))


def load_scenario(name_or_path: str) -> Scenario:
    path = find_scenario(name_or_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a mapping at the top level")
    return parse_scenario(data, default_name=path.stem)


def parse_scenario(data: dict[str, Any], default_name: str = "scenario") -> Scenario:
    open_s = parse_clock(data.get("open", "09:00"), "open")
    close_s = parse_clock(data.get("close", "18:00"), "close")
    if close_s <= open_s:
        raise ScenarioError("close: must be after open")
    services = tuple(_parse_service(i, raw) for i, raw in enumerate(data.get("services") or []))
    if not services:
        raise ScenarioError("services: a scenario needs at least one service")
    known = {s.id for s in services}
    counters: list[Counter] = []
    for i, group in enumerate(data.get("counters") or []):
        counters.extend(_parse_counter_group(i, group, open_s, close_s, known))
    if not counters:
        raise ScenarioError("counters: a scenario needs at least one counter")
    for service in services:
        if not any(c.profile.get(service.id, 0.0) > 0 for c in counters):
            raise ScenarioError(f"services.{service.id}: no counter serves it")
    hours = int(-(-(close_s - open_s) // 3600))
    profile = tuple(float(w) for w in data.get("arrival_profile") or [1.0] * hours)
    if len(profile) != hours or min(profile) < 0 or sum(profile) <= 0:
        raise ScenarioError(f"arrival_profile: expected {hours} non-negative hourly weights")
    distribution = str(data.get("distribution", "lognormal"))
    if distribution not in DISTRIBUTIONS:
        raise ScenarioError(f"distribution: expected one of {DISTRIBUTIONS}")
    return Scenario(
        name=str(data.get("name", default_name)),
        title=str(data.get("title", default_name)),
        description=str(data.get("description", "")).strip(),
        open_s=open_s,
        close_s=close_s,
        services=services,
        counters=tuple(counters),
        arrival_profile=profile,
        distribution=distribution,
        priority_share=_share(data, "priority_share", 0.05),
        no_show_share=_share(data, "no_show_share", 0.04),
        no_show_timeout_s=float(data.get("no_show_timeout_s", 60.0)),
        warmup_s=float(data.get("warmup_minutes", 0.0)) * 60.0,
        erlang_check=tuple(float(u) for u in data.get("erlang_check") or ()),
    )


def _share(data: dict[str, Any], field: str, default: float) -> float:
    value = float(data.get(field, default))
    if not 0.0 <= value <= 1.0:
        raise ScenarioError(f"{field}: expected a share between 0 and 1, got {value}")
    return value


def _parse_service(index: int, raw: dict[str, Any]) -> Service:
    where = f"services[{index}]"
    try:
        service = Service(
            id=str(raw["id"]),
            name=str(raw.get("name", raw["id"])),
            agency=str(raw.get("agency", "")),
            daily_visits=float(raw["daily_visits"]),
            mean_service_s=float(raw["mean_service_min"]) * 60.0,
            target_wait_s=float(raw["target_wait_min"]) * 60.0,
            service_cv=float(raw.get("service_cv", 0.6)),
        )
    except KeyError as missing:
        raise ScenarioError(f"{where}: missing {missing}") from None
    if service.mean_service_s <= 0 or service.target_wait_s <= 0 or service.daily_visits < 0:
        raise ScenarioError(f"{where}: times must be positive and visits non-negative")
    return service


def _parse_counter_group(
    index: int, group: dict[str, Any], open_s: float, close_s: float, known: set[str]
) -> list[Counter]:
    """A group of identical counters `prefix01…prefixNN`; breaks are staggered in waves so that
    the whole group is never away at once."""
    where = f"counters[{index}]"
    prefix = str(group.get("prefix", f"C{index}"))
    count = int(group.get("count", 1))
    profile = {str(k): float(v) for k, v in (group.get("profile") or {}).items()}
    unknown = set(profile) - known
    if unknown:
        raise ScenarioError(f"{where}.profile: unknown services {sorted(unknown)}")
    start = parse_clock(group["from"], f"{where}.from") if "from" in group else open_s
    end = parse_clock(group["until"], f"{where}.until") if "until" in group else close_s
    breaks = group.get("breaks") or []
    counters = []
    for number in range(1, count + 1):
        away: list[tuple[float, float]] = []
        for j, brk in enumerate(breaks):
            first = parse_clock(brk["first"], f"{where}.breaks[{j}].first")
            length = float(brk["minutes"]) * 60.0
            waves = max(int(brk.get("waves", 1)), 1)
            begin = first + ((number - 1) % waves) * length
            away.append((begin, begin + length))
        counters.append(
            Counter(
                id=f"{prefix}{number:02d}",
                profile=profile,
                duty=_subtract(start, end, sorted(away)),
            )
        )
    return counters


def _subtract(
    start: float, end: float, away: list[tuple[float, float]]
) -> tuple[tuple[float, float], ...]:
    duty = []
    cursor = start
    for begin, finish in away:
        if begin > cursor:
            duty.append((cursor, min(begin, end)))
        cursor = max(cursor, finish)
    if cursor < end:
        duty.append((cursor, end))
    return tuple((a, b) for a, b in duty if b > a)
