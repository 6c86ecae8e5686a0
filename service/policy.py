"""Typed view of knowledge/policy.yaml: the business rules as data.

Every stage reads its rules from a `Policy`; nothing here decides anything.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, field_validator

Category = Literal["inquiry", "after_sales", "complaint", "suggestion"]
Priority = Literal["urgent", "high", "medium", "low"]
Channel = Literal["app", "web", "phone", "email", "wechat", "sms", "social", "marketplace", "store"]
Tier = Literal["regular", "vip"]

CATEGORIES: tuple[str, ...] = ("inquiry", "after_sales", "complaint", "suggestion")
PRIORITIES: tuple[str, ...] = ("urgent", "high", "medium", "low")  # highest first
CHANNELS: tuple[str, ...] = ("app", "web", "phone", "email", "wechat", "sms", "social", "marketplace", "store")

TimeUnit = Literal["seconds", "minutes", "hours", "days", "work_hours", "work_days"]


class Duration(BaseModel):
    amount: float = Field(gt=0)
    unit: TimeUnit


class CategoryInfo(BaseModel):
    label: str
    description: str


class PriorityInfo(BaseModel):
    label: str
    rank: int


class ChannelInfo(BaseModel):
    label: str
    short_reply: bool = False
    sms_confirmation: bool = False
    email_subject: bool = False


class Limits(BaseModel):
    message_max_chars: int = 5000
    short_reply_max_chars: int = 400
    low_confidence: float = 0.55
    retrieval_min_score: float = 0.80


class SlaTargets(BaseModel):
    acknowledge: Duration | None = None
    first_response: Duration
    resolution: Duration


class FollowupRule(BaseModel):
    id: str
    when_priority: list[Priority] = []
    when_category: list[Category] = []
    after: Literal["reply", "resolution"]
    amount: float
    unit: TimeUnit
    repeat: str | None = None
    action: str
    customer_text: str = ""  # what the draft tells the customer; {duration} is filled in


class BusinessHours(BaseModel):
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]]
    periods: list[tuple[str, str]]


class Rules(BaseModel):
    urgent_cues: list[str] = []
    anger_cues: list[str] = []
    complaint_cues: list[str] = []
    suggestion_cues: list[str] = []
    vip_raise: bool = True


class Compensation(BaseModel):
    currency: str = "元"
    agent_limit: float
    supervisor_limit: float
    manager_limit: float
    default_offer: dict[str, str] = {}


class AgentIdentity(BaseModel):
    team_name: str
    default_contact: str
    hotline: str


class Policy(BaseModel):
    timezone: str = "Asia/Shanghai"
    categories: dict[Category, CategoryInfo]
    priorities: dict[Priority, PriorityInfo]
    channels: dict[Channel, ChannelInfo]
    limits: Limits = Limits()
    sla: dict[Priority, SlaTargets]
    channel_response: dict[Channel, Duration] = {}
    followups: list[FollowupRule] = []
    business_hours: dict[str, BusinessHours | bool] = {}
    rules: Rules = Rules()
    jargon: dict[str, str] = {}
    compensation: Compensation
    agent: AgentIdentity
    # Masking rules live beside the rest of the policy; the masking package
    # reads them with its own defaults when absent.
    masking: dict = {}

    @field_validator("categories", "priorities", "sla")
    @classmethod
    def _complete(cls, value: dict, info):
        expected = {"categories": CATEGORIES, "priorities": PRIORITIES, "sla": PRIORITIES}[info.field_name]
        missing = set(expected) - set(value)
        if missing:
            raise ValueError(f"policy.{info.field_name} is missing {sorted(missing)}")
        return value

    @property
    def use_china_holidays(self) -> bool:
        return bool(self.business_hours.get("use_china_holidays", True))

    def hours_for(self, team: str | None) -> BusinessHours:
        hours = self.business_hours.get(team or "default") if team else None
        if not isinstance(hours, BusinessHours):
            hours = self.business_hours.get("default")
        if not isinstance(hours, BusinessHours):
            raise ValueError("policy.business_hours.default is required")
        return hours

    def raise_priority(self, priority: str) -> str:
        """One level up (low→medium→high→urgent); urgent stays urgent."""
        index = PRIORITIES.index(priority)
        return PRIORITIES[max(0, index - 1)]


class PolicyError(ValueError):
    pass


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PolicyError(f"policy file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {path} is not valid YAML: {exc}") from exc
    try:
        return Policy.model_validate(data)
    except ValueError as exc:
        raise PolicyError(f"policy file {path} is invalid: {exc}") from exc


@lru_cache(maxsize=4)
def cached_policy(path: str) -> Policy:
    return load_policy(path)
