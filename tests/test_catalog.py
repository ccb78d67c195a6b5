"""The organisation in `config/`: the demo the server ships with, and what the loader refuses."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from queue_server.catalog.loader import (
    DEFAULT_CENTRE_AGENCIES,
    Catalog,
    check_config,
    load_catalog,
)
from queue_server.errors import ConfigError, NotFound

SHIPPED = Path(__file__).resolve().parent.parent / "config"
GEORGIAN_LETTERS = re.compile(r"[\u10D0-\u10FF]")
BRANCH_ID = re.compile(r"^[a-z][a-z0-9_-]*$")
COMMUNITY_CENTRES = 85


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load_catalog(SHIPPED)


def agencies_of(catalog: Catalog, profile: dict[str, float]) -> set[str]:
    return {catalog.services[service_id].agency for service_id in profile}


# --- the demo organisation -------------------------------------------------------------------


def test_the_shipped_configuration_passes_the_check() -> None:
    assert check_config(SHIPPED) == []


def test_every_service_is_named_in_georgian_and_english_with_a_ticket_letter(
    shipped: Catalog,
) -> None:
    assert len(shipped.services) >= 45
    for service in shipped.services.values():
        assert GEORGIAN_LETTERS.search(service.name.ka), service.id
        assert service.name.en.isascii() and service.name.en.strip(), service.id
        assert re.fullmatch(r"[A-Z]", service.letter), service.id
        assert service.agency in shipped.agencies, service.id
        assert (service.category == "quick") == (service.service_time_min <= 5), service.id


def test_every_agency_offers_services_and_only_the_bank_and_telecom_are_private(
    shipped: Catalog,
) -> None:
    offering = {service.agency for service in shipped.services.values()}
    assert offering == set(shipped.agencies)
    private = {agency.id for agency in shipped.agencies.values() if agency.private}
    assert private == {"liberty_bank", "magticom"}
    for agency in shipped.agencies.values():
        assert GEORGIAN_LETTERS.search(agency.name.ka), agency.id


def test_the_tbilisi_hall_has_quick_and_long_areas_and_many_counters(shipped: Catalog) -> None:
    hall = shipped.branch("tbilisi")
    assert hall.kind == "hall"
    assert len(hall.counters) >= 24
    assert {"quick", "long"} <= {area.id for area in hall.areas}
    used_areas = {counter.area for counter in hall.counters}
    assert {"quick", "long"} <= used_areas
    assert sorted(c.number for c in hall.counters) == list(range(1, len(hall.counters) + 1))


def test_a_tbilisi_counter_serves_several_agencies(shipped: Catalog) -> None:
    spans = [
        agencies_of(shipped, shipped.profile("tbilisi", counter.id))
        for counter in shipped.branch("tbilisi").counters
    ]
    assert max(len(agencies) for agencies in spans) >= 3
    assert sum(len(agencies) >= 2 for agencies in spans) >= 5


def test_every_service_can_be_taken_in_tbilisi_most_popular_first(shipped: Catalog) -> None:
    offered = shipped.branch_services("tbilisi")
    assert {service.id for service in offered} == set(shipped.services)
    popularity = [service.popularity for service in offered]
    assert popularity == sorted(popularity, reverse=True)
    assert offered[0].id == "id_card"


def _centre_services(catalog: Catalog) -> dict[str, float]:
    """What a Community Centre's generalist counter serves: every service of the agencies the
    centres offer (all services when the configuration has none of those agencies)."""
    known = [a for a in DEFAULT_CENTRE_AGENCIES if a in catalog.agencies]
    return {s.id: 1.0 for s in catalog.services.values() if not known or s.agency in known}


def test_the_small_centre_has_three_counters_that_serve_what_centres_offer(
    shipped: Catalog,
) -> None:
    centre = shipped.branch("cc01-shashiani")
    assert centre.kind == "community_centre"
    assert 2 <= len(centre.counters) <= 3
    for counter in centre.counters:
        assert set(shipped.profile(centre.id, counter.id)) == set(_centre_services(shipped))
    assert not shipped.serves(centre.id, "utility_payments")  # the bank of the big halls


def test_every_community_centre_of_the_list_is_a_branch(shipped: Catalog) -> None:
    with (SHIPPED / "community_centres.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == COMMUNITY_CENTRES
    centres = [b for b in shipped.branches.values() if b.kind == "community_centre"]
    assert len(centres) == COMMUNITY_CENTRES
    for row, centre in zip(rows, centres, strict=True):
        assert BRANCH_ID.match(centre.id)
        assert centre.id.startswith(f"cc{int(row['number']):02d}-")
        assert centre.name.en == f"{row['village']} Community Centre"
        assert GEORGIAN_LETTERS.search(centre.name.ka), centre.id
        assert centre.municipality == row["municipality"]
    assert shipped.branch("cc25-kvemo-natanebi").name.ka.endswith("ქვემო ნატანებში")


def test_a_centre_without_its_own_file_gets_two_counters_and_the_centres_services(
    shipped: Catalog,
) -> None:
    centre = shipped.branch("cc02-sartichala")
    assert [counter.id for counter in centre.counters] == ["c01", "c02"]
    assert shipped.profile(centre.id, "c02") == _centre_services(shipped)
    assert shipped.serves(centre.id, "id_card")
    capital = [s.id for s in shipped.services.values() if s.agency == "tbilisi_city_hall"]
    assert capital and not any(shipped.serves(centre.id, s) for s in capital)


def test_lookups_of_unknown_things_say_which_with_a_stable_code(shipped: Catalog) -> None:
    cases: list[tuple[Callable[[], object], str, str]] = [
        (lambda: shipped.branch("atlantis"), "unknown_branch", "atlantis"),
        (lambda: shipped.service("moon_visa"), "unknown_service", "moon_visa"),
        (lambda: shipped.counter("tbilisi", "z99"), "unknown_counter", "z99"),
        (lambda: shipped.counter("atlantis", "q01"), "unknown_branch", "atlantis"),
        (lambda: shipped.profile("tbilisi", "z99"), "unknown_counter", "z99"),
        (lambda: shipped.branch_services("atlantis"), "unknown_branch", "atlantis"),
        (lambda: shipped.serves("atlantis", "id_card"), "unknown_branch", "atlantis"),
    ]
    for lookup, code, named in cases:
        with pytest.raises(NotFound) as caught:
            lookup()
        assert caught.value.code == code
        assert named in caught.value.message


def test_serves_answers_per_branch_and_is_false_for_an_unknown_service(shipped: Catalog) -> None:
    assert shipped.serves("tbilisi", "id_card")
    assert not shipped.serves("tbilisi", "moon_visa")
    assert shipped.counter("tbilisi", "q01").number == 1


def test_a_caller_changing_a_profile_does_not_change_the_catalog(shipped: Catalog) -> None:
    profile = shipped.profile("tbilisi", "l01")
    profile["id_card"] = 99.0
    assert shipped.profile("tbilisi", "l01")["id_card"] == 3.0


# --- a small configuration written for each test ----------------------------------------------


def organisation() -> dict[str, Any]:
    """A valid little organisation as plain data; a test spoils one part and writes it."""
    return {
        "agencies.yaml": {
            "agencies": [
                {"id": "psda", "name": {"ka": "სააგენტო", "en": "Agency"}},
                {"id": "bank", "private": True, "name": {"ka": "ბანკი", "en": "Bank"}},
            ]
        },
        "services.yaml": {
            "services": [
                service("id_card", "psda", "A"),
                service("passport", "psda", "P"),
                service("birth_certificate", "psda", "C", popularity=5),
                service("utility_payments", "bank", "V", popularity=50),
            ]
        },
        "branches/hall.yaml": {
            "id": "hall",
            "kind": "hall",
            "name": {"ka": "დარბაზი", "en": "Hall"},
            "areas": [{"id": "main", "name": {"ka": "დარბაზი", "en": "Hall"}}],
            "counters": [
                {"id": "c01", "number": 1, "area": "main", "serves": {"*": 1}},
                {"id": "c02", "number": 2, "area": "main", "serves": {"passport": 2}},
            ],
        },
    }


def service(service_id: str, agency: str, letter: str, popularity: int = 10) -> dict[str, Any]:
    return {
        "id": service_id,
        "agency": agency,
        "name": {"ka": "მომსახურება", "en": service_id.replace("_", " ")},
        "letter": letter,
        "target_wait_min": 15,
        "service_time_min": 5,
        "category": "quick",
        "popularity": popularity,
    }


def write(directory: Path, files: dict[str, Any]) -> Path:
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else yaml.safe_dump(content, allow_unicode=True)
        path.write_text(text, encoding="utf-8")
    return directory


def test_a_counter_profile_expands_agencies_and_star_and_the_most_specific_entry_wins(
    tmp_path: Path,
) -> None:
    files = organisation()
    files["branches/hall.yaml"]["counters"].append(
        {
            "id": "c03",
            "number": 3,
            "area": "main",
            "serves": {"*": 1, "psda": 2, "passport": 5, "bank": 0},
        }
    )
    catalog = load_catalog(write(tmp_path, files))
    assert catalog.profile("hall", "c03") == {"id_card": 2, "passport": 5, "birth_certificate": 2}
    assert catalog.profile("hall", "c02") == {"passport": 2}
    assert catalog.profile("hall", "c01") == dict.fromkeys(catalog.services, 1.0)
    assert [s.id for s in catalog.branch_services("hall")] == [
        "utility_payments",
        "id_card",
        "passport",
        "birth_certificate",
    ]


def test_a_hand_written_centre_replaces_the_default_of_the_list(tmp_path: Path) -> None:
    files = organisation()
    files["community_centres.csv"] = (
        "number,village,municipality,name_ka\n"
        "1,Shashiani,Gurjaani,საზოგადოებრივი ცენტრი შაშიანში\n"
        "2,Kvemo Natanebi,Ozurgeti,საზოგადოებრივი ცენტრი ქვემო ნატანებში\n"
    )
    own = files["branches/hall.yaml"] | {"id": "cc01-shashiani", "kind": "community_centre"}
    files["branches/cc01-shashiani.yaml"] = own
    catalog = load_catalog(write(tmp_path, files))
    assert list(catalog.branches) == ["hall", "cc01-shashiani", "cc02-kvemo-natanebi"]
    assert catalog.profile("cc01-shashiani", "c02") == {"passport": 2}
    assert catalog.branch("cc02-kvemo-natanebi").municipality == "Ozurgeti"
    assert catalog.profile("cc02-kvemo-natanebi", "c01") == _centre_services(catalog)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A spoiler that sets one value, addressed like 'services.yaml/services/1/letter'."""

    name, _, key_path = path.partition(".yaml/")
    keys = key_path.split("/")

    def spoil(files: dict[str, Any]) -> None:
        target: Any = files[name + ".yaml"]
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        last = keys[-1]
        target[int(last) if last.isdigit() else last] = value

    return spoil


