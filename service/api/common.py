"""Small helpers the routers share: the runtime, versions from If-Match, times from query strings."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import Request

from service.errors import Invalid


def runtime_of(request: Request):
    return request.app.state.runtime


def expected_version(request: Request, body_version: int | None = None) -> int | None:
    """The version the caller last saw: `expected_version` in the body, or the If-Match header ("3", W/"3", 3)."""
    header = request.headers.get("if-match")
    from_header = None
    if header and header.strip() != "*":
        raw = header.strip().removeprefix("W/").strip().strip('"')
        try:
            from_header = int(raw)
        except ValueError:
            raise Invalid(f"If-Match must be a draft or entry version such as \"3\"; got {header!r}") from None
    if body_version is not None and from_header is not None and body_version != from_header:
        raise Invalid(f"If-Match ({from_header}) and expected_version ({body_version}) disagree")
    return body_version if body_version is not None else from_header


def parse_time(value: str | None, name: str, timezone: str) -> datetime | None:
    """An ISO 8601 time from a query string; without an offset it is read in the policy's time zone."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    # A '+' in a query string arrives as a space: 2026-12-05T10:00:00 08:00.
    if " " in text and "T" in text:
        head, _, tail = text.rpartition(" ")
        if tail[:2].isdigit():
            text = f"{head}+{tail}"
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{name} must be an ISO 8601 time such as 2026-12-05T18:00:00+08:00; got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment
