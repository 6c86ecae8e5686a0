"""Routing: a clean draft goes to the agent, anything else to the review queue.

Every flag is a machine code with one plain sentence beside it, so a reviewer
sees why the draft is waiting without opening the checks.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from service.guard import CheckResult
from service.policy import Policy

READY = "ready"
FLAGGED = "flagged"


@dataclass(frozen=True)
class RouteDecision:
    status: str  # 'ready' (to the agent) | 'flagged' (supervisor review queue)
    flags: list[str]  # machine codes: 'priority_urgent', 'check_failed:<name>', 'low_confidence', 'commitment', ...
    reasons: list[str]  # one plain sentence per flag, same order
    reviewer: str | None  # 'supervisor' or 'admin'; None when ready

    @property
    def flagged(self) -> bool:
        return self.status == FLAGGED


def route(checks: list[CheckResult], priority: str, confidence: float, policy: Policy,
          extra_flags: Iterable[tuple[str, str]] = ()) -> RouteDecision:
    raised: list[tuple[str, str]] = []

    if priority in ("urgent", "high"):
        label = policy.priorities[priority].label
        raised.append((f"priority_{priority}", f"优先级为“{label}”，发送前须主管复核。"))

    approver = None
    for check in checks:
        if check.passed:
            continue
        raised.append((f"check_failed:{check.name}", check.reason))
        wanted = (check.details or {}).get("approver")
        if wanted == "admin" or (wanted == "supervisor" and approver is None):
            approver = wanted
        if check.name == "commitments":
            who = "经理" if wanted == "admin" else "主管"
            raised.append(("commitment", f"草稿含有超出权限的补偿或退款承诺，须{who}审批后才能发送。"))

    low = policy.limits.low_confidence
    # NaN or a missing score is treated as low: nobody vouched for the category.
    if confidence is None or math.isnan(confidence) or confidence < low:
        shown = "未知" if confidence is None or math.isnan(confidence) else f"{confidence:.2f}"
        raised.append(("low_confidence", f"分类置信度{shown}低于{low:.2f}，请主管确认分类和模板。"))

    for code, reason in extra_flags:
        raised.append((code, reason))

    unique = list(dict.fromkeys(raised))  # the same flag twice says nothing new
    if not unique:
        return RouteDecision(status=READY, flags=[], reasons=[], reviewer=None)
    return RouteDecision(
        status=FLAGGED,
        flags=[code for code, _ in unique],
        reasons=[reason for _, reason in unique],
        # Compensation above the supervisor's limit needs the manager after the supervisor.
        reviewer="admin" if approver == "admin" else "supervisor",
    )