def _text(name: str, old: str, new: str) -> Callable[[dict[str, Any]], None]:
    """A spoiler that edits the written YAML text of one file."""

    def spoil(files: dict[str, Any]) -> None:
        text = yaml.safe_dump(files[name], allow_unicode=True)
        assert old in text
        files[name] = text.replace(old, new, 1)

    return spoil


def _append_counter(counter: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def spoil(files: dict[str, Any]) -> None:
        files["branches/hall.yaml"]["counters"].append(counter)

    return spoil


def _second_file_for_the_hall(files: dict[str, Any]) -> None:
    files["branches/hall-copy.yaml"] = files["branches/hall.yaml"]


BAD_CONFIGS = [
    pytest.param(
        _set("services.yaml/services/1/agency", "nowhere"),
        "services.yaml: services[1].agency: unknown agency 'nowhere'",
        id="unknown-agency",
    ),
    pytest.param(
        _set("services.yaml/services/0/letter", "AB"),
        "services.yaml: services[0].letter: String should match pattern",
        id="two-letter-prefix",
    ),
    pytest.param(
        _set("services.yaml/services/2/letter", "ა"),
        "services.yaml: services[2].letter: String should match pattern",
        id="georgian-letter",
    ),
    pytest.param(
        _set("services.yaml/services/3/colour", "blue"),
        "services.yaml: services[3].colour: Extra inputs are not permitted",
        id="unknown-key",
    ),
    pytest.param(
        _set("services.yaml/services/0/name", {"en": "ID card"}),
        "services.yaml: services[0].name.ka: Field required",
        id="missing-georgian-name",
    ),
    pytest.param(
        _set("services.yaml/services/3/id", "id_card"),
        "services.yaml: services[3].id: service id 'id_card' repeats services[0]",
        id="repeated-service",
    ),
    pytest.param(
        _set("agencies.yaml/agencies/1/id", "psda"),
        "agencies.yaml: agencies[1].id: agency id 'psda' repeats agencies[0]",
        id="repeated-agency",
    ),
    pytest.param(
        _append_counter({"id": "c01", "number": 3, "area": "main", "serves": {"*": 1}}),
        "hall.yaml: counters: Value error, counter id 'c01' repeats: counters[0] and counters[2]",
        id="duplicate-counter-id",
    ),
    pytest.param(
        _append_counter({"id": "c03", "number": 2, "area": "main", "serves": {"*": 1}}),
        "hall.yaml: counters: Value error, counter number 2 repeats: counters[1] and counters[2]",
        id="duplicate-counter-number",
    ),
    pytest.param(
        _set("branches/hall.yaml/counters/1/serves", {"pasport": 1}),
        "hall.yaml: counters[1].serves.pasport: not a service id, an agency id or '*'",
        id="counter-serves-unknown-service",
    ),
    pytest.param(
        _set("branches/hall.yaml/counters/1/serves", {"passport": -1}),
        "hall.yaml: counters[1].serves.passport: Input should be greater than or equal to 0",
        id="negative-weight",
    ),
    pytest.param(
        _set("branches/hall.yaml/counters/1/serves", {"passport": 0}),
        "hall.yaml: counters[1].serves: serves no service",
        id="counter-serves-nothing",
    ),
    pytest.param(
        _set("branches/hall.yaml/counters/0/area", "attic"),
        "hall.yaml: counters[0].area: unknown area 'attic'",
        id="unknown-area",
    ),
    pytest.param(
        _set("branches/hall.yaml/timezone", "Asia/Tiflis"),
        "hall.yaml: timezone: unknown time zone 'Asia/Tiflis'",
        id="bad-timezone",
    ),
    pytest.param(
        _set("branches/hall.yaml/id", "Hall 1"),
        "hall.yaml: id: String should match pattern",
        id="bad-branch-id",
    ),
    pytest.param(
        _second_file_for_the_hall,
        "hall.yaml: id: branch id 'hall' is already used by",
        id="repeated-branch-id",
    ),
    pytest.param(
        _text("services.yaml", "  letter: P\n", "  letter: [P\n"),
        "services.yaml: line ",
        id="yaml-syntax-error",
    ),
    pytest.param(
        _text("branches/hall.yaml", "    passport: 2\n", "    passport: 2\n    passport: 1\n"),
        "hall.yaml: line ",
        id="key-written-twice",
    ),
]


@pytest.mark.parametrize(("spoil", "expected"), BAD_CONFIGS)
def test_a_bad_configuration_is_refused_naming_the_file_and_the_key(
    tmp_path: Path, spoil: Callable[[dict[str, Any]], None], expected: str
) -> None:
    files = organisation()
    spoil(files)
    directory = write(tmp_path, files)

    problems = check_config(directory)
    assert any(expected in problem for problem in problems), problems
    file = expected.split(":")[0]
    assert all(str(tmp_path) in problem for problem in problems), problems
    assert any(problem.startswith(str(tmp_path)) and file in problem for problem in problems)

    with pytest.raises(ConfigError) as caught:
        load_catalog(directory)
    assert expected in str(caught.value)


def test_a_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    files = organisation()
    _text("services.yaml", "  letter: P\n", "  letter: [P\n")(files)
    bad_line = files["services.yaml"].splitlines().index("  letter: [P") + 1
    problems = check_config(write(tmp_path, files))
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path / 'services.yaml'}: line ")
    assert "YAML syntax error" in problems[0]
    reported = int(re.search(r"line (\d+)", problems[0]).group(1))  # type: ignore[union-attr]
    assert bad_line <= reported <= bad_line + 1


