"""Turn stored drafts into the record shape the API and the CLI return."""
from __future__ import annotations

from service.db.models import Draft
from service.schemas import CheckOut, Decision, DraftRecord, KnowledgeHit


def draft_record(draft: Draft) -> DraftRecord:
    message = draft.message
    return DraftRecord(
        id=draft.id,
        message_id=draft.message_id,
        client_message_id=message.client_message_id,
        channel=message.channel,
        masked_message=message.masked_text or "",
        customer_tier=message.customer_tier,
        category=Decision(value=draft.category, source=draft.category_source, confidence=draft.category_confidence),
        priority=Decision(value=draft.priority, source=draft.priority_source, confidence=draft.priority_confidence),
        template_id=draft.template_id,
        drafter=draft.drafter,
        knowledge_hits=[KnowledgeHit(**hit) for hit in draft.knowledge_hits or []],
        draft=draft.text,
        subject=draft.subject,
        sms_text=draft.sms_text,
        sla=draft.sla or {},
        checks=[CheckOut(name=c.name, passed=c.passed, reason=c.reason, details=c.details or {}) for c in draft.checks],
        flagged=draft.flagged,
        flags=list(draft.flags or []),
        reasons=list(draft.reasons or []),
        reviewer=draft.reviewer,
        status=draft.status,
        llm_usage=draft.llm_usage,
        latency_ms=draft.latency_ms,
        created_at=draft.created_at,
        version=draft.version or 1,
        stale=bool(draft.stale),
        approvals=list(draft.approvals or []),
    )
