"""Run every guard check on one text: the pipeline's guard stage and a reviewer's re-check share this.

    ctx = DraftContext(..., pii_originals=personal_data_originals(masker, text, customer), sla_plan=plan, now=now)
    checks = guard_checks(ctx, policy, sla_engine)
    decision = route(checks, priority, confidence, policy)
"""
from __future__ import annotations

from service.guard import CheckResult, DraftContext
from service.guard.checks import run_checks
from service.guard.promises import check_promised_times
from service.masking import Masker, MaskResult
from service.policy import Policy


def personal_data_originals(masker: Masker, message_text: str, customer: dict | None,
                            masked: MaskResult | None = None) -> list[str]:
    """Every personal-data string of the message and the customer record, longest first.

    Pass `masked` when the message was masked already, to save masking it again.
    """
    masked = masked if masked is not None else masker.mask(message_text, customer or None)
    found = set(masked.originals()) | set(masker.customer_originals(customer or {}))
    return sorted(found, key=len, reverse=True)


def guard_checks(ctx: DraftContext, policy: Policy, sla_engine) -> list[CheckResult]:
    """The deterministic checks in the pipeline's order, the promised-time check last.

    `ctx.sla_plan` and `ctx.now` are required: promises are read from `now` against the plan.
    """
    if ctx.sla_plan is None or ctx.now is None:
        raise ValueError("guard_checks needs ctx.sla_plan and ctx.now")
    promised = check_promised_times(ctx.draft_text, ctx.sla_plan, ctx.now, sla_engine)
    return run_checks(ctx, policy, extra=[promised])
