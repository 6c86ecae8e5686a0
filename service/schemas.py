"""Request and response shapes of the API and the CLI's --json output."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.policy import CHANNELS

MAX_TEXT_CHARS = 5000  # documented in the README; policy.limits.message_max_chars may lower it


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=64)
    id: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=32)
    tier: Literal["regular", "vip"] = "regular"


class DraftRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(description=f"one of: {', '.join(CHANNELS)}")
    text: str = Field(description=f"the customer's message, 1–{MAX_TEXT_CHARS} characters")
    customer: Customer | None = None
    order_id: str | None = Field(default=None, max_length=64)
    client_message_id: str | None = Field(default=None, max_length=128,
                                          description="the same id twice returns the same draft")
    conversation_id: str | None = Field(default=None, max_length=128)

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"unknown channel {value!r}; use one of: {', '.join(CHANNELS)}")
        return value

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty or whitespace only")
        if len(value) > MAX_TEXT_CHARS:
            raise ValueError(f"text is {len(value)} characters; the limit is {MAX_TEXT_CHARS}")
        return value


class CheckOut(BaseModel):
    name: str
    passed: bool
    reason: str
    details: dict[str, Any] = {}


class Decision(BaseModel):
    value: str
    source: str
    confidence: float


class KnowledgeHit(BaseModel):
    id: str
    collection: str
    score: float
    title: str
    category: str


class DraftRecord(BaseModel):
    id: str
    message_id: str
    client_message_id: str | None
    channel: str
    masked_message: str
    customer_tier: str
    category: Decision
    priority: Decision
    template_id: str | None
    drafter: str
    knowledge_hits: list[KnowledgeHit]
    draft: str
    subject: str | None
    sms_text: str | None
    sla: dict[str, Any]
    checks: list[CheckOut]
    flagged: bool
    flags: list[str]
    reasons: list[str]
    reviewer: str | None
    status: str  # ready | flagged | approved | edited | rejected | sent | discarded
    llm_usage: dict[str, Any] | None
    latency_ms: float
    created_at: datetime
    version: int = Field(1, description="optimistic-lock version: send it back as If-Match or expected_version")
    stale: bool = Field(False, description="a newer customer message arrived in the conversation")
    approvals: list[dict[str, Any]] = Field(default_factory=list, description="reviewers' approvals of the current text")


class DraftPage(BaseModel):
    items: list[DraftRecord]
    total: int
    limit: int
    offset: int
