"""Routing (service/guard/routing.py): ready for the agent, or flagged with reasons."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.guard import CheckResult, DraftContext
from service.guard.checks import run_checks
from service.guard.routing import RouteDecision, route
from service.policy import load_policy

POLICY = load_policy(Path(__file__).resolve().parents[1] / "knowledge" / "policy.yaml")
CHECK_NAMES = ["personal_data", "placeholders", "jargon", "commitments", "tone", "language", "channel_format",
               "promised_time"]


def passing(**failed: CheckResult) -> list[CheckResult]:
    return [failed.get(name) or CheckResult(name, True, f"{name} 通过。") for name in CHECK_NAMES]


def fail(name: str, reason: str = "未通过。", **details) -> CheckResult:
    return CheckResult(name, False, reason, details)


def test_clean_medium_priority_draft_is_ready():
    decision = route(passing(), "medium", 0.9, POLICY)
    assert decision == RouteDecision(status="ready", flags=[], reasons=[], reviewer=None)
    assert not decision.flagged


@pytest.mark.parametrize("priority", ["medium", "low"])
def test_routine_priorities_do_not_flag(priority):
    assert route(passing(), priority, 0.9, POLICY).status == "ready"


ROUTES = [
    # checks, priority, confidence, extra, expected flags, reviewer
    (passing(), "urgent", 0.9, [], ["priority_urgent"], "supervisor"),
    (passing(), "high", 0.9, [], ["priority_high"], "supervisor"),
    (passing(), "medium", 0.3, [], ["low_confidence"], "supervisor"),
    (passing(jargon=fail("jargon", "草稿使用了术语“工单”。")), "medium", 0.9, [], ["check_failed:jargon"], "supervisor"),
    (passing(personal_data=fail("personal_data"), tone=fail("tone")), "low", 0.9, [],
     ["check_failed:personal_data", "check_failed:tone"], "supervisor"),
    (passing(commitments=fail("commitments", approver="supervisor")), "medium", 0.9, [],
     ["check_failed:commitments", "commitment"], "supervisor"),
    (passing(commitments=fail("commitments", approver="admin")), "medium", 0.9, [],
     ["check_failed:commitments", "commitment"], "admin"),
    (passing(promised_time=fail("promised_time")), "medium", 0.9, [], ["check_failed:promised_time"], "supervisor"),
    (passing(), "medium", 0.9, [("llm_degraded", "模型超时，已改用离线草稿")], ["llm_degraded"], "supervisor"),
    (passing(commitments=fail("commitments", approver="admin"), jargon=fail("jargon")), "urgent", 0.2,
     [("llm_degraded", "模型超时，已改用离线草稿")],
     ["priority_urgent", "check_failed:jargon", "check_failed:commitments", "commitment", "low_confidence",
      "llm_degraded"], "admin"),
]


@pytest.mark.parametrize("checks, priority, confidence, extra, flags, reviewer", ROUTES)
def test_flag_table(checks, priority, confidence, extra, flags, reviewer):
    decision = route(checks, priority, confidence, POLICY, extra_flags=extra)
    assert decision.status == "flagged" and decision.flagged
    assert decision.flags == flags
    assert len(decision.reasons) == len(decision.flags)
    assert all(isinstance(r, str) and r.strip() for r in decision.reasons)
    assert decision.reviewer == reviewer


def test_failed_check_reason_is_passed_through():
    decision = route(passing(jargon=fail("jargon", "草稿使用了术语“工单”。")), "low", 0.9, POLICY)
    assert decision.reasons == ["草稿使用了术语“工单”。"]


def test_extra_flag_is_added_as_is():
    decision = route(passing(), "low", 0.9, POLICY, extra_flags=[("llm_degraded", "模型返回格式错误，已改用离线草稿")])
    assert (decision.flags, decision.reasons) == (["llm_degraded"], ["模型返回格式错误，已改用离线草稿"])


@pytest.mark.parametrize("confidence, flagged", [
    (0.55, False), (0.5500001, False), (0.5499, True), (0.0, True), (1.0, False), (math.nan, True),
])
def test_low_confidence_threshold_comes_from_policy(confidence, flagged):
    assert POLICY.limits.low_confidence == 0.55
    decision = route(passing(), "medium", confidence, POLICY)
    assert ("low_confidence" in decision.flags) is flagged
    assert decision.status == ("flagged" if flagged else "ready")


def test_passing_commitment_does_not_flag():
    checks = passing(commitments=CheckResult("commitments", True, "补偿承诺（最高10元）在客服权限20元以内。",
                                             {"largest_amount": 10, "approver": None, "default_offer": True}))
    assert route(checks, "medium", 0.9, POLICY).status == "ready"


def test_repeated_identical_flags_are_listed_once():
    extra = [("llm_degraded", "模型超时，已改用离线草稿")] * 2
    assert route(passing(), "medium", 0.9, POLICY, extra_flags=extra).flags == ["llm_degraded"]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.booleans(), min_size=len(CHECK_NAMES), max_size=len(CHECK_NAMES)),
       st.sampled_from(["urgent", "high", "medium", "low"]), st.floats(min_value=0, max_value=1))
def test_ready_exactly_when_nothing_is_wrong(outcomes, priority, confidence):
    checks = [CheckResult(name, ok, "理由。") for name, ok in zip(CHECK_NAMES, outcomes)]
    decision = route(checks, priority, confidence, POLICY)
    clean = all(outcomes) and priority in ("medium", "low") and confidence >= 0.55
    assert (decision.status == "ready") is clean
    assert (decision.reviewer is None) is clean
    assert len(decision.flags) == len(decision.reasons)
    assert sum(f.startswith("check_failed:") for f in decision.flags) == outcomes.count(False)


# --- checks and routing together ---------------------------------------------------

def _context(draft: str, **overrides) -> DraftContext:
    values = dict(draft_text=draft, channel="app", category="complaint", priority="medium", confidence=0.9,
                  message_text="安装师傅爽约，我要投诉！", masked_text="安装师傅爽约，我要投诉！",
                  pii_originals=["张伟", "13812345678"], customer={"name": "张伟", "phone": "13812345678"})
    values.update(overrides)
    return DraftContext(**values)


def test_default_offer_complaint_is_ready_when_priority_allows():
    draft = ("张先生，您好！非常抱歉安装师傅没有按约上门，这是我们的失误。为表歉意，我们为您准备了10元无门槛优惠券。"
             "如有其他问题，欢迎随时联系我们。")
    decision = route(run_checks(_context(draft), POLICY), "medium", 0.9, POLICY)
    assert decision.status == "ready", decision.reasons


def test_big_compensation_goes_to_the_manager():
    draft = ("张先生，您好！非常抱歉安装师傅没有按约上门。为表歉意，我们将为您补偿500元现金。"
             "如有其他问题，欢迎随时联系我们。")
    decision = route(run_checks(_context(draft), POLICY), "high", 0.9, POLICY)
    assert decision.status == "flagged"
    assert decision.reviewer == "admin"
    assert {"priority_high", "check_failed:commitments", "commitment"} <= set(decision.flags)


def test_leaked_phone_is_flagged_without_echoing_it():
    draft = "张伟您好！非常抱歉，师傅会致电13812345678与您确认。感谢您的耐心。"
    decision = route(run_checks(_context(draft), POLICY), "medium", 0.9, POLICY)
    assert "check_failed:personal_data" in decision.flags
    assert not any("13812345678" in r or "张伟" in r for r in decision.reasons)
