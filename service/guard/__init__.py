"""Guard stage: deterministic checks every draft passes before anyone sees it."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    name: str  # personal_data | placeholders | promised_time | jargon | commitments | tone | language | channel_format
    passed: bool
    reason: str  # one plain sentence, Chinese or English, that explains the verdict
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class DraftContext:
    """Everything a check may look at. Built by the pipeline after the fill stage."""

    draft_text: str
    channel: str
    category: str
    priority: str
    confidence: float
    message_text: str  # the customer's message, RAW (checks only; never logged)
    masked_text: str
    pii_originals: list[str]  # every personal-data string found in message + customer record
    customer: dict[str, Any]  # {name, id, phone, tier}
    subject: str | None = None  # email subject, when the channel wants one
    sms_text: str | None = None  # SMS confirmation, when the channel wants one
    template_id: str | None = None
    sla_plan: Any = None  # service.guard.sla.SlaPlan
    now: datetime | None = None
    role: str = "agent"  # who will send it: agent | supervisor | admin
