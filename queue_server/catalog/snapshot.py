"""The organisation as the server reads it on every request: one `Catalog` object whose contents
an edit swaps in one assignment.

Everything that was handed the catalog at start-up (the queue store, the reports projector, the
pages) keeps the same `Catalog` object; `Catalog.swap` replaces the one frozen `_Snapshot` inside
it, so each lookup sees either the old organisation or the new one, never half of each. Counter
profiles, branch service lists and counters are expanded once per snapshot, because "call next"
reads them on every call.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field

from queue_server.catalog.models import Agency, Branch, Counter, Service
from queue_server.errors import ConfigError, NotFound

EVERY_SERVICE = "*"
"""In a counter's `serves` or a branch's `offers`, the key that stands for every service."""


@dataclass(frozen=True)
class _Snapshot:
    """One validated organisation with its expanded profiles; never changed once built."""

    agencies: Mapping[str, Agency]
    services: Mapping[str, Service]
    branches: Mapping[str, Branch]
    version: int
    counters: dict[tuple[str, str], Counter] = field(default_factory=dict)
    profiles: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    branch_services: dict[str, tuple[Service, ...]] = field(default_factory=dict)
    served: dict[str, frozenset[str]] = field(default_factory=dict)
    service_seconds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.service_seconds.update({s.id: s.service_time_min * 60 for s in self.services.values()})
        by_agency = services_by_agency(self.services.values())
        # Most counters share a few profiles ({"*": 1} in every centre): expand each once.
        expanded: dict[tuple[tuple[str, float], ...], dict[str, float]] = {}
        for branch in self.branches.values():
            offered_here = offered(branch, self.services, by_agency)
            served: set[str] = set()
            for counter in branch.counters:
                key = tuple(counter.serves.items())
                if key not in expanded:
                    unknown = unknown_keys(counter.serves, self.services, self.agencies)
                    if unknown:
                        raise ConfigError(
                            f"branch {branch.id}, counter {counter.id}: serves unknown "
                            f"services or agencies {sorted(unknown)}"
                        )
                    expanded[key] = expand_serves(counter.serves, self.services, by_agency)
                profile = {
                    service_id: weight
                    for service_id, weight in expanded[key].items()
                    if service_id in offered_here
                }
                self.counters[branch.id, counter.id] = counter
                self.profiles[branch.id, counter.id] = profile
                served.update(profile)
            self.served[branch.id] = frozenset(served)
            self.branch_services[branch.id] = tuple(
                sorted(
                    (self.services[service_id] for service_id in served),
                    key=lambda service: (-service.popularity, service.id),
                )
            )


class Catalog:
    """The validated organisation: agencies, services and branches, with expanded profiles.

    Lookups raise `NotFound` with a stable code, so the HTTP layer answers 404 without knowing
    the catalog. `version` is the stored organisation version it holds (0: read from files).
    """

    __slots__ = ("_now",)

    def __init__(
        self,
        agencies: Mapping[str, Agency],
        services: Mapping[str, Service],
        branches: Mapping[str, Branch],
        *,
        version: int = 0,
    ) -> None:
        self._now = _Snapshot(dict(agencies), dict(services), dict(branches), version)

    def swap(self, other: Catalog) -> None:
        """Serve `other`'s organisation from now on, in one assignment (see the module doc)."""
        self._now = other._now

    @property
    def agencies(self) -> Mapping[str, Agency]:
        return self._now.agencies

    @property
    def services(self) -> Mapping[str, Service]:
        return self._now.services

    @property
    def branches(self) -> Mapping[str, Branch]:
        return self._now.branches

    @property
    def version(self) -> int:
        return self._now.version

    @property
    def service_seconds(self) -> Mapping[str, float]:
        """Each service's configured typical time in seconds (the estimators' fallback)."""
        return self._now.service_seconds

    def branch(self, branch_id: str) -> Branch:
        """The branch with this id, or NotFound(unknown_branch)."""
        try:
            return self._now.branches[branch_id]
        except KeyError:
            raise NotFound(
                f"There is no branch {branch_id!r}.", code="unknown_branch", branch=branch_id
            ) from None

    def service(self, service_id: str) -> Service:
        """The service with this id, or NotFound(unknown_service)."""
        try:
            return self._now.services[service_id]
        except KeyError:
            raise NotFound(
                f"There is no service {service_id!r}.", code="unknown_service", service=service_id
            ) from None

    def counter(self, branch_id: str, counter_id: str) -> Counter:
        """The counter of a branch, or NotFound(unknown_branch / unknown_counter)."""
        try:
            return self._now.counters[branch_id, counter_id]
        except KeyError:
            self.branch(branch_id)
            raise NotFound(
                f"Branch {branch_id!r} has no counter {counter_id!r}.",
                code="unknown_counter",
                branch=branch_id,
                counter=counter_id,
            ) from None

    def profile(self, branch_id: str, counter_id: str) -> dict[str, float]:
        """The counter's work profile expanded to service id → weight (> 0), limited to what its
        branch offers; a fresh copy, so a caller may change it without touching the catalog."""
        try:
            return dict(self._now.profiles[branch_id, counter_id])
        except KeyError:
            self.counter(branch_id, counter_id)
            raise  # pragma: no cover - counter() raised NotFound already

    def branch_services(self, branch_id: str) -> list[Service]:
        """What the branch's kiosk offers: services some counter serves, most popular first."""
        try:
            return list(self._now.branch_services[branch_id])
        except KeyError:
            self.branch(branch_id)
            raise  # pragma: no cover - branch() raised NotFound already

    def serves(self, branch_id: str, service_id: str) -> bool:
        """Whether some counter of the branch serves the service (False for unknown services)."""
        try:
            return service_id in self._now.served[branch_id]
        except KeyError:
            self.branch(branch_id)
            raise  # pragma: no cover - branch() raised NotFound already


def expand_serves(
    serves: Mapping[str, float],
    services: Mapping[str, Service],
    by_agency: Mapping[str, list[str]],
) -> dict[str, float]:
    """Expand a counter's `serves` to service id → weight. The most specific entry wins (a
    service over its agency over "*"), and a weight of 0 leaves the service out."""
    profile: dict[str, float] = {}
    if EVERY_SERVICE in serves:
        profile = dict.fromkeys(services, serves[EVERY_SERVICE])
    for key, weight in serves.items():
        for service_id in by_agency.get(key, ()):
            profile[service_id] = weight
    for key, weight in serves.items():
        if key in services:
            profile[key] = weight
    return {service_id: weight for service_id, weight in profile.items() if weight > 0}


def offered(
    branch: Branch, services: Mapping[str, Service], by_agency: Mapping[str, list[str]]
) -> frozenset[str]:
    """The service ids a branch offers: its `offers` (service ids, agency ids, "*") expanded,
    or every service when it names none."""
    if branch.offers is None:
        return frozenset(services)
    return frozenset(expand_serves(dict.fromkeys(branch.offers, 1.0), services, by_agency))


def services_by_agency(services: Iterable[Service]) -> dict[str, list[str]]:
    by_agency: dict[str, list[str]] = {}
    for service in services:
        by_agency.setdefault(service.agency, []).append(service.id)
    return by_agency


def unknown_keys(
    keys: Iterable[str], services: Container[str], agencies: Container[str]
) -> set[str]:
    """The keys of a `serves` or `offers` that name no service, no agency and not "*"."""
    return {
        key for key in keys if key != EVERY_SERVICE and key not in services and key not in agencies
    }
