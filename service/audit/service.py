"""Write and read audit events.

`record` adds a row to the caller's session, so the event commits (or rolls back)
together with the change it describes. Rows are never updated or deleted: the ORM
refuses it here, and the database refuses it with triggers (migration 0002).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from service.auth.identity import Actor, actor_fields
from service.db.models import AuditEvent


class AppendOnlyError(RuntimeError):
    pass


@event.listens_for(AuditEvent, "before_update")
def _no_update(mapper, connection, target) -> None:  # noqa: ANN001
    raise AppendOnlyError("audit events are append-only: a recorded event cannot be changed")


@event.listens_for(AuditEvent, "before_delete")
def _no_delete(mapper, connection, target) -> None:  # noqa: ANN001
    raise AppendOnlyError("audit events are append-only: a recorded event cannot be deleted")


def record(session: Session, actor: Actor, action: str, target_kind: str, target_id: str, *,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
           details: dict[str, Any] | None = None) -> AuditEvent:
    """Add one event to `session` (the caller commits)."""
    name, role = actor_fields(actor)
    row = AuditEvent(actor=name, actor_role=role, action=action, target_kind=target_kind, target_id=str(target_id),
                     before=before, after=after, details=details)
    session.add(row)
    return row


def list_events(session: Session, *, action: str | None = None, actor: str | None = None,
                target_kind: str | None = None, target_id: str | None = None, since: datetime | None = None,
                until: datetime | None = None, limit: int = 100, offset: int = 0) -> tuple[list[AuditEvent], int]:
    """Newest first, with the total count of matching events."""
    query = select(AuditEvent)
    if action:
        # "review" matches review.approve, review.edit, …; "review.approve" only itself.
        query = query.where((AuditEvent.action == action) | AuditEvent.action.startswith(action + ".", autoescape=True))
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if target_kind:
        query = query.where(AuditEvent.target_kind == target_kind)
    if target_id:
        query = query.where(AuditEvent.target_id == target_id)
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at < until)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), total


def event_dict(row: AuditEvent) -> dict[str, Any]:
    return {"id": row.id, "at": row.at, "actor": row.actor, "actor_role": row.actor_role, "action": row.action,
            "target_kind": row.target_kind, "target_id": row.target_id, "before": row.before, "after": row.after,
            "details": row.details}
