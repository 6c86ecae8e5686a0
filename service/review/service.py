"""Review actions on drafts: approve, edit, reject (reviewers); send, discard (agents); raw read.

Every action checks the state table (service/review/states.py), the caller's
expected version, and commits under the Draft.version optimistic lock: when two
people act on one draft at once, one wins and the other gets 409 — nothing of
the loser's request is kept, nothing of the winner's is lost. Each action writes
a review_actions row and an audit event in the same transaction.

Approvals (SOP 审核机制, thresholds in policy.yaml `compensation`):
- a flagged draft needs one approval by a supervisor (or an admin);
- compensation above the supervisor's limit needs a second approval, by an admin,
  from a different person; the draft stays flagged ("awaiting second review") until then;
- compensation above the manager's limit, or a failed content check (personal data,
  placeholders, promised time, jargon, tone, language, channel format), cannot be
  approved: a reviewer edits the text, and the edit is checked again.
An edit that passes every content check counts as its author's approval.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from service.audit.service import record as audit
from service.auth.identity import CurrentUser
from service.auth.roles import ADMIN, SUPERVISOR
from service.db.models import Draft, DraftCheck, DraftOutcome, Message, ReviewAction, utcnow
from service.errors import Conflict, Forbidden, Invalid, NotFound
from service.guard import CheckResult, DraftContext
from service.guard.evaluate import guard_checks, personal_data_originals
from service.guard.routing import RouteDecision, route
from service.review import states
from service.review.followups import create_for_sent_draft
from service.review.stats import DISCARDED, SENT_AS_DRAFTED, SENT_EDITED, edit_ratio, edit_size

log = logging.getLogger("draftdesk.review")

COMMITMENTS = "commitments"
AWAITING_FLAG = "awaiting_second_review"
_AWAITING_REASON = {
    ADMIN: "已有一位审核人批准，等待经理（admin）二次审核（awaiting second review）。",
    SUPERVISOR: "已有一位审核人批准，等待另一位主管或经理二次审核（awaiting second review）。",
}


# --- reading ------------------------------------------------------------------

def load_draft(session: Session, draft_id: str) -> Draft:
    draft = session.get(Draft, draft_id)
    if draft is None:
        raise NotFound(f"no draft with id {draft_id}")
    return draft


def check_version(draft: Draft, expected: int | None) -> None:
    if expected is not None and expected != draft.version:
        raise Conflict(f"draft {draft.id} is at version {draft.version} ({draft.status}), not {expected}: "
                       "someone changed it after you loaded it; reload it and try again",
                       state=draft.status, version=draft.version)


def approvals_of(draft: Draft) -> list[dict[str, Any]]:
    return list(draft.approvals or [])


def requirement(draft: Draft) -> tuple[str, ...]:
    """The approvals a flagged draft needs: one reviewer, or a reviewer and then an admin."""
    return (SUPERVISOR, ADMIN) if draft.reviewer == ADMIN else (SUPERVISOR,)


def awaiting(needed: tuple[str, ...], approvals: list[dict[str, Any]]) -> str | None:
    """Who must still approve: None when satisfied; 'admin' when only an admin can give the missing
    approval; else 'supervisor' (any reviewer who has not approved yet: a supervisor or an admin)."""
    people = {a["user"]: a["role"] for a in approvals}
    has_admin = ADMIN in people.values()
    if len(people) >= len(needed) and (ADMIN not in needed or has_admin):
        return None
    if people and ADMIN in needed and not has_admin:
        return ADMIN
    return SUPERVISOR


def blocking_problems(draft: Draft, policy) -> list[str]:
    """Reasons the current text cannot be approved as it is (an edit must fix them)."""
    problems = []
    for check in draft.checks:
        if check.passed:
            continue
        if check.name == COMMITMENTS:
            largest = (check.details or {}).get("largest_amount")
            if largest is not None and largest > policy.compensation.manager_limit:
                problems.append(check.reason)
            continue  # within the managers' limits: that is what the approval is for
        problems.append(check.reason)
    return problems


def snapshot(draft: Draft) -> dict[str, Any]:
    return {"status": draft.status, "version": draft.version, "text": draft.text, "subject": draft.subject,
            "sms_text": draft.sms_text, "flags": list(draft.flags or []), "reviewer": draft.reviewer,
            "approvals": approvals_of(draft), "stale": bool(draft.stale)}


def _due(draft: Draft) -> datetime | None:
    sla = draft.sla or {}
    times = []
    for key in ("acknowledge_due", "first_response_due"):
        if sla.get(key):
            try:
                times.append(datetime.fromisoformat(sla[key]))
            except ValueError:
                continue
    return min(times) if times else None


@dataclass
class QueueItem:
    draft: Draft
    due_at: datetime | None
    awaiting: str | None
    approvals: list[dict[str, Any]] = field(default_factory=list)


def review_queue(session: Session, awaiting_role: str | None = None) -> list[QueueItem]:
    """Flagged drafts, most urgent SLA first (the earlier of the acknowledge and first-response due times)."""
    rows = session.scalars(select(Draft).where(Draft.status == states.FLAGGED)).all()
    items = []
    for draft in rows:
        who = awaiting(requirement(draft), approvals_of(draft))
        if awaiting_role and who != awaiting_role:
            continue
        items.append(QueueItem(draft=draft, due_at=_due(draft), awaiting=who, approvals=approvals_of(draft)))
    rank = {"urgent": 0, "high": 1, "medium": 2, "low": 3}
    far = datetime.max.replace(tzinfo=ZoneInfo("UTC"))
    items.sort(key=lambda i: (i.due_at or far, rank.get(i.draft.priority, 9), i.draft.created_at, i.draft.id))
    return items


# --- re-checking a text ---------------------------------------------------------

def recheck(runtime, draft: Draft, text: str, subject: str | None, sms_text: str | None,
            now: datetime) -> tuple[list[CheckResult], RouteDecision]:
    """Every guard check on a new text of `draft`, promises read from `now`; then routing."""
    policy, sla, masker = runtime.policy, runtime.pipeline.sla, runtime.pipeline.masker
    message = draft.message
    tz = ZoneInfo(policy.timezone)
    received = message.received_at.astimezone(tz)
    plan = sla.plan(draft.priority, draft.category, message.channel, received)
    customer = dict(message.raw_customer or {})
    context = DraftContext(
        draft_text=text, channel=message.channel, category=draft.category, priority=draft.priority,
        confidence=draft.category_confidence, message_text=message.raw_text, masked_text=message.masked_text or "",
        pii_originals=personal_data_originals(masker, message.raw_text, message.raw_customer),
        customer=customer, subject=subject, sms_text=sms_text, template_id=draft.template_id, sla_plan=plan,
        now=now.astimezone(tz), role="agent",
    )
    checks = guard_checks(context, policy, sla)
    return checks, route(checks, draft.priority, draft.category_confidence, policy)


def _store_checks(draft: Draft, checks: list[CheckResult], decision: RouteDecision) -> None:
    draft.checks = [DraftCheck(position=i, name=c.name, passed=c.passed, reason=c.reason, details=c.details)
                    for i, c in enumerate(checks)]
    draft.flags = list(decision.flags)
    draft.reasons = list(decision.reasons)
    draft.reviewer = decision.reviewer


def _set_awaiting(draft: Draft, who: str | None) -> None:
    flags = [f for f in (draft.flags or []) if f != AWAITING_FLAG]
    reasons = [r for r in (draft.reasons or []) if r not in _AWAITING_REASON.values()]
    if who is not None:
        flags.append(AWAITING_FLAG)
        reasons.append(_AWAITING_REASON[who])
    draft.flags, draft.reasons = flags, reasons


def _approval(user: CurrentUser, action: str, now: datetime) -> dict[str, Any]:
    return {"user": user.name, "role": user.role, "action": action, "at": now.isoformat()}


# --- committing ---------------------------------------------------------------------

@contextmanager
def _locked(session: Session, draft_id: str) -> Iterator[None]:
    """Turn a lost optimistic-lock race into 409 with the draft's state as it now is."""
    try:
        yield
    except StaleDataError:
        session.rollback()
        current = session.get(Draft, draft_id, populate_existing=True)
        state = current.status if current is not None else "unknown"
        version = current.version if current is not None else None
        raise Conflict(f"draft {draft_id} was changed by someone else at the same time; it is now {state} "
                       f"(version {version}): reload it and decide again", state=state, version=version) from None


