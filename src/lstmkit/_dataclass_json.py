"""Reading a config dataclass back from the JSON object its ``asdict`` wrote."""

from __future__ import annotations

from dataclasses import fields
from typing import TypeVar

T = TypeVar("T")


def dataclass_from_json(cls: type[T], data: object, what: str) -> T:
    """``cls(**data)``, after checking that ``data`` is a JSON object with only ``cls``'s
    fields; ``what`` names the config in the ValueError ("model config")."""
    if not isinstance(data, dict):
        raise ValueError(f"the {what} must be a JSON object, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    extra = sorted(set(data) - known)
    if extra:
        raise ValueError(f"unknown {what} keys {extra}; expected some of {sorted(known)}")
    return cls(**data)
