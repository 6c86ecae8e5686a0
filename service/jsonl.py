"""JSON Lines reading shared by knowledge files, imports and evaluation sets."""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


class JsonlError(ValueError):
    """A malformed line; callers add where the lines came from."""

    def __init__(self, line: int, problem: str):
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


def json_objects(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; JsonlError names the first bad line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise JsonlError(number, f"not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise JsonlError(number, "each line must be a JSON object")
        yield number, row