def _log_action(session: Session, draft: Draft, action: str, user: CurrentUser, before: dict, after: dict,
                reason: str | None = None, details: dict | None = None) -> None:
    session.add(ReviewAction(draft_id=draft.id, action=action, actor=user.name, reason=reason, before=before,
                             after=after))
    audit(session, user, f"review.{action}", "draft", draft.id, before=before, after=after,
          details={"reason": reason, **(details or {})} if reason or details else None)


# --- reviewer actions ---------------------------------------------------------------

def approve(runtime, session: Session, draft_id: str, user: CurrentUser, expected_version: int | None = None,
            now: datetime | None = None) -> Draft:
    now = now or utcnow()
    with _locked(session, draft_id):
        draft = load_draft(session, draft_id)
        check_version(draft, expected_version)
        states.check(draft.status, "approve")
        problems = blocking_problems(draft, runtime.policy)
        if problems:
            raise Conflict("this text cannot be approved: " + " ".join(problems) + " Edit the draft first.",
                           state=draft.status, reasons=problems)
        approvals = approvals_of(draft)
        if any(a["user"] == user.name for a in approvals):
            raise Conflict(f"{user.name} approved this text already; the second approval must come from "
                           "someone else", state=draft.status)
        needed = requirement(draft)
        if awaiting(needed, approvals) == ADMIN and user.role != ADMIN:
            raise Forbidden("this draft awaits an admin's approval: its compensation is above the supervisor's "
                            f"limit of {runtime.policy.compensation.supervisor_limit:g}"
                            f"{runtime.policy.compensation.currency}")
        before = snapshot(draft)
        approvals.append(_approval(user, "approve", now))
        still = awaiting(needed, approvals)
        draft.approvals = approvals
        draft.status = states.move(draft.status, "approve", states.FLAGGED if still else states.APPROVED)
        _set_awaiting(draft, still)
        session.flush()
        _log_action(session, draft, "approve", user, before, snapshot(draft),
                    details={"needed": list(needed), "awaiting": still})
        session.commit()
    return draft


