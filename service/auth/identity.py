"""Who is acting: a user from the database, the anonymous quick-start role, or a command-line operator."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CurrentUser:
    """Who is making a request. `id` is None for the anonymous quick-start role and the CLI."""

    id: int | None
    name: str
    role: str | None


Actor = CurrentUser | str  # a plain string is an operator outside the API, e.g. "cli"


def actor_fields(actor: Actor) -> tuple[str, str | None]:
    """(name, role) to record in the audit trail."""
    if isinstance(actor, CurrentUser):
        return actor.name, actor.role
    return str(actor), None
