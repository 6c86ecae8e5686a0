"""Similar questions (相似问) from real traffic.

When an agent sends a draft built on an FAQ entry, they may propose the customer's
masked message (or their own rewording of it) as a similar question of that entry.
Editors list the proposals and accept one (a new FAQ version with the question
appended, live in retrieval at once) or dismiss it.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit.service import record as audit
from service.auth.identity import Actor, actor_fields
from service.db.models import Draft, SimilarQuestionProposal, utcnow
from service.errors import Conflict, Invalid, NotFound
from service.knowledge_admin import service as knowledge
from service.knowledge_admin.service import FAQ, MAX_SIMILAR_QUESTION_CHARS

OPEN = "open"
ACCEPTED = "accepted"
DISMISSED = "dismissed"


def faq_match(draft: Draft, threshold: float) -> str | None:
    """The FAQ entry the draft was built on: its best FAQ hit, when that scored at or above the threshold."""
    hits = [h for h in draft.knowledge_hits or [] if h.get("collection") == "faq"]
    if not hits:
        return None
    best = max(hits, key=lambda h: h.get("score", 0.0))
    return best["id"] if best.get("score", 0.0) >= threshold else None


def _clean(question: str | None) -> str:
    return " ".join((question or "").split())


def propose_from_draft(runtime, session: Session, draft: Draft, actor: Actor,
                       question: str | None = None) -> SimilarQuestionProposal | None:
    """Add an open proposal for the draft's FAQ entry (the caller commits). None when the entry
    already has that question or an open proposal with it."""
    faq_id = faq_match(draft, runtime.pipeline.retriever.no_answer_threshold)
    if faq_id is None:
        raise Invalid("this draft was not built on an FAQ entry, so there is no entry to propose a similar "
                      "question for")
    text = _clean(question if question is not None else draft.message.masked_text)
    if not text:
        raise Invalid("the proposed similar question is empty")
    if len(text) > MAX_SIMILAR_QUESTION_CHARS:
        raise Invalid(f"the proposed similar question has {len(text)} characters; the limit is "
                      f"{MAX_SIMILAR_QUESTION_CHARS}: send a shorter wording in similar_question")
    leaks = knowledge.personal_data_in(text, runtime.policy, runtime.pipeline.masker)
    if leaks:
        raise Invalid("the proposed similar question holds personal data: " + "、".join(leaks))
    entry = knowledge.live(session, FAQ, faq_id)
    if text == entry.data.get("question") or text in (entry.data.get("similar_questions") or []):
        return None
    duplicate = session.scalar(select(SimilarQuestionProposal).where(
        SimilarQuestionProposal.faq_id == faq_id, SimilarQuestionProposal.question == text,
        SimilarQuestionProposal.status == OPEN))
    if duplicate is not None:
        return None
    row = SimilarQuestionProposal(faq_id=faq_id, question=text, draft_id=draft.id,
                                  proposed_by=actor_fields(actor)[0], status=OPEN)
    session.add(row)
    session.flush()
    audit(session, actor, "knowledge.proposal.create", "proposal", str(row.id), after=proposal_dict(row))
    return row


def list_proposals(session: Session, status: str | None = OPEN, faq_id: str | None = None,
                   limit: int = 100, offset: int = 0) -> list[SimilarQuestionProposal]:
    query = select(SimilarQuestionProposal)
    if status:
        query = query.where(SimilarQuestionProposal.status == status)
    if faq_id:
        query = query.where(SimilarQuestionProposal.faq_id == faq_id)
    return list(session.scalars(query.order_by(SimilarQuestionProposal.id).limit(limit).offset(offset)).all())


def _open(session: Session, proposal_id: int) -> SimilarQuestionProposal:
    row = session.get(SimilarQuestionProposal, proposal_id)
    if row is None:
        raise NotFound(f"no similar-question proposal with id {proposal_id}")
    if row.status != OPEN:
        raise Conflict(f"proposal {proposal_id} was {row.status} already by {row.decided_by}", state=row.status)
    return row


def accept(runtime, session: Session, proposal_id: int, actor: Actor, question: str | None = None):
    """Append the question (or the editor's rewording) to the FAQ entry's similar questions: a new version."""
    row = _open(session, proposal_id)
    text = _clean(question) if question is not None else row.question
    if not text:
        raise Invalid("the similar question is empty")
    current = knowledge.live(session, FAQ, row.faq_id)
    data = dict(current.data)
    similar = list(data.get("similar_questions") or [])
    if text not in similar and text != data.get("question"):
        similar.append(text)
    data["similar_questions"] = similar
    before = proposal_dict(row)
    row.status = ACCEPTED
    row.decided_by = actor_fields(actor)[0]
    row.decided_at = utcnow()
    row.question = text
    audit(session, actor, "knowledge.proposal.accept", "proposal", str(row.id), before=before,
          after=proposal_dict(row))
    # The FAQ change commits the proposal's decision with it (one transaction).
    version, changed = knowledge.update(runtime, session, FAQ, row.faq_id, data, actor,
                                        details={"proposal_id": row.id})
    if not changed:
        session.commit()
    return row, version


def dismiss(session: Session, proposal_id: int, actor: Actor, reason: str | None = None) -> SimilarQuestionProposal:
    row = _open(session, proposal_id)
    before = proposal_dict(row)
    row.status = DISMISSED
    row.decided_by = actor_fields(actor)[0]
    row.decided_at = utcnow()
    row.reason = (reason or "").strip() or None
    audit(session, actor, "knowledge.proposal.dismiss", "proposal", str(row.id), before=before,
          after=proposal_dict(row))
    session.commit()
    return row


def proposal_dict(row: SimilarQuestionProposal) -> dict[str, Any]:
    return {"id": row.id, "faq_id": row.faq_id, "question": row.question, "draft_id": row.draft_id,
            "proposed_by": row.proposed_by, "status": row.status,
            "created_at": row.created_at.isoformat() if row.created_at else None,
            "decided_by": row.decided_by, "decided_at": row.decided_at.isoformat() if row.decided_at else None,
            "reason": row.reason}