def edit(runtime, session: Session, draft_id: str, user: CurrentUser, text: str, subject: str | None = None,
         sms_text: str | None = None, expected_version: int | None = None, now: datetime | None = None) -> Draft:
    now = now or utcnow()
    text = (text or "").strip()
    if not text:
        raise Invalid("the edited text is empty")
    with _locked(session, draft_id):
        draft = load_draft(session, draft_id)
        check_version(draft, expected_version)
        states.check(draft.status, "edit")
        subject = draft.subject if subject is None else subject
        sms_text = draft.sms_text if sms_text is None else sms_text
        if (text, subject, sms_text) == (draft.text, draft.subject, draft.sms_text):
            raise Invalid("the edit changes nothing: approve the draft instead")
        before = snapshot(draft)
        checks, decision = recheck(runtime, draft, text, subject, sms_text, now)
        if draft.original_text is None:
            draft.original_text = draft.text
        draft.text, draft.subject, draft.sms_text = text, subject, sms_text
        _store_checks(draft, checks, decision)
        problems = blocking_problems(draft, runtime.policy)
        if problems:
            # Kept so the work is not lost, but nobody can approve it until an edit passes.
            draft.approvals = []
            draft.status = states.move(draft.status, "edit", states.FLAGGED)
        else:
            approvals = [_approval(user, "edit", now)]
            still = awaiting(requirement(draft), approvals)
            draft.approvals = approvals
            draft.status = states.move(draft.status, "edit", states.FLAGGED if still else states.EDITED)
            _set_awaiting(draft, still)
        session.flush()
        _log_action(session, draft, "edit", user, before, snapshot(draft),
                    details={"failed_checks": [c.name for c in checks if not c.passed], "blocked": problems})
        session.commit()
    return draft


def reject(runtime, session: Session, draft_id: str, user: CurrentUser, reason: str,
           expected_version: int | None = None) -> Draft:
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("a reason is required to reject a draft")
    with _locked(session, draft_id):
        draft = load_draft(session, draft_id)
        check_version(draft, expected_version)
        states.check(draft.status, "reject")
        before = snapshot(draft)
        draft.status = states.move(draft.status, "reject", states.REJECTED)
        _set_awaiting(draft, None)
        session.flush()
        _log_action(session, draft, "reject", user, before, snapshot(draft), reason=reason)
        session.commit()
    return draft


def read_raw(session: Session, draft_id: str, user: CurrentUser) -> dict[str, Any]:
    """The customer's raw message of a draft routed to review; the read is audited (committed first)."""
    draft = load_draft(session, draft_id)
    if not draft.flagged:
        raise Forbidden("the raw message is shown only for drafts routed to review; this draft was never flagged")
    message = draft.message
    audit(session, user, "draft.raw_read", "draft", draft.id,
          details={"message_id": message.id, "status": draft.status})
    session.commit()
    return {"draft_id": draft.id, "message_id": message.id, "channel": message.channel,
            "raw_text": message.raw_text, "customer": message.raw_customer, "order_id": message.order_id,
            "conversation_id": message.conversation_id, "received_at": message.received_at}


# --- agent actions ---------------------------------------------------------------------