def test_the_check_reports_every_problem_not_only_the_first(tmp_path: Path) -> None:
    files = organisation()
    _set("services.yaml/services/0/letter", "aa")(files)
    _set("services.yaml/services/1/agency", "nowhere")(files)
    _set("branches/hall.yaml/timezone", "Mars/Olympus")(files)
    problems = check_config(write(tmp_path, files))
    assert len(problems) == 3, problems
    assert [p.split(": ")[1] for p in problems] == [
        "services[0].letter",
        "services[1].agency",
        "timezone",
    ]


def test_a_missing_file_or_directory_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    files = organisation()
    del files["agencies.yaml"]
    problems = check_config(write(tmp_path, files))
    assert f"{tmp_path / 'agencies.yaml'}: missing" in problems
    no_branches = organisation()
    del no_branches["branches/hall.yaml"]
    assert check_config(write(tmp_path / "empty", no_branches)) == [
        f"{tmp_path / 'empty'}: no branches: add branches/*.yaml or community_centres.csv"
    ]
    assert check_config(tmp_path / "nowhere") == [
        f"{tmp_path / 'nowhere'}: not a configuration directory"
    ]


def test_a_bad_row_of_the_centre_list_names_its_line(tmp_path: Path) -> None:
    files = organisation()
    files["community_centres.csv"] = (
        "number,village,municipality,name_ka\n"
        "1,Shashiani,Gurjaani,საზოგადოებრივი ცენტრი შაშიანში\n"
        "2,Gomi,Khashuri,\n"
    )
    problems = check_config(write(tmp_path, files))
    assert problems == [
        f"{tmp_path / 'community_centres.csv'}: line 3: name.ka: "
        "String should have at least 1 character (got '')"
    ]


def test_a_name_not_written_in_a_language_is_given_in_english() -> None:
    from queue_server.catalog.models import LocalizedText

    name = LocalizedText(ka="პასპორტი", en="Passport", ru="Паспорт")
    assert [name.get(language) for language in ("ka", "en", "ru")] == [
        "პასპორტი",
        "Passport",
        "Паспорт",
    ]
    assert name.get("az") == "Passport"  # not written in Azerbaijani
    assert name.get("de") == "Passport"  # not a language of the halls
