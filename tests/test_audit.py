"""The audit trail on SQLite and PostgreSQL: a row for every review action, knowledge change,
raw-data read and user change (who, what, when, before/after), and nobody can change it."""
from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from service.api.app import create_app
from service.audit.service import AppendOnlyError
from service.db.models import AuditEvent
from service.runtime import build_runtime
from tests.conftest import add_role_users, bearer, make_settings, module_database_url, private_index_dir

URGENT = "APP登录不了，手机13812345678收不到验证码"
READY = "会员积分什么时候过期？"
EXPECTED = {
    "user.add", "user.revoke", "review.approve", "review.edit", "review.reject", "review.send", "review.discard",
    "draft.raw_read", "knowledge.create", "knowledge.update", "knowledge.delete", "knowledge.revert",
    "knowledge.import", "knowledge.proposal.create", "knowledge.proposal.accept", "knowledge.proposal.dismiss",
    "followup.done",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def trail(request, tmp_path_factory, index_cache, shared_runtime):
    """Every kind of audited action, once, through the API; yields what the test needs to check them."""
    with ExitStack() as stack:
        url = module_database_url(request, stack, tmp_path_factory, "audit")
        index = private_index_dir(shared_runtime, index_cache, tmp_path_factory.mktemp("audit-index"))
        runtime = build_runtime(make_settings(url, index))
        stack.callback(runtime.engine.dispose)
        tokens = add_role_users(runtime, f"audit-{request.param}")
        client = stack.enter_context(TestClient(create_app(runtime.settings, runtime=runtime)))
        started = datetime.now(timezone.utc)

        def call(method: str, url: str, role: str, **kw):
            response = client.request(method, url, headers=bearer(tokens[role]), **kw)
            assert response.status_code < 300, (method, url, response.text)
            return response.json()

        new_user = call("POST", "/v1/users", "admin", json={"name": f"temp-{request.param}", "role": "agent"})
        call("POST", f"/v1/users/temp-{request.param}/revoke", "admin")

        urgent = call("POST", "/v1/drafts", "agent", json={"channel": "app", "text": URGENT})
        call("GET", f"/v1/drafts/{urgent['id']}/raw", "supervisor")
        call("POST", f"/v1/drafts/{urgent['id']}/edit", "supervisor", json={
            "text": "尊敬的客户，您好！无法登录给您带来了不便，非常抱歉。客服专员会在2小时内联系您协助恢复登录。感谢您的耐心！"})
        sent = call("POST", f"/v1/drafts/{urgent['id']}/send", "agent", json={})
        call("POST", f"/v1/followups/{sent['followups'][0]['id']}/done", "agent", json={"note": "已回访"})

        second = call("POST", "/v1/drafts", "agent", json={"channel": "app", "text": "APP登录不了，显示账号被锁定"})
        call("POST", f"/v1/drafts/{second['id']}/approve", "admin")
        third = call("POST", "/v1/drafts", "agent", json={"channel": "app", "text": "APP登录失败，提示网络错误"})
        call("POST", f"/v1/drafts/{third['id']}/reject", "supervisor", json={"reason": "需要先核实账号"})
        ready = call("POST", "/v1/drafts", "agent", json={"channel": "app", "text": READY})
        call("POST", f"/v1/drafts/{ready['id']}/discard", "agent", json={"reason": "客户已电话解决"})

        faq = {"question": "冰箱可以免费送货上楼吗？", "answer": "可以，冰箱免费送货上楼。", "category": "inquiry"}
        call("POST", "/v1/knowledge/faq/faq-audit", "editor", json=faq)
        call("PUT", "/v1/knowledge/faq/faq-audit", "editor", json={**faq, "answer": "可以，大件免费送货上楼。"})
        call("POST", "/v1/knowledge/faq/faq-audit/revert", "editor", json={"version": 1})
        call("DELETE", "/v1/knowledge/faq/faq-audit", "editor")
        row = json.dumps({"id": "faq-audit-2", **faq}, ensure_ascii=False)
        call("POST", "/v1/knowledge/import", "editor", params={"kind": "faq"}, content=row.encode())

        proposals = []
        for question in ("积分到年底会清零吗？", "积分多久会过期呀？"):
            draft = call("POST", "/v1/drafts", "agent", json={"channel": "app", "text": question})
            proposals.append(call("POST", f"/v1/drafts/{draft['id']}/send", "agent",
                                  json={"propose_similar_question": True})["proposal"])
        call("POST", f"/v1/knowledge/proposals/{proposals[0]['id']}/accept", "editor")
        call("POST", f"/v1/knowledge/proposals/{proposals[1]['id']}/dismiss", "editor", json={"reason": "重复"})

        yield {"client": client, "tokens": tokens, "runtime": runtime, "started": started, "urgent": urgent,
               "new_user_token": new_user["token"], "names": {r: _name_of(runtime, t) for r, t in tokens.items()}}


def _name_of(runtime, token: str) -> str:
    from service.auth.service import authenticate

    with runtime.sessions() as session:
        return authenticate(session, token).name


def _events(trail, **params) -> list[dict]:
    response = trail["client"].get("/v1/audit", headers=bearer(trail["tokens"]["admin"]),
                                   params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_every_kind_of_action_leaves_a_row_with_who_what_when(trail):
    events = _events(trail)
    assert EXPECTED <= {e["action"] for e in events}
    finished = datetime.now(timezone.utc) + timedelta(seconds=1)
    for event in events:
        assert event["actor"] and event["target_id"] and event["target_kind"]
        assert trail["started"] - timedelta(seconds=1) <= datetime.fromisoformat(event["at"]) <= finished
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)  # newest first

    names = trail["names"]
    by_action = {}
    for event in reversed(events):
        by_action.setdefault(event["action"], event)
    assert (by_action["review.edit"]["actor"], by_action["review.edit"]["actor_role"]) == (names["supervisor"], "supervisor")
    assert (by_action["review.approve"]["actor"], by_action["review.approve"]["actor_role"]) == (names["admin"], "admin")
    assert by_action["knowledge.create"]["actor"] == names["editor"]
    added = next(e for e in events if e["action"] == "user.add" and e["target_id"].startswith("temp-"))
    assert (added["actor"], added["after"]["role"]) == (names["admin"], "agent")
    assert {e["actor"] for e in events if e["action"] == "user.add"} == {"tests", names["admin"]}


def test_rows_hold_the_state_before_and_after(trail):
    edit = _events(trail, action="review.edit", target_id=trail["urgent"]["id"])[0]
    assert edit["before"]["status"] == "flagged" and edit["before"]["text"] == trail["urgent"]["draft"]
    assert edit["after"]["status"] == "edited" and edit["after"]["text"].endswith("感谢您的耐心！")
    assert edit["after"]["version"] > edit["before"]["version"]

    send = _events(trail, action="review.send", target_id=trail["urgent"]["id"])[0]
    assert (send["before"]["status"], send["after"]["status"]) == ("edited", "sent")
    assert send["details"]["outcome"] == "sent_edited"

    reject = _events(trail, action="review.reject")[0]
    assert reject["details"]["reason"] == "需要先核实账号"

    update = _events(trail, action="knowledge.update", target_id="faq-audit")[0]
    assert update["before"]["answer"] == "可以，冰箱免费送货上楼。" and update["after"]["answer"] == "可以，大件免费送货上楼。"
    delete = _events(trail, action="knowledge.delete", target_id="faq-audit")[0]
    assert delete["before"]["id"] == "faq-audit" and delete["after"] is None
    revert = _events(trail, action="knowledge.revert", target_id="faq-audit")[0]
    assert revert["details"]["reverted_to"] == 1

    revoke = _events(trail, action="user.revoke")[0]
    assert revoke["before"]["active"] is True and revoke["after"]["active"] is False


def test_the_trail_keeps_no_secrets_and_no_raw_message(trail):
    raw_read = _events(trail, action="draft.raw_read", target_id=trail["urgent"]["id"])
    assert len(raw_read) == 1 and raw_read[0]["actor"] == trail["names"]["supervisor"]
    everything = trail["client"].get("/v1/audit", headers=bearer(trail["tokens"]["admin"]),
                                     params={"limit": 500}).text
    assert "13812345678" not in everything  # the read is recorded, the data it showed is not
    assert trail["new_user_token"] not in everything
    assert all(token not in everything for token in trail["tokens"].values())


def test_filters(trail):
    review = _events(trail, action="review")
    assert review and {e["action"].split(".")[0] for e in review} == {"review"}
    mine = _events(trail, actor=trail["names"]["editor"])
    assert mine and {e["actor"] for e in mine} == {trail["names"]["editor"]}
    assert _events(trail, since="2999-01-01T00:00:00Z") == []
    page = trail["client"].get("/v1/audit", headers=bearer(trail["tokens"]["admin"]), params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["total"] >= len(EXPECTED)


def test_there_is_no_way_to_change_the_trail(trail):
    client, admin = trail["client"], bearer(trail["tokens"]["admin"])
    event_id = _events(trail)[0]["id"]
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        assert client.request(method, "/v1/audit", headers=admin).status_code == 405
        assert client.request(method, f"/v1/audit/{event_id}", headers=admin).status_code in (404, 405)

    runtime = trail["runtime"]
    with runtime.sessions() as session:
        row = session.get(AuditEvent, event_id)
        row.actor = "someone-else"
        with pytest.raises(AppendOnlyError):
            session.commit()
        session.rollback()
        with pytest.raises(AppendOnlyError):
            session.delete(session.get(AuditEvent, event_id))
            session.commit()
        session.rollback()
    for statement in ("UPDATE audit_events SET actor = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(DatabaseError, match="append-only"):
            with runtime.engine.begin() as conn:
                conn.execute(text(statement))
    with runtime.sessions() as session:
        assert session.get(AuditEvent, event_id).actor != "someone-else"
        assert session.scalar(select(AuditEvent.id).where(AuditEvent.id == event_id)) == event_id
