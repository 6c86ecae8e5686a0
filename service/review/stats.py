"""How agents used the drafts: outcomes, edit size, and acceptance / edit rates.

acceptance rate = drafts sent (as drafted or after edits) / drafts decided (sent, discarded or rejected)
edit rate       = drafts sent after edits / drafts sent
mean edit ratio = mean over edited sends of (characters changed / length of the drafter's text)
"""
from __future__ import annotations

import difflib
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from service.db.models import Draft, DraftOutcome

SENT_AS_DRAFTED = "sent_as_drafted"
SENT_EDITED = "sent_edited"
DISCARDED = "discarded"
REJECTED = "rejected"  # a reviewer rejected it and the agent recorded nothing after
OUTCOMES = (SENT_AS_DRAFTED, SENT_EDITED, DISCARDED)
GROUPS = ("template", "category", "drafter")


def edit_size(before: str, after: str) -> int:
    """Characters inserted, deleted or replaced to turn `before` into `after` (a replacement counts its longer side)."""
    if before == after:
        return 0
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal")


def edit_ratio(before: str, after: str) -> float:
    return round(edit_size(before, after) / max(len(before), 1), 4)


def _empty() -> dict[str, Any]:
    return {"decided": 0, SENT_AS_DRAFTED: 0, SENT_EDITED: 0, DISCARDED: 0, REJECTED: 0, "_edit_ratio_sum": 0.0}


def _finish(counts: dict[str, Any]) -> dict[str, Any]:
    sent = counts[SENT_AS_DRAFTED] + counts[SENT_EDITED]
    ratio_sum = counts.pop("_edit_ratio_sum")
    counts["sent"] = sent
    counts["acceptance_rate"] = round(sent / counts["decided"], 4) if counts["decided"] else None
    counts["edit_rate"] = round(counts[SENT_EDITED] / sent, 4) if sent else None
    counts["mean_edit_ratio"] = round(ratio_sum / counts[SENT_EDITED], 4) if counts[SENT_EDITED] else None
    return counts


def draft_stats(session: Session, since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
    """Overall figures and the same per template, per category and per drafter (offline / llm).

    `since` / `until` select drafts by the time they were created.
    """
    query = (
        select(Draft.template_id, Draft.category, Draft.drafter, DraftOutcome.outcome,
               func.count().label("n"), func.coalesce(func.sum(DraftOutcome.edit_ratio), 0.0).label("ratio_sum"))
        .select_from(Draft).outerjoin(DraftOutcome, DraftOutcome.draft_id == Draft.id)
        .where(or_(DraftOutcome.id.is_not(None), Draft.status == REJECTED))
        .group_by(Draft.template_id, Draft.category, Draft.drafter, DraftOutcome.outcome)
    )
    if since is not None:
        query = query.where(Draft.created_at >= since)
    if until is not None:
        query = query.where(Draft.created_at < until)
    overall = _empty()
    grouped: dict[str, dict[str, dict[str, Any]]] = {name: defaultdict(_empty) for name in GROUPS}
    for template_id, category, drafter, kind, n, ratio_sum in session.execute(query).all():
        kind = kind or REJECTED  # no outcome row: selected because a reviewer rejected it
        keys = {"template": template_id or "(none)", "category": category, "drafter": drafter}
        for counts in [overall, *(grouped[name][keys[name]] for name in GROUPS)]:
            counts["decided"] += n
            counts[kind] += n
            if kind == SENT_EDITED:
                counts["_edit_ratio_sum"] += float(ratio_sum or 0.0)
    return {
        "overall": _finish(overall),
        **{f"by_{name}": [{"key": key, **_finish(counts)} for key, counts in sorted(grouped[name].items())]
           for name in GROUPS},
    }
