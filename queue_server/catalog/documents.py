"""Reading one configuration file: strict YAML, pydantic validation, and problems worded as
`<file>: <key path>: <what is wrong>` so that whoever edits the file can go straight to the line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

_INPUT_SHOWN_MAX_CHARS = 40
_ModelT = TypeVar("_ModelT", bound=BaseModel)


def read_yaml(path: Path, problems: list[str]) -> Any:
    """The parsed document, or None after recording why it could not be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(f"{shown(path)}: missing")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{shown(path)}: cannot be read: {exc}")
        return None
    try:
        document = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        place = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        problems.append(f"{shown(path)}: {place}YAML syntax error: {what}")
        return None
    except yaml.YAMLError as exc:
        problems.append(f"{shown(path)}: YAML error: {exc}")
        return None
    if document is None:
        problems.append(f"{shown(path)}: empty")
    return document


def validate(
    model: type[_ModelT], data: Any, where: str, prefix: str, problems: list[str]
) -> _ModelT | None:
    """The model, or None after recording each error as `<where>: <key path>: <message>`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            key = _key_path(prefix, error["loc"])
            problems.append(f"{where}: {key or '(top level)'}: {_describe(error)}")
        return None


def _key_path(prefix: str, loc: Iterable[int | str]) -> str:
    """('counters', 3, 'serves', 'x') → 'counters[3].serves.x', after an optional prefix."""
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "[key]":
            text += f".{part}" if text else str(part)
    return text


def _describe(error: Mapping[str, Any]) -> str:
    message = str(error["msg"])
    value = error.get("input")
    if error.get("type") != "missing" and isinstance(value, str | int | float | bool):
        text = repr(value)
        if len(text) <= _INPUT_SHOWN_MAX_CHARS:
            message += f" (got {text})"
    return message


def shown(path: Path) -> str:
    """A path as the user typed it when it lies under the working directory, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe YAML loader that refuses a key written twice in one mapping (plain YAML keeps
    the last silently, so `{id_card: 3, id_card: 1}` would hide a typo)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            repeated = key in seen
        except TypeError:
            continue  # an unhashable key fails in construct_mapping with its own message
        if repeated:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"the key {key!r} appears twice",
                key_node.start_mark,
            )
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
