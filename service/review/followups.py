"""Follow-up tasks from the SLA plan (callback, survey, daily update), created when a reply is sent."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit.service import record as audit
from service.auth.identity import Actor, actor_fields
from service.db.models import Draft, Followup, utcnow
from service.errors import Conflict, NotFound

OPEN = "open"
DONE = "done"
DAILY = "daily_until_resolved"


def create_for_sent_draft(session: Session, draft: Draft, sla_engine, sent_at: datetime) -> list[Followup]:
    """One row per follow-up of the plan, counted from the actual send time."""
    message = draft.message
    plan = sla_engine.plan(draft.priority, draft.category, message.channel, message.received_at, replied_at=sent_at)
    rows = [Followup(draft_id=draft.id, kind=due.id, action=due.action, due_at=due.due, repeat=due.repeat,
                     estimated=due.estimated, status=OPEN)
            for due in plan.followups if due.due is not None]
    session.add_all(rows)
    return rows


def list_followups(session: Session, *, due_before: datetime | None = None, status: str | None = OPEN,
                   draft_id: str | None = None, limit: int = 100, offset: int = 0) -> list[Followup]:
    """Soonest due first."""
    query = select(Followup)
    if due_before is not None:
        query = query.where(Followup.due_at < due_before)
    if status:
        query = query.where(Followup.status == status)
    if draft_id:
        query = query.where(Followup.draft_id == draft_id)
    return list(session.scalars(query.order_by(Followup.due_at, Followup.id).limit(limit).offset(offset)).all())


def mark_done(session: Session, followup_id: int, actor: Actor, note: str | None = None,
              resolved: bool = False, now: datetime | None = None) -> tuple[Followup, Followup | None]:
    """Close a follow-up; a daily update that is not resolved yet gets its next occurrence. Commits."""
    row = session.get(Followup, followup_id)
    if row is None:
        raise NotFound(f"no follow-up with id {followup_id}")
    if row.status != OPEN:
        raise Conflict(f"follow-up {followup_id} is {row.status} already (by {row.done_by})", state=row.status)
    now = now or utcnow()
    before = followup_dict(row)
    row.status = DONE
    row.done_at = now
    row.done_by = actor_fields(actor)[0]
    row.note = note
    following = None
    if row.repeat == DAILY and not resolved:
        due = row.due_at + timedelta(days=1)
        while due <= now:
            due += timedelta(days=1)
        following = Followup(draft_id=row.draft_id, kind=row.kind, action=row.action, due_at=due, repeat=row.repeat,
                             estimated=False, status=OPEN)
        session.add(following)
    session.flush()
    audit(session, actor, "followup.done", "followup", str(row.id), before=before, after=followup_dict(row),
          details={"resolved": resolved, "next_followup_id": following.id if following else None})
    session.commit()
    return row, following


def followup_dict(row: Followup) -> dict[str, Any]:
    return {"id": row.id, "draft_id": row.draft_id, "kind": row.kind, "action": row.action,
            "due_at": row.due_at.isoformat() if row.due_at else None, "repeat": row.repeat,
            "estimated": row.estimated, "status": row.status,
            "done_at": row.done_at.isoformat() if row.done_at else None, "done_by": row.done_by, "note": row.note}
