"""Persistence: messages, drafts, checks, review actions, knowledge entries,
users, the audit trail, draft outcomes, follow-ups and similar-question proposals."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


class UtcDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite forgets the zone on the way back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: give a time zone")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UtcDateTime}


class Message(Base):
    """A customer message, committed at intake before any model sees it."""

    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_message_id: Mapped[str | None] = mapped_column(String(128), unique=True, index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(128), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    # Raw text and raw customer record: audit trail only, never sent to a model or a log.
    raw_text: Mapped[str] = mapped_column(Text)
    raw_customer: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    masked_text: Mapped[str | None] = mapped_column(Text)
    customer_tier: Mapped[str] = mapped_column(String(16), default="regular")
    order_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="received")  # received | drafted | failed
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    drafts: Mapped[list[Draft]] = relationship(back_populates="message", order_by="Draft.created_at")


class Draft(Base):
    __tablename__ = "drafts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # ready | flagged | approved | edited | rejected | sent
    version: Mapped[int] = mapped_column(Integer, default=1)  # optimistic locking for reviews
    category: Mapped[str] = mapped_column(String(16), index=True)
    category_source: Mapped[str] = mapped_column(String(64))
    category_confidence: Mapped[float] = mapped_column(Float)
    priority: Mapped[str] = mapped_column(String(16), index=True)
    priority_source: Mapped[str] = mapped_column(String(128))
    priority_confidence: Mapped[float] = mapped_column(Float)
    template_id: Mapped[str | None] = mapped_column(String(64))
    drafter: Mapped[str] = mapped_column(String(16))  # offline | llm
    text: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    sms_text: Mapped[str | None] = mapped_column(Text)
    knowledge_hits: Mapped[list[Any]] = mapped_column(JSON, default=list)
    sla: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    reviewer: Mapped[str | None] = mapped_column(String(16))
    llm_usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)
    # A newer customer message arrived in the conversation before this draft was sent.
    stale: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Reviewers' approvals of the current text: [{user, role, action, at}]; an edit starts a new list.
    approvals: Mapped[list[Any] | None] = mapped_column(JSON, default=list)
    # The drafter's own text, kept when a reviewer first edits (None: never edited).
    original_text: Mapped[str | None] = mapped_column(Text)

    message: Mapped[Message] = relationship(back_populates="drafts")
    checks: Mapped[list[DraftCheck]] = relationship(back_populates="draft", order_by="DraftCheck.position", cascade="all, delete-orphan")

    __mapper_args__ = {"version_id_col": version}


class DraftCheck(Base):
    __tablename__ = "draft_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    draft_id: Mapped[str] = mapped_column(ForeignKey("drafts.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(32))
    passed: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    draft: Mapped[Draft] = relationship(back_populates="checks")


class ReviewAction(Base):
    __tablename__ = "review_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    draft_id: Mapped[str] = mapped_column(ForeignKey("drafts.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class KnowledgeEntry(Base):
    """One version of one FAQ entry or template; the newest version is live."""

    __tablename__ = "knowledge_entries"
    __table_args__ = (UniqueConstraint("kind", "entry_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # faq | template
    entry_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    author: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class User(Base):
    """Someone who works in draftdesk. Only the sha256 of the bearer token is stored."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # agent | supervisor | editor | admin
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))  # shown in listings to tell tokens apart
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="system")
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class AuditEvent(Base):
    """Append-only: who did what to which thing, when, with the state before and after.

    The database refuses UPDATE and DELETE on this table (triggers in migration 0002).
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    actor_role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(48), index=True)  # e.g. review.approve, knowledge.update
    target_kind: Mapped[str] = mapped_column(String(32))  # draft | faq | template | user | followup | proposal
    target_id: Mapped[str] = mapped_column(String(128), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DraftOutcome(Base):
    """How the agent used a draft: sent as drafted, sent after edits, or discarded."""

    __tablename__ = "draft_outcomes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    draft_id: Mapped[str] = mapped_column(ForeignKey("drafts.id"), unique=True)
    outcome: Mapped[str] = mapped_column(String(16), index=True)  # sent_as_drafted | sent_edited | discarded
    sent_text: Mapped[str | None] = mapped_column(Text)
    edit_chars: Mapped[int] = mapped_column(Integer, default=0)  # characters changed from the drafter's text
    edit_ratio: Mapped[float] = mapped_column(Float, default=0.0)  # edit_chars / length of the drafter's text
    reason: Mapped[str | None] = mapped_column(Text)  # why it was discarded
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)


class Followup(Base):
    """A follow-up task from the SLA plan, created when the reply is sent."""

    __tablename__ = "followups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    draft_id: Mapped[str] = mapped_column(ForeignKey("drafts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))  # the policy's follow-up id, e.g. callback_after_reply
    action: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    repeat: Mapped[str | None] = mapped_column(String(32))  # daily_until_resolved
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)  # due counted from a due time, not an event
    status: Mapped[str] = mapped_column(String(8), default="open", index=True)  # open | done
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    done_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


class SimilarQuestionProposal(Base):
    """A masked customer question proposed as a similar question (相似问) of an FAQ entry."""

    __tablename__ = "similar_question_proposals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    faq_id: Mapped[str] = mapped_column(String(64), index=True)
    question: Mapped[str] = mapped_column(Text)  # masked
    draft_id: Mapped[str | None] = mapped_column(ForeignKey("drafts.id"))
    proposed_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="open", index=True)  # open | accepted | dismissed
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
