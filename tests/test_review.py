"""Review queue and the draft state machine on SQLite and PostgreSQL: approvals (one and two step),
edits checked again, rejects, races, stale drafts, outcomes, statistics and follow-ups."""
from __future__ import annotations

import threading
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from service.api.app import create_app
from service.auth.service import add_user
from service.db.models import AuditEvent, Draft, ReviewAction
from service.runtime import build_runtime
from tests.conftest import bearer, make_settings, module_database_url

URGENT = "APP登录不了，一直提示验证码错误"  # urgent after-sales: flagged for review, checks all pass
COMPLAINT = "你们客服态度太差了，我要投诉！"  # high-priority complaint: flagged
READY = "会员积分什么时候过期？"  # medium inquiry built on an FAQ entry: ready
LOGIN_REPLY = ("尊敬的客户，您好！无法登录给您带来了不便，非常抱歉。我们已优先为您处理，客服专员会在2小时内联系您"
               "协助恢复登录。{extra}感谢您的耐心！")
PEOPLE = ("agent", "agent2", "supervisor", "supervisor2", "admin", "admin2", "editor")


class Api:
    def __init__(self, client: TestClient, tokens: dict[str, str], runtime):
        self.client, self.tokens, self.runtime = client, tokens, runtime

    def h(self, who: str) -> dict[str, str]:
        return bearer(self.tokens[who])

    def get(self, url: str, who: str, **kw):
        return self.client.get(url, headers=self.h(who), **kw)

    def post(self, url: str, who: str, json=None, **kw):
        return self.client.post(url, headers={**self.h(who), **kw.pop("headers", {})}, json=json, **kw)

    def draft(self, text: str, channel: str = "app", **extra) -> dict:
        response = self.post("/v1/drafts", "agent", {"channel": channel, "text": text, **extra})
        assert response.status_code == 201, response.text
        return response.json()

    def act(self, draft_id: str, action: str, who: str, json=None, **kw):
        return self.post(f"/v1/drafts/{draft_id}/{action}", who, json, **kw)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request, tmp_path_factory, index_cache):
    with ExitStack() as stack:
        url = module_database_url(request, stack, tmp_path_factory, "review")
        runtime = build_runtime(make_settings(url, index_cache))
        stack.callback(runtime.engine.dispose)
        tokens = {}
        with runtime.sessions() as session:
            for name in PEOPLE:
                role = name.rstrip("2")
                tokens[name] = add_user(session, f"{name}-{request.param}", role, actor="tests").token
        client = stack.enter_context(TestClient(create_app(runtime.settings, runtime=runtime)))
        yield Api(client, tokens, runtime)


def _name(api: Api, who: str) -> str:
    return f"{who}-{api.runtime.settings.database_url.split(':')[0].split('+')[0]}"


# --- the state machine -----------------------------------------------------------------

def test_a_ready_draft_is_sent_directly_with_its_outcome_and_follow_ups(api):
    record = api.draft(READY)
    assert record["status"] == "ready" and record["priority"]["value"] == "medium"
    before = datetime.now(timezone.utc)
    sent = api.act(record["id"], "send", "agent", {})
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["draft"]["status"] == "sent"
    assert body["outcome"]["outcome"] == "sent_as_drafted" and body["outcome"]["edit_chars"] == 0
    # A medium-priority reply gets the satisfaction survey 24 hours after it is sent.
    assert [f["kind"] for f in body["followups"]] == ["satisfaction_survey"]
    due = datetime.fromisoformat(body["followups"][0]["due_at"])
    assert before + timedelta(hours=24) <= due <= datetime.now(timezone.utc) + timedelta(hours=24)

    again = api.act(record["id"], "send", "agent", {})
    assert again.status_code == 409 and again.json()["state"] == "sent"
    assert "sent already" in again.json()["error"]


@pytest.mark.parametrize("action, body", [("approve", None), ("edit", {"text": "您好，已为您处理。感谢您的耐心！"}),
                                          ("reject", {"reason": "不需要"})])
def test_review_actions_on_a_ready_draft_are_409_with_the_state(api, action, body):
    record = api.draft(READY)
    response = api.act(record["id"], action, "supervisor", body)
    assert response.status_code == 409
    assert response.json()["state"] == "ready" and "ready" in response.json()["error"]
    assert api.get(f"/v1/drafts/{record['id']}", "agent").json()["version"] == record["version"]


