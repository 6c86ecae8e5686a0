"""The draft state machine, as a table.

    ready ───────────────────────────────┐
      │                                  ├─ send ──→ sent
    flagged ─ approve ─→ approved ───────┤
      │  ↺ (first of two approvals,      │
      │     or an edit that fails a check)
      ├──── edit ──────→ edited ─────────┘
      └──── reject ────→ rejected

    discard: ready | flagged | approved | edited | rejected ─→ discarded

The pipeline creates drafts as `ready` (clean) or `flagged` (to review).
Anything not in the table is refused with 409 and the current state.
"""
from __future__ import annotations

from service.errors import Conflict

READY = "ready"
FLAGGED = "flagged"
APPROVED = "approved"
EDITED = "edited"
REJECTED = "rejected"
SENT = "sent"
DISCARDED = "discarded"

STATES: tuple[str, ...] = (READY, FLAGGED, APPROVED, EDITED, REJECTED, SENT, DISCARDED)

# action -> {from state: the states it may lead to}
TRANSITIONS: dict[str, dict[str, frozenset[str]]] = {
    "approve": {FLAGGED: frozenset({FLAGGED, APPROVED})},  # stays flagged until the second approval
    "edit": {FLAGGED: frozenset({FLAGGED, EDITED})},  # stays flagged when the new text fails a check
    "reject": {FLAGGED: frozenset({REJECTED})},
    "send": {READY: frozenset({SENT}), APPROVED: frozenset({SENT}), EDITED: frozenset({SENT})},
    "discard": {state: frozenset({DISCARDED}) for state in (READY, FLAGGED, APPROVED, EDITED, REJECTED)},
}

_WHY = {
    (FLAGGED, "send"): "a flagged draft needs a reviewer's approval before it is sent",
    (READY, "approve"): "a ready draft needs no review: an agent can send it",
    (READY, "edit"): "a ready draft is not under review: send it with the edited text instead",
    (READY, "reject"): "a ready draft is not under review: discard it instead",
    (SENT, "send"): "the draft was sent already",
}


def allowed_from(action: str) -> tuple[str, ...]:
    return tuple(TRANSITIONS[action])


def check(state: str, action: str) -> None:
    """Raise Conflict (409, with the current state) unless `action` may start from `state`."""
    if action not in TRANSITIONS:
        raise ValueError(f"unknown action {action!r}")
    if state in TRANSITIONS[action]:
        return
    why = _WHY.get((state, action)) or f"{action} is allowed only from {' or '.join(allowed_from(action))}"
    raise Conflict(f"cannot {action} a draft that is {state}: {why}", state=state)


def move(state: str, action: str, to: str) -> str:
    """The new state, after checking the table allows `state --action--> to`."""
    check(state, action)
    if to not in TRANSITIONS[action][state]:
        raise ValueError(f"the state table has no {state} --{action}--> {to}")
    return to
