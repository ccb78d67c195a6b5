"""The demo configuration names every service, agency, branch and area in all five languages, and
says which of those names still await a native speaker's check."""

from __future__ import annotations

import yaml

from queue_server.catalog.loader import load_catalog
from queue_server.catalog.models import LANGUAGES
from queue_server.settings import SHIPPED_CONFIG

REVIEW_FILE = SHIPPED_CONFIG / "translations-review.yaml"


def test_every_name_of_the_demo_configuration_is_in_all_five_languages() -> None:
    catalog = load_catalog(SHIPPED_CONFIG)
    named = [
        *(("service", s.id, s.name) for s in catalog.services.values()),
        *(("agency", a.id, a.name) for a in catalog.agencies.values()),
        *(("branch", b.id, b.name) for b in catalog.branches.values()),
        *(("area", f"{b.id}/{a.id}", a.name) for b in catalog.branches.values() for a in b.areas),
    ]
    missing = [
        f"{kind} {ident}: {language}"
        for kind, ident, name in named
        for language in LANGUAGES
        if not getattr(name, language)
    ]
    assert missing == []


def test_drafted_names_are_listed_for_a_native_speakers_check() -> None:
    catalog = load_catalog(SHIPPED_CONFIG)
    review = yaml.safe_load(REVIEW_FILE.read_text("utf-8"))["awaiting_native_check"]
    assert set(review["services"]) <= set(catalog.services)
    assert set(review["agencies"]) <= set(catalog.agencies)
    assert set(review["branches"]) <= set(catalog.branches)
    assert set(review["languages"]) == {"az", "hy"}