def test_a_flagged_draft_cannot_be_sent_before_approval_and_a_rejected_one_never(api):
    record = api.draft(URGENT)
    assert record["status"] == "flagged" and "priority_urgent" in record["flags"]
    early = api.act(record["id"], "send", "agent", {})
    assert early.status_code == 409 and early.json()["state"] == "flagged"
    assert "approval" in early.json()["error"]

    no_reason = api.act(record["id"], "reject", "supervisor", {"reason": "   "})
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["error"]
    missing = api.act(record["id"], "reject", "supervisor", {})
    assert missing.status_code == 422 and "reason" in missing.json()["error"]
    rejected = api.act(record["id"], "reject", "supervisor", {"reason": "承诺的回访时间不合适"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    for action, body in (("approve", None), ("send", {}), ("edit", {"text": "新的回复。感谢您！"}),
                         ("reject", {"reason": "again"})):
        response = api.act(record["id"], action, "supervisor", body)
        assert response.status_code == 409, action
        assert response.json()["state"] == "rejected"


def test_urgent_draft_needs_one_supervisor_then_the_agent_sends_it(api):
    record = api.draft(URGENT)
    queue = api.get("/v1/review", "supervisor").json()["items"]
    item = next(i for i in queue if i["draft"]["id"] == record["id"])
    assert item["awaiting"] == "supervisor" and item["reasons"] == record["reasons"]
    assert item["draft"]["masked_message"] and "raw_text" not in item["draft"]

    approved = api.act(record["id"], "approve", "supervisor")
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "approved" and body["version"] > record["version"]
    assert [(a["user"], a["role"], a["action"]) for a in body["approvals"]] == [
        (_name(api, "supervisor"), "supervisor", "approve")]
    assert record["id"] not in [i["draft"]["id"] for i in api.get("/v1/review", "supervisor").json()["items"]]

    sent = api.act(record["id"], "send", "agent", {}).json()
    assert sent["draft"]["status"] == "sent" and sent["outcome"]["outcome"] == "sent_as_drafted"
    # Urgent after-sales: a callback 2 hours after the reply and a daily progress update.
    kinds = {f["kind"]: f for f in sent["followups"]}
    assert set(kinds) == {"callback_after_reply", "daily_progress_update"}
    gap = (datetime.fromisoformat(kinds["callback_after_reply"]["due_at"])
           - datetime.fromisoformat(sent["outcome"]["created_at"].replace("Z", "+00:00")))
    assert timedelta(hours=2) - timedelta(seconds=1) <= gap <= timedelta(hours=2) + timedelta(seconds=1)


def test_review_queue_lists_the_most_urgent_sla_first(api):
    high = api.draft(COMPLAINT, channel="email")
    urgent = api.draft(URGENT)
    assert high["priority"]["value"] == "high" and urgent["priority"]["value"] == "urgent"
    items = api.get("/v1/review", "admin", params={"limit": 200}).json()["items"]
    ids = [i["draft"]["id"] for i in items]
    assert ids.index(urgent["id"]) < ids.index(high["id"])  # created later, due sooner (15 minutes)
    dues = [datetime.fromisoformat(i["due_at"]) for i in items]
    assert dues == sorted(dues)
    assert all(i["draft"]["status"] == "flagged" for i in items)


# --- edits are checked again ---------------------------------------------------------------

def test_an_edit_that_fails_a_check_stays_flagged_and_cannot_be_approved(api):
    record = api.draft(URGENT)
    bad = LOGIN_REPLY.format(extra="您的工单已提交。")
    edited = api.act(record["id"], "edit", "supervisor", {"text": bad})
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["status"] == "flagged" and body["draft"] == bad and body["approvals"] == []
    jargon = next(c for c in body["checks"] if c["name"] == "jargon")
    assert not jargon["passed"] and "工单" in jargon["reason"]
    assert "check_failed:jargon" in body["flags"]

    refused = api.act(record["id"], "approve", "supervisor2")
    assert refused.status_code == 409 and refused.json()["state"] == "flagged"
    assert "工单" in refused.json()["error"] and refused.json()["reasons"]

    fixed = api.act(record["id"], "edit", "supervisor2", {"text": LOGIN_REPLY.format(extra="")})
    assert fixed.status_code == 200 and fixed.json()["status"] == "edited"
    assert all(c["passed"] for c in fixed.json()["checks"])
    sent = api.act(record["id"], "send", "agent", {}).json()
    # Measured against the drafter's own text, so a reviewer's edit counts as an edit.
    assert sent["outcome"]["outcome"] == "sent_edited" and sent["outcome"]["edit_chars"] > 0


def test_an_edit_that_leaks_the_customer_phone_is_caught(api):
    record = api.draft("APP登录不了，手机13812345678收不到验证码", customer={"name": "张伟"})
    assert record["status"] == "flagged"
    leak = api.act(record["id"], "edit", "supervisor", {"text": LOGIN_REPLY.format(extra="我们会致电13812345678。")})
    assert leak.status_code == 200 and leak.json()["status"] == "flagged"
    check = next(c for c in leak.json()["checks"] if c["name"] == "personal_data")
    assert not check["passed"]
    assert "138****5678" in check["reason"] and "13812345678" not in check["reason"]  # reasons stay masked


def test_unchanged_or_empty_edits_are_refused(api):
    record = api.draft(URGENT)
    same = api.act(record["id"], "edit", "supervisor", {"text": record["draft"]})
    assert same.status_code == 422 and "changes nothing" in same.json()["error"]
    empty = api.act(record["id"], "edit", "supervisor", {"text": ""})
    assert empty.status_code == 422


# --- approvals by amount ----------------------------------------------------------------------

def test_compensation_within_the_supervisor_limit_needs_one_reviewer(api):
    record = api.draft(URGENT)
    edited = api.act(record["id"], "edit", "supervisor", {"text": LOGIN_REPLY.format(extra="为表歉意，我们将为您补偿50元现金。")})
    body = edited.json()
    assert edited.status_code == 200 and body["status"] == "edited"
    commitments = next(c for c in body["checks"] if c["name"] == "commitments")
    assert not commitments["passed"] and commitments["details"]["largest_amount"] == 50
    assert body["reviewer"] == "supervisor" and "awaiting_second_review" not in body["flags"]


def test_compensation_above_the_supervisor_limit_needs_an_admin_second(api):
    record = api.draft(URGENT)
    text = LOGIN_REPLY.format(extra="为表歉意，我们将为您补偿500元现金。")
    edited = api.act(record["id"], "edit", "supervisor", {"text": text}).json()
    assert edited["status"] == "flagged" and edited["reviewer"] == "admin"
    assert "awaiting_second_review" in edited["flags"]
    assert any("awaiting second review" in r for r in edited["reasons"])
    assert [a["user"] for a in edited["approvals"]] == [_name(api, "supervisor")]
    waiting = api.get("/v1/review", "admin", params={"awaiting": "admin", "limit": 200}).json()["items"]
    assert record["id"] in [i["draft"]["id"] for i in waiting]

    again = api.act(record["id"], "approve", "supervisor")
    assert again.status_code == 409 and "someone else" in again.json()["error"]
    other_supervisor = api.act(record["id"], "approve", "supervisor2")
    assert other_supervisor.status_code == 403 and "admin" in other_supervisor.json()["error"]
    assert api.act(record["id"], "send", "agent", {}).status_code == 409

    final = api.act(record["id"], "approve", "admin")
    assert final.status_code == 200 and final.json()["status"] == "approved"
    assert "awaiting_second_review" not in final.json()["flags"]
    assert [a["role"] for a in final.json()["approvals"]] == ["supervisor", "admin"]
    assert api.act(record["id"], "send", "agent", {}).status_code == 200


def test_the_same_admin_cannot_give_both_approvals(api):
    record = api.draft(URGENT)
    text = LOGIN_REPLY.format(extra="为表歉意，我们将为您补偿300元现金。")
    edited = api.act(record["id"], "edit", "admin", {"text": text}).json()
    assert edited["status"] == "flagged" and "awaiting_second_review" in edited["flags"]
    same = api.act(record["id"], "approve", "admin")
    assert same.status_code == 409 and same.json()["state"] == "flagged"
    second = api.act(record["id"], "approve", "supervisor")  # any other reviewer completes it
    assert second.status_code == 200 and second.json()["status"] == "approved"


def test_compensation_above_the_manager_limit_cannot_be_approved(api):
    record = api.draft(URGENT)
    edited = api.act(record["id"], "edit", "supervisor",
                     {"text": LOGIN_REPLY.format(extra="为表歉意，我们将为您补偿2000元现金。")}).json()
    assert edited["status"] == "flagged" and edited["approvals"] == []
    refused = api.act(record["id"], "approve", "admin")
    assert refused.status_code == 409 and "经理权限" in refused.json()["error"]


# --- races and versions ---------------------------------------------------------------------------

def test_two_reviewers_approving_at_once_one_wins_and_nothing_is_lost(api):
    record = api.draft(URGENT)
    barrier = threading.Barrier(2, timeout=20)
    local = threading.local()

    def both_loaded_before_either_writes(session: Session, flush_context, instances) -> None:
        if not getattr(local, "waited", False) and any(isinstance(o, Draft) and o.id == record["id"]
                                                       for o in session.dirty):
            local.waited = True
            barrier.wait()

    results: dict[str, object] = {}

    def approve(who: str) -> None:
        results[who] = api.act(record["id"], "approve", who)

    event.listen(Session, "before_flush", both_loaded_before_either_writes)
    try:
        threads = [threading.Thread(target=approve, args=(who,)) for who in ("supervisor", "supervisor2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        event.remove(Session, "before_flush", both_loaded_before_either_writes)

    codes = sorted(r.status_code for r in results.values())
    assert codes == [200, 409], {k: (r.status_code, r.text) for k, r in results.items()}
    winner = next(who for who, r in results.items() if r.status_code == 200)
    loser = next(r for r in results.values() if r.status_code == 409)
    assert loser.json()["state"] == "approved" and "same time" in loser.json()["error"]
    stored = api.get(f"/v1/drafts/{record['id']}", "agent").json()
    assert stored["status"] == "approved"
    assert [a["user"] for a in stored["approvals"]] == [_name(api, winner)]
    with api.runtime.sessions() as session:
        actions = session.scalars(select(ReviewAction).where(ReviewAction.draft_id == record["id"])).all()
        audits = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.target_id == record["id"], AuditEvent.action == "review.approve"))
    assert [(a.action, a.actor) for a in actions] == [("approve", _name(api, winner))]
    assert audits == 1


def test_a_reviewer_holding_an_old_version_gets_409(api):
    record = api.draft(URGENT)
    loaded = api.get(f"/v1/drafts/{record['id']}", "supervisor")
    etag = loaded.headers["etag"]
    assert etag == f'"{record["version"]}"'
    first = api.act(record["id"], "approve", "supervisor", headers={"If-Match": etag})
    assert first.status_code == 200
    second = api.act(record["id"], "approve", "supervisor2", {"expected_version": record["version"]})
    assert second.status_code == 409
    assert second.json()["state"] == "approved" and second.json()["version"] == first.json()["version"]
    bad = api.act(record["id"], "approve", "admin", headers={"If-Match": "yesterday"})
    assert bad.status_code == 422 and "If-Match" in bad.json()["error"]


# --- stale drafts ---------------------------------------------------------------------------

def test_a_newer_message_makes_the_draft_stale_and_sending_it_needs_an_override(api):
    conversation = f"conv-{datetime.now().timestamp()}"
    first = api.draft(READY, conversation_id=conversation)
    assert first["stale"] is False
    second = api.draft("还有，积分可以换什么东西？", conversation_id=conversation)
    other = api.draft(READY, conversation_id=conversation + "-other")
    now_first = api.get(f"/v1/drafts/{first['id']}", "agent").json()
    assert now_first["stale"] is True and now_first["version"] > first["version"]
    assert api.get(f"/v1/drafts/{second['id']}", "agent").json()["stale"] is False
    assert api.get(f"/v1/drafts/{other['id']}", "agent").json()["stale"] is False

    # Loaded before the new message: the version moved on.
    old = api.act(first["id"], "send", "agent", {"expected_version": first["version"]})
    assert old.status_code == 409
    refused = api.act(first["id"], "send", "agent", {})
    assert refused.status_code == 409 and refused.json()["stale"] is True and "override_stale" in refused.json()["error"]
    assert api.get(f"/v1/drafts/{first['id']}", "agent").json()["status"] == "ready"
    forced = api.act(first["id"], "send", "agent", {"override_stale": True})
    assert forced.status_code == 200 and forced.json()["draft"]["status"] == "sent"
    assert api.act(second["id"], "send", "agent", {}).status_code == 200


# --- the agent's own edits -------------------------------------------------------------------------

def test_an_agent_edit_on_send_is_checked_and_measured(api):
    record = api.draft(READY)
    jargon = api.act(record["id"], "send", "agent", {"text": record["draft"] + "\n如有问题请提交工单。"})
    assert jargon.status_code == 422 and "工单" in jargon.json()["error"]
    money = api.act(record["id"], "send", "agent", {"text": record["draft"] + "\n我们将为您补偿50元现金。"})
    assert money.status_code == 422 and "commitments" in money.json()["failed_checks"]
    assert api.get(f"/v1/drafts/{record['id']}", "agent").json()["status"] == "ready"

    text = record["draft"] + "\n祝您生活愉快！"
    sent = api.act(record["id"], "send", "agent", {"text": text})
    assert sent.status_code == 200, sent.text
    outcome = sent.json()["outcome"]
    assert outcome["outcome"] == "sent_edited" and outcome["edit_chars"] == 8
    assert outcome["edit_ratio"] == round(8 / len(record["draft"]), 4)


def test_discard_needs_a_reason(api):
    record = api.draft(READY)
    assert api.act(record["id"], "discard", "agent", {"reason": ""}).status_code == 422
    done = api.act(record["id"], "discard", "agent", {"reason": "客户已在电话里解决"})
    assert done.status_code == 200 and done.json()["status"] == "discarded"
    again = api.act(record["id"], "discard", "agent", {"reason": "again"})
    assert again.status_code == 409 and again.json()["state"] == "discarded"


# --- statistics ------------------------------------------------------------------------------------

def test_draft_stats_from_known_outcomes(api):
    since = (datetime.now(timezone.utc) - timedelta(milliseconds=1)).isoformat()
    as_drafted = api.draft(READY)
    edited = api.draft("洗衣机漏水了，怎么申请维修？")
    discarded = api.draft("你们的空调有没有一级能效的型号？", channel="web")
    rejected = api.draft(URGENT)
    assert [r["status"] for r in (as_drafted, edited, discarded)] == ["ready"] * 3
    assert api.act(as_drafted["id"], "send", "agent", {}).status_code == 200
    assert api.act(edited["id"], "send", "agent", {"text": edited["draft"] + "谢谢！"}).status_code == 200
    assert api.act(discarded["id"], "discard", "agent", {"reason": "改为电话沟通"}).status_code == 200
    assert api.act(rejected["id"], "reject", "supervisor", {"reason": "需要先核实账号"}).status_code == 200

    stats = api.get("/v1/stats/drafts", "supervisor", params={"since": since}).json()
    ratio = round(3 / len(edited["draft"]), 4)
    assert stats["overall"] == {"decided": 4, "sent_as_drafted": 1, "sent_edited": 1, "discarded": 1, "rejected": 1,
                                "sent": 2, "acceptance_rate": 0.5, "edit_rate": 0.5, "mean_edit_ratio": ratio}
    drafter = {row["key"]: row for row in stats["by_drafter"]}
    assert list(drafter) == ["offline"] and drafter["offline"]["decided"] == 4

    # Per template and per category, the figures follow from the four drafts.
    outcomes = {as_drafted["id"]: "sent_as_drafted", edited["id"]: "sent_edited", discarded["id"]: "discarded",
                rejected["id"]: "rejected"}
    for group, key_of in (("by_template", lambda r: r["template_id"]), ("by_category", lambda r: r["category"]["value"])):
        expected: dict[str, dict[str, int]] = {}
        for record in (as_drafted, edited, discarded, rejected):
            counts = expected.setdefault(key_of(record), {"decided": 0, "sent": 0, "sent_edited": 0})
            counts["decided"] += 1
            counts["sent"] += outcomes[record["id"]].startswith("sent")
            counts["sent_edited"] += outcomes[record["id"]] == "sent_edited"
        rows = {row["key"]: row for row in stats[group]}
        assert set(rows) == set(expected)
        for key, counts in expected.items():
            assert rows[key]["decided"] == counts["decided"] and rows[key]["sent"] == counts["sent"]
            assert rows[key]["acceptance_rate"] == round(counts["sent"] / counts["decided"], 4)
            assert rows[key]["edit_rate"] == (round(counts["sent_edited"] / counts["sent"], 4) if counts["sent"] else None)

    later = api.get("/v1/stats/drafts", "editor", params={"since": "2999-01-01T00:00:00Z"}).json()
    assert later["overall"]["decided"] == 0 and later["overall"]["acceptance_rate"] is None
    assert api.get("/v1/stats/drafts", "admin", params={"since": "not a time"}).status_code == 422


# --- follow-ups ------------------------------------------------------------------------------------

def test_follow_ups_due_before_and_done(api):
    record = api.draft(URGENT)
    api.act(record["id"], "approve", "supervisor")
    sent = api.act(record["id"], "send", "agent", {}).json()
    sent_at = datetime.fromisoformat(sent["outcome"]["created_at"].replace("Z", "+00:00"))

    def listed(due_before: datetime, status: str = "open") -> list[str]:
        response = api.get("/v1/followups", "agent", params={"due_before": due_before.isoformat(), "status": status,
                                                              "draft_id": record["id"]})
        assert response.status_code == 200, response.text
        rows = response.json()
        assert [r["due_at"] for r in rows] == sorted(r["due_at"] for r in rows)
        return [r["kind"] for r in rows]

    assert listed(sent_at + timedelta(hours=1)) == []
    assert listed(sent_at + timedelta(hours=3)) == ["callback_after_reply"]
    assert listed(sent_at + timedelta(days=2)) == ["callback_after_reply", "daily_progress_update"]
    # A time without an offset is read in the policy's zone (Asia/Shanghai); '+' may arrive as a space.
    local = (sent_at + timedelta(hours=3)).astimezone(timezone(timedelta(hours=8)))
    naive = api.get("/v1/followups", "supervisor", params={"due_before": local.replace(tzinfo=None).isoformat(),
                                                           "draft_id": record["id"]}).json()
    assert [r["kind"] for r in naive] == ["callback_after_reply"]
    spaced = api.client.get(f"/v1/followups?draft_id={record['id']}&due_before={local.isoformat()}",
                            headers=api.h("agent")).json()
    assert [r["kind"] for r in spaced] == ["callback_after_reply"]
    assert api.get("/v1/followups", "agent", params={"due_before": "soon"}).status_code == 422

    by_kind = {f["kind"]: f for f in sent["followups"]}
    callback = api.post(f"/v1/followups/{by_kind['callback_after_reply']['id']}/done", "agent", {"note": "客户满意"})
    assert callback.status_code == 200 and callback.json()["followup"]["status"] == "done"
    assert callback.json()["next"] is None
    assert api.post(f"/v1/followups/{by_kind['callback_after_reply']['id']}/done", "agent", {}).status_code == 409
    assert listed(sent_at + timedelta(hours=3)) == []
    assert listed(sent_at + timedelta(hours=3), "done") == ["callback_after_reply"]

    daily = by_kind["daily_progress_update"]
    first = api.post(f"/v1/followups/{daily['id']}/done", "supervisor", {"note": "已同步进度"}).json()
    assert first["next"]["kind"] == "daily_progress_update" and first["next"]["status"] == "open"
    assert (datetime.fromisoformat(first["next"]["due_at"]) - datetime.fromisoformat(daily["due_at"])) == timedelta(days=1)
    last = api.post(f"/v1/followups/{first['next']['id']}/done", "supervisor", {"resolved": True}).json()
    assert last["next"] is None
    assert listed(sent_at + timedelta(days=30)) == []
    assert api.post("/v1/followups/999999/done", "agent", {}).status_code == 404


# --- raw data -------------------------------------------------------------------------------------

def test_raw_message_only_for_drafts_under_review(api):
    flagged = api.draft("APP登录不了，手机13812345678收不到验证码")
    raw = api.get(f"/v1/drafts/{flagged['id']}/raw", "supervisor")
    assert raw.status_code == 200 and "13812345678" in raw.json()["raw_text"]
    assert "13812345678" not in api.get(f"/v1/drafts/{flagged['id']}", "supervisor").text
    ready = api.draft(READY)
    refused = api.get(f"/v1/drafts/{ready['id']}/raw", "admin")
    assert refused.status_code == 403 and "never flagged" in refused.json()["error"]
    assert api.get("/v1/drafts/nope/raw", "admin").status_code == 404
