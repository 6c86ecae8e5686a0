"""Review queue, review actions, agents' send/discard, raw read, follow-ups and draft statistics."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from service.api.common import expected_version, parse_time, runtime_of
from service.auth.identity import CurrentUser
from service.auth.roles import ADMIN, AGENT, DRAFT_ROLES, EDITOR, REVIEW_ROLES, SUPERVISOR
from service.auth.views import require_roles
from service.db.models import utcnow
from service.errors import Invalid
from service.knowledge_admin.proposals import proposal_dict
from service.records import draft_record
from service.review import followups as followup_service
from service.review import service as review
from service.review.stats import draft_stats
from service.schemas import MAX_TEXT_CHARS, DraftRecord

router = APIRouter(tags=["review"])

reviewer = require_roles(*REVIEW_ROLES)
drafts_user = require_roles(*DRAFT_ROLES)


class Versioned(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expected_version: int | None = Field(None, description="the draft version you reviewed (or send If-Match)")


class EditIn(Versioned):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="the new reply text; checked again")
    subject: str | None = Field(None, max_length=500, description="email subject (default: keep)")
    sms_text: str | None = Field(None, max_length=500, description="SMS confirmation (default: keep)")


class ReasonIn(Versioned):
    reason: str = Field(min_length=1, max_length=2000)


class SendIn(Versioned):
    text: str | None = Field(None, max_length=MAX_TEXT_CHARS,
                             description="the text as sent, when the agent changed it (default: the draft)")
    subject: str | None = Field(None, max_length=500)
    sms_text: str | None = Field(None, max_length=500)
    override_stale: bool = Field(False, description="send although a newer customer message arrived")
    propose_similar_question: bool = Field(False, description="propose the masked message as a similar question "
                                                              "of the FAQ entry the draft was built on")
    similar_question: str | None = Field(None, max_length=200, description="a wording of the question to propose "
                                                                            "instead of the masked message")


class ReviewItem(BaseModel):
    draft: DraftRecord
    due_at: datetime | None = Field(description="the earlier of the acknowledge and first-response due times")
    overdue: bool
    awaiting: str | None = Field(description="who must approve next: supervisor (any reviewer) or admin")
    reasons: list[str]


class ReviewPage(BaseModel):
    items: list[ReviewItem]
    total: int
    limit: int
    offset: int


class OutcomeOut(BaseModel):
    outcome: str
    edit_chars: int
    edit_ratio: float
    reason: str | None
    actor: str
    created_at: datetime


class FollowupOut(BaseModel):
    id: int
    draft_id: str
    kind: str
    action: str
    due_at: str
    repeat: str | None
    estimated: bool
    status: str
    done_at: str | None
    done_by: str | None
    note: str | None


class SendOut(BaseModel):
    draft: DraftRecord
    outcome: OutcomeOut
    followups: list[FollowupOut]
    proposal: dict[str, Any] | None


class DoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=2000)
    resolved: bool = Field(False, description="for a daily update: the issue is resolved, so no next update")


class DoneOut(BaseModel):
    followup: FollowupOut
    next: FollowupOut | None


def _outcome(row) -> OutcomeOut:
    return OutcomeOut(outcome=row.outcome, edit_chars=row.edit_chars or 0, edit_ratio=row.edit_ratio or 0.0,
                      reason=row.reason, actor=row.actor, created_at=row.created_at)


# --- review queue ----------------------------------------------------------------

@router.get("/v1/review", response_model=ReviewPage, summary="Flagged drafts, most urgent SLA first (reviewers)")
def review_queue(request: Request, awaiting: str | None = Query(None, description="supervisor | admin"),
                 limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0),
                 user: CurrentUser = Depends(reviewer)) -> ReviewPage:
    if awaiting not in (None, SUPERVISOR, ADMIN):
        raise Invalid("awaiting must be supervisor or admin")
    now = utcnow()
    with runtime_of(request).sessions() as session:
        items = review.review_queue(session, awaiting)
        page = [ReviewItem(draft=draft_record(i.draft), due_at=i.due_at, overdue=bool(i.due_at and i.due_at < now),
                           awaiting=i.awaiting, reasons=list(i.draft.reasons or []))
                for i in items[offset:offset + limit]]
        return ReviewPage(items=page, total=len(items), limit=limit, offset=offset)


@router.post("/v1/drafts/{draft_id}/approve", response_model=DraftRecord, summary="Approve a flagged draft (reviewers)")
def approve(draft_id: str, request: Request, body: Versioned | None = None,
            user: CurrentUser = Depends(reviewer)) -> DraftRecord:
    version = expected_version(request, body.expected_version if body else None)
    runtime = runtime_of(request)
    with runtime.sessions() as session:
        return draft_record(review.approve(runtime, session, draft_id, user, version))


@router.post("/v1/drafts/{draft_id}/edit", response_model=DraftRecord,
             summary="Replace a flagged draft's text; checked again before it counts as approved (reviewers)")
def edit(draft_id: str, body: EditIn, request: Request, user: CurrentUser = Depends(reviewer)) -> DraftRecord:
    version = expected_version(request, body.expected_version)
    runtime = runtime_of(request)
    with runtime.sessions() as session:
        return draft_record(review.edit(runtime, session, draft_id, user, body.text, body.subject, body.sms_text,
                                        version))


@router.post("/v1/drafts/{draft_id}/reject", response_model=DraftRecord,
             summary="Reject a flagged draft, with a reason (reviewers)")
def reject(draft_id: str, body: ReasonIn, request: Request, user: CurrentUser = Depends(reviewer)) -> DraftRecord:
    version = expected_version(request, body.expected_version)
    runtime = runtime_of(request)
    with runtime.sessions() as session:
        return draft_record(review.reject(runtime, session, draft_id, user, body.reason, version))


@router.get("/v1/drafts/{draft_id}/raw", summary="The raw customer message of a draft under review (reviewers; audited)")
def raw_message(draft_id: str, request: Request, user: CurrentUser = Depends(reviewer)) -> dict[str, Any]:
    with runtime_of(request).sessions() as session:
        return review.read_raw(session, draft_id, user)


# --- agents: outcomes ------------------------------------------------------------

@router.post("/v1/drafts/{draft_id}/send", response_model=SendOut,
             summary="Record that the draft was sent (as drafted or edited); creates the follow-ups")
def send(draft_id: str, request: Request, body: SendIn | None = None,
         user: CurrentUser = Depends(drafts_user)) -> SendOut:
    body = body or SendIn()
    version = expected_version(request, body.expected_version)
    runtime = runtime_of(request)
    with runtime.sessions() as session:
        result = review.send(runtime, session, draft_id, user, text=body.text, subject=body.subject,
                             sms_text=body.sms_text, override_stale=body.override_stale,
                             propose_similar_question=body.propose_similar_question,
                             similar_question=body.similar_question, expected_version=version)
        return SendOut(draft=draft_record(result.draft), outcome=_outcome(result.outcome),
                       followups=[FollowupOut(**followup_service.followup_dict(f)) for f in result.followups],
                       proposal=proposal_dict(result.proposal) if result.proposal is not None else None)


@router.post("/v1/drafts/{draft_id}/discard", response_model=DraftRecord,
             summary="Record that the draft was not used, with a reason")
def discard(draft_id: str, body: ReasonIn, request: Request, user: CurrentUser = Depends(drafts_user)) -> DraftRecord:
    version = expected_version(request, body.expected_version)
    runtime = runtime_of(request)
    with runtime.sessions() as session:
        return draft_record(review.discard(runtime, session, draft_id, user, body.reason, version))


# --- follow-ups --------------------------------------------------------------------

@router.get("/v1/followups", response_model=list[FollowupOut], summary="Follow-up tasks, soonest first")
def list_followups(request: Request,
                   due_before: str | None = Query(None, description="ISO 8601; without an offset, the policy's zone"),
                   status: str = Query("open", description="open | done | all"),
                   draft_id: str | None = None, limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0),
                   user: CurrentUser = Depends(require_roles(AGENT, SUPERVISOR))) -> list[FollowupOut]:
    runtime = runtime_of(request)
    if status not in ("open", "done", "all"):
        raise Invalid("status must be open, done or all")
    before = parse_time(due_before, "due_before", runtime.policy.timezone)
    with runtime.sessions() as session:
        rows = followup_service.list_followups(session, due_before=before, status=None if status == "all" else status,
                                               draft_id=draft_id, limit=limit, offset=offset)
        return [FollowupOut(**followup_service.followup_dict(r)) for r in rows]


@router.post("/v1/followups/{followup_id}/done", response_model=DoneOut, summary="Close a follow-up task")
def followup_done(followup_id: int, request: Request, body: DoneIn | None = None,
                  user: CurrentUser = Depends(require_roles(AGENT, SUPERVISOR))) -> DoneOut:
    body = body or DoneIn()
    with runtime_of(request).sessions() as session:
        row, following = followup_service.mark_done(session, followup_id, user, body.note, body.resolved)
        return DoneOut(followup=FollowupOut(**followup_service.followup_dict(row)),
                       next=FollowupOut(**followup_service.followup_dict(following)) if following else None)


# --- statistics ----------------------------------------------------------------------

@router.get("/v1/stats/drafts", summary="Acceptance and edit rates per template, category and drafter")
def stats(request: Request, since: str | None = None, until: str | None = None,
          user: CurrentUser = Depends(require_roles(SUPERVISOR, EDITOR, ADMIN))) -> dict[str, Any]:
    runtime = runtime_of(request)
    start = parse_time(since, "since", runtime.policy.timezone)
    end = parse_time(until, "until", runtime.policy.timezone)
    with runtime.sessions() as session:
        return draft_stats(session, start, end)