def newer_message_exists(session: Session, message: Message) -> bool:
    if not message.conversation_id:
        return False
    count = session.scalar(select(func.count()).select_from(Message).where(
        Message.conversation_id == message.conversation_id, Message.id != message.id,
        Message.received_at > message.received_at))
    return bool(count)


@dataclass
class SendResult:
    draft: Draft
    outcome: DraftOutcome
    followups: list
    proposal: Any = None


def send(runtime, session: Session, draft_id: str, user: CurrentUser, *, text: str | None = None,
         subject: str | None = None, sms_text: str | None = None, override_stale: bool = False,
         propose_similar_question: bool = False, similar_question: str | None = None,
         expected_version: int | None = None, now: datetime | None = None) -> SendResult:
    from service.knowledge_admin import proposals  # knowledge_admin imports review's helpers

    now = now or utcnow()
    with _locked(session, draft_id):
        draft = load_draft(session, draft_id)
        check_version(draft, expected_version)
        states.check(draft.status, "send")
        message = draft.message
        stale = bool(draft.stale) or newer_message_exists(session, message)
        if stale and not override_stale:
            raise Conflict("the draft is stale: a newer customer message arrived in this conversation after it was "
                           "drafted; read it first, or send with override_stale: true", state=draft.status,
                           stale=True)
        final = draft.text if text is None else text.strip()
        subject = draft.subject if subject is None else subject
        sms_text = draft.sms_text if sms_text is None else sms_text
        if not final:
            raise Invalid("the text to send is empty")
        if (final, subject, sms_text) != (draft.text, draft.subject, draft.sms_text):
            _check_agent_edit(runtime, draft, final, subject, sms_text, now)
        drafted = draft.original_text if draft.original_text is not None else draft.text
        changed = final != drafted
        before = snapshot(draft)
        outcome = DraftOutcome(draft_id=draft.id, outcome=SENT_EDITED if changed else SENT_AS_DRAFTED,
                               sent_text=final, edit_chars=edit_size(drafted, final),
                               edit_ratio=edit_ratio(drafted, final), actor=user.name, created_at=now)
        session.add(outcome)
        draft.status = states.move(draft.status, "send", states.SENT)
        followups = create_for_sent_draft(session, draft, runtime.pipeline.sla, now)
        proposal = None
        if propose_similar_question:
            proposal = proposals.propose_from_draft(runtime, session, draft, user, similar_question)
        session.flush()
        _log_action(session, draft, "send", user, before, snapshot(draft),
                    details={"outcome": outcome.outcome, "edit_chars": outcome.edit_chars,
                             "stale_override": stale,
                             "followups": [f.id for f in followups]})
        session.commit()
    return SendResult(draft=draft, outcome=outcome, followups=followups, proposal=proposal)


def _check_agent_edit(runtime, draft: Draft, text: str, subject: str | None, sms_text: str | None,
                      now: datetime) -> None:
    """An agent's last-minute edit must pass the checks and stay within what reviewers approved."""
    checks, decision = recheck(runtime, draft, text, subject, sms_text, now)
    failed = {c.name: c for c in checks if not c.passed}
    problems = [c.reason for name, c in failed.items() if name != COMMITMENTS]
    commitments = failed.get(COMMITMENTS)
    if commitments is not None:
        largest = (commitments.details or {}).get("largest_amount")
        if largest is not None and largest > runtime.policy.compensation.manager_limit:
            problems.append(commitments.reason)
        elif awaiting((SUPERVISOR, ADMIN) if decision.reviewer == ADMIN else (SUPERVISOR,), approvals_of(draft)):
            problems.append(commitments.reason + " 这一改动超出了已获得的审批。")
    if problems:
        raise Invalid("the edited text cannot be sent: " + " ".join(problems),
                      failed_checks=[name for name in failed])


def discard(runtime, session: Session, draft_id: str, user: CurrentUser, reason: str,
            expected_version: int | None = None, now: datetime | None = None) -> Draft:
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("a reason is required to discard a draft")
    now = now or utcnow()
    with _locked(session, draft_id):
        draft = load_draft(session, draft_id)
        check_version(draft, expected_version)
        states.check(draft.status, "discard")
        before = snapshot(draft)
        session.add(DraftOutcome(draft_id=draft.id, outcome=DISCARDED, reason=reason, actor=user.name,
                                 created_at=now))
        draft.status = states.move(draft.status, "discard", states.DISCARDED)
        _set_awaiting(draft, None)
        session.flush()
        _log_action(session, draft, "discard", user, before, snapshot(draft), reason=reason)
        session.commit()
    return draft
