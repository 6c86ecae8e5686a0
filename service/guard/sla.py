"""SLA engine: due times for one message, from the policy's targets.

Calendar units (seconds, minutes, hours, days) add plainly, around the clock.
work_hours / work_days count open time of the business calendar that applies:
the given team's hours, else the channel's own hours when the policy has them
(the phone line keeps longer hours), else the default hours.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from service.guard.calendar import BusinessCalendar, require_aware
from service.policy import BusinessHours, Duration, Policy



@dataclass(frozen=True)
class FollowupDue:
    id: str
    action: str
    after: str  # 'reply' | 'resolution'
    due: datetime | None  # set when it can be computed from the given anchor times
    repeat: str | None
    # True while the anchor is still a due time, not the actual reply/resolution.
    estimated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "action": self.action, "after": self.after,
            "due": _iso(self.due), "repeat": self.repeat, "estimated": self.estimated,
        }


@dataclass(frozen=True)
class SlaPlan:
    priority: str
    channel: str
    received_at: datetime
    acknowledge_due: datetime | None  # urgent: contact within 15 minutes
    channel_response_due: datetime | None  # phone 15 s, chat 2 min, email 4 h
    first_response_due: datetime
    resolution_due: datetime
    followups: list[FollowupDue] = field(default_factory=list)
    category: str | None = None
    team: str | None = None  # business-hours key used for working-time units; None = default

    def breaches(self, now: datetime, responded_at: datetime | None = None,
                 resolved_at: datetime | None = None) -> dict[str, bool]:
        """Which targets are missed as of `now`.

        A target whose event happened is judged by the event time (answering
        late stays a breach; answering in time stays kept). A target still open
        is breached once `now` is past its due time; the due moment itself is
        still in time. Targets the plan does not have are reported False.
        The first reply counts as the acknowledgement and the channel response.
        """
        require_aware(now, "now")
        if responded_at is not None:
            require_aware(responded_at, "responded_at")
        if resolved_at is not None:
            require_aware(resolved_at, "resolved_at")

        def missed(due: datetime | None, done: datetime | None) -> bool:
            if due is None:
                return False
            return (done if done is not None else now) > due

        return {
            "acknowledge": missed(self.acknowledge_due, responded_at),
            "channel_response": missed(self.channel_response_due, responded_at),
            "first_response": missed(self.first_response_due, responded_at),
            "resolution": missed(self.resolution_due, resolved_at),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "priority": self.priority,
            "category": self.category,
            "channel": self.channel,
            "team": self.team,
            "received_at": _iso(self.received_at),
            "acknowledge_due": _iso(self.acknowledge_due),
            "channel_response_due": _iso(self.channel_response_due),
            "first_response_due": _iso(self.first_response_due),
            "resolution_due": _iso(self.resolution_due),
            "followups": [f.to_dict() for f in self.followups],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


_PLAIN_UNITS = {"seconds": "seconds", "minutes": "minutes", "hours": "hours", "days": "days"}


class SlaEngine:
    def __init__(self, policy: Policy):
        self.policy = policy
        self._calendars: dict[str | None, BusinessCalendar] = {}

    # --- calendars ------------------------------------------------------------

    def _hours_key(self, team: str | None) -> str | None:
        hours = self.policy.business_hours.get(team) if team else None
        return team if isinstance(hours, BusinessHours) else None

    def calendar(self, team: str | None = None) -> BusinessCalendar:
        key = self._hours_key(team)
        cal = self._calendars.get(key)
        if cal is None:
            cal = BusinessCalendar(self.policy.hours_for(key), self.policy.timezone, self.policy.use_china_holidays)
            self._calendars[key] = cal
        return cal

    def add(self, start: datetime, duration: Duration, team: str | None = None) -> datetime:
        cal = self.calendar(team)
        start = cal.local(start, "start")
        if duration.unit in _PLAIN_UNITS:
            return start + timedelta(**{_PLAIN_UNITS[duration.unit]: duration.amount})
        if duration.unit == "work_hours":
            return cal.add_working_time(start, timedelta(hours=duration.amount))
        if duration.unit == "work_days":
            return cal.add_working_days(start, duration.amount)
        raise ValueError(f"unknown time unit {duration.unit!r}")

    # --- plans ----------------------------------------------------------------

    def plan(self, priority: str, category: str, channel: str, received_at: datetime, team: str | None = None,
             replied_at: datetime | None = None, resolved_at: datetime | None = None) -> SlaPlan:
        if priority not in self.policy.sla:
            raise ValueError(f"unknown priority {priority!r}")
        if category not in self.policy.categories:
            raise ValueError(f"unknown category {category!r}")
        if channel not in self.policy.channels:
            raise ValueError(f"unknown channel {channel!r}")
        key = self._hours_key(team) if team else self._hours_key(channel)
        cal = self.calendar(key)
        received = cal.local(received_at, "received_at")
        replied = cal.local(replied_at, "replied_at") if replied_at is not None else None
        resolved = cal.local(resolved_at, "resolved_at") if resolved_at is not None else None

        targets = self.policy.sla[priority]
        acknowledge = self.add(received, targets.acknowledge, key) if targets.acknowledge else None
        channel_target = self.policy.channel_response.get(channel)
        channel_due = self.add(received, channel_target, key) if channel_target else None
        first_response = self.add(received, targets.first_response, key)
        resolution = self.add(received, targets.resolution, key)

        followups = []
        for rule in self.policy.followups:
            if rule.when_priority and priority not in rule.when_priority:
                continue
            if rule.when_category and category not in rule.when_category:
                continue
            actual = replied if rule.after == "reply" else resolved
            anchor = actual or (first_response if rule.after == "reply" else resolution)
            due = self.add(anchor, Duration(amount=rule.amount, unit=rule.unit), key)
            followups.append(FollowupDue(id=rule.id, action=rule.action, after=rule.after, due=due,
                                         repeat=rule.repeat, estimated=actual is None))

        return SlaPlan(priority=priority, channel=channel, received_at=received, acknowledge_due=acknowledge,
                       channel_response_due=channel_due, first_response_due=first_response,
                       resolution_due=resolution, followups=followups, category=category, team=key)

    # --- customer-facing wording ----------------------------------------------

    def deadline_phrase(self, due: datetime, now: datetime, team: str | None = None) -> str:
        """The promise to write in a reply for `due`, read from `now`.

        The phrase's latest reading (as `service.guard.promises` reads it) is
        never later than `due`; when no time is left it is '尽快', which
        promises no time at all.
        """
        cal = self.calendar(team)
        due, now = cal.local(due, "due"), cal.local(now, "now")
        left = due - now
        if left < timedelta(minutes=1):
            return "尽快"
        if left < timedelta(hours=1):
            minutes = int(left.total_seconds() // 60)
            if minutes >= 10:
                minutes -= minutes % 5  # a round number reads as a promise, 17 reads as a glitch
            return f"{minutes}分钟内"
        hours, rest = divmod(left, timedelta(hours=1))
        # Short waits and the SOP's day-sized targets read best in hours;
        # anything else reads better as a clock time ("今日18:00前").
        if rest < timedelta(minutes=1) and (hours <= 4 or hours in (24, 48, 72)):
            return f"{hours}小时内"
        days, rest = divmod(left, timedelta(days=1))
        if rest < timedelta(minutes=1) and days <= 31:
            return f"{days}天内"
        clock = f"{due.hour:02d}:{due.minute:02d}"
        if due.date() == now.date():
            return f"今日{clock}前"
        if due.date() == now.date() + timedelta(days=1):
            return f"明日{clock}前"
        workdays = 0
        while workdays < 60 and cal.add_working_days(now, workdays + 1) <= due:
            workdays += 1
        if workdays:
            return f"{workdays}个工作日内"
        year = f"{due.year}年" if due.year != now.year else ""
        return f"{year}{due.month}月{due.day}日{clock}前"
