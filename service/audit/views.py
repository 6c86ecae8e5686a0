"""GET /v1/audit: the audit trail, newest first (admins). There is no endpoint to change or delete it."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from service.api.common import parse_time, runtime_of
from service.audit.service import event_dict, list_events
from service.auth.identity import CurrentUser
from service.auth.roles import ADMIN
from service.auth.views import require_roles

router = APIRouter(tags=["audit"])


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_role: str | None
    action: str
    target_kind: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    details: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    total: int
    limit: int
    offset: int


@router.get("/v1/audit", response_model=AuditPage, summary="The audit trail, newest first (admins)")
def audit_trail(request: Request,
                action: str | None = Query(None, description="an action (review.approve) or a prefix (review)"),
                actor: str | None = None, target_kind: str | None = None, target_id: str | None = None,
                since: str | None = None, until: str | None = None,
                limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0),
                user: CurrentUser = Depends(require_roles(ADMIN))) -> AuditPage:
    runtime = runtime_of(request)
    start = parse_time(since, "since", runtime.policy.timezone)
    end = parse_time(until, "until", runtime.policy.timezone)
    with runtime.sessions() as session:
        rows, total = list_events(session, action=action, actor=actor, target_kind=target_kind, target_id=target_id,
                                  since=start, until=end, limit=limit, offset=offset)
        return AuditPage(items=[AuditEventOut(**event_dict(r)) for r in rows], total=total, limit=limit, offset=offset)
