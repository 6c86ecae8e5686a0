"""Knowledge editing through the API on SQLite and PostgreSQL: validated, versioned (history, revert),
audited, live for the next draft; JSONL import (dry run) and export; similar-question proposals."""
from __future__ import annotations

import json
import uuid
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.runtime import build_runtime
from tests.conftest import add_role_users, bearer, make_settings, module_database_url, private_index_dir

READY = "会员积分什么时候过期？"  # matches faq-080 (积分会过期吗？) and the membership_points template


def faq(entry_id: str, **overrides) -> dict:
    return {"id": entry_id, "question": "大件家电可以送货上楼吗？", "answer": "可以，大件家电免费送货上楼并安装。",
            "category": "inquiry", "tags": ["配送"], "similar_questions": [], **overrides}


class Kb:
    def __init__(self, client: TestClient, tokens: dict[str, str], runtime):
        self.client, self.tokens, self.runtime = client, tokens, runtime

    def call(self, method: str, url: str, who: str = "editor", **kw):
        headers = {**bearer(self.tokens[who]), **kw.pop("headers", {})}
        return self.client.request(method, url, headers=headers, **kw)

    def draft(self, text: str, channel: str = "app") -> dict:
        response = self.call("POST", "/v1/drafts", "agent",
                             json={"channel": channel, "text": text, "client_message_id": uuid.uuid4().hex})
        assert response.status_code == 201, response.text
        return response.json()

    def audit(self, **params) -> list[dict]:
        return self.call("GET", "/v1/audit", "admin", params={"limit": 500, **params}).json()["items"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def kb_api(request, tmp_path_factory, index_cache, shared_runtime):
    with ExitStack() as stack:
        url = module_database_url(request, stack, tmp_path_factory, "kbadmin")
        # Edits save the index: work on a copy so other modules keep the pristine one.
        index = private_index_dir(shared_runtime, index_cache, tmp_path_factory.mktemp("kb-index"))
        runtime = build_runtime(make_settings(url, index))
        stack.callback(runtime.engine.dispose)
        tokens = add_role_users(runtime, f"kb-{request.param}")
        client = stack.enter_context(TestClient(create_app(runtime.settings, runtime=runtime)))
        yield Kb(client, tokens, runtime)


# --- create / update / delete / history / revert ---------------------------------------------------

def test_create_update_history_and_revert_a_faq_entry(kb_api):
    entry_id = f"faq-t-{uuid.uuid4().hex[:6]}"
    created = kb_api.call("POST", f"/v1/knowledge/faq/{entry_id}", json=faq(entry_id))
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1 and created.headers["etag"] == '"1"'
    assert created.json()["author"].startswith("kb-") and created.json()["data"]["answer"].startswith("可以")
    twice = kb_api.call("POST", f"/v1/knowledge/faq/{entry_id}", json=faq(entry_id))
    assert twice.status_code == 409 and "exists" in twice.json()["error"]

    changed = faq(entry_id, answer="可以，大件家电免费送货上楼，安装另约时间。")
    updated = kb_api.call("PUT", f"/v1/knowledge/faq/{entry_id}", json=changed, headers={"If-Match": '"1"'})
    assert updated.status_code == 200 and updated.json()["version"] == 2
    same = kb_api.call("PUT", f"/v1/knowledge/faq/{entry_id}", json=changed)
    assert same.status_code == 200 and same.json()["version"] == 2  # nothing changed, no new version
    stale = kb_api.call("PUT", f"/v1/knowledge/faq/{entry_id}", json=faq(entry_id, answer="可以。"),
                        headers={"If-Match": '"1"'})
    assert stale.status_code == 409 and stale.json()["version"] == 2

    history = kb_api.call("GET", f"/v1/knowledge/faq/{entry_id}/history").json()
    assert [(h["version"], h["deleted"]) for h in history] == [(1, False), (2, False)]
    assert history[0]["data"]["answer"] == faq(entry_id)["answer"] and all(h["author"] for h in history)

    reverted = kb_api.call("POST", f"/v1/knowledge/faq/{entry_id}/revert", json={"version": 1})
    assert reverted.status_code == 200 and reverted.json()["version"] == 3
    assert reverted.json()["data"] == history[0]["data"]
    assert kb_api.call("GET", f"/v1/knowledge/faq/{entry_id}").json()["data"]["answer"] == faq(entry_id)["answer"]
    assert kb_api.call("POST", f"/v1/knowledge/faq/{entry_id}/revert", json={"version": 1}).status_code == 409
    assert kb_api.call("POST", f"/v1/knowledge/faq/{entry_id}/revert", json={"version": 9}).status_code == 404

    deleted = kb_api.call("DELETE", f"/v1/knowledge/faq/{entry_id}")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True and deleted.json()["version"] == 4
    gone = kb_api.call("GET", f"/v1/knowledge/faq/{entry_id}")
    assert gone.status_code == 404 and "deleted" in gone.json()["error"]
    assert entry_id not in [row["id"] for row in kb_api.call("GET", "/v1/knowledge/faq").json()]
    assert kb_api.call("POST", f"/v1/knowledge/faq/{entry_id}/revert", json={"version": 4}).status_code == 422
    restored = kb_api.call("POST", f"/v1/knowledge/faq/{entry_id}/revert", json={"version": 2})
    assert restored.status_code == 200 and restored.json()["version"] == 5
    assert restored.json()["data"]["answer"] == changed["answer"]

    actions = [e["action"] for e in kb_api.audit(target_id=entry_id)]
    assert actions == ["knowledge.revert", "knowledge.delete", "knowledge.revert", "knowledge.update",
                       "knowledge.create"]  # newest first; the unchanged PUT wrote nothing
    update = next(e for e in kb_api.audit(target_id=entry_id) if e["action"] == "knowledge.update")
    assert update["before"]["answer"] == faq(entry_id)["answer"] and update["after"]["answer"] == changed["answer"]


@pytest.mark.parametrize("body, needle", [
    ({"answer": "请提交工单，我们会尽快处理。"}, "工单"),
    ({"answer": "请拨打13812345678联系张师傅。"}, "personal data"),
    ({"similar_questions": ["我的手机号13812345678能改吗"]}, "personal data"),
    ({"category": "spam"}, "category"),
    ({"answer": "   "}, "answer"),
    ({"id": "another-id"}, "differs"),
])
def test_invalid_faq_entries_are_refused_with_the_reason(kb_api, body, needle):
    entry_id = f"faq-bad-{uuid.uuid4().hex[:6]}"
    response = kb_api.call("POST", f"/v1/knowledge/faq/{entry_id}", json=faq(entry_id, **body))
    assert response.status_code == 422
    assert needle in response.json()["error"]
    assert kb_api.call("GET", f"/v1/knowledge/faq/{entry_id}").status_code == 404


def _template(kb_api, template_id: str) -> dict:
    return kb_api.call("GET", f"/v1/knowledge/templates/{template_id}").json()["data"]


@pytest.mark.parametrize("change, needle", [
    (lambda t: {**t, "body": t["body"] + "{{ refund_amount }}"}, "unknown variables"),
    (lambda t: {**t, "placeholders": t["placeholders"][:-1]}, "do not match"),
    (lambda t: {**t, "body": t["body"].replace("{{ team_name }}", "{{ team_name | shout }}")}, "No filter named"),
    (lambda t: {**t, "body": t["body"].replace("{{ team_name }}", "{{ (team_name | length) // 0 }}")},
     "does not render"),
    (lambda t: {**t, "body": t["body"].replace("您好！", "您好！您的工单已受理。")}, "工单"),
    (lambda t: {**t, "channels": ["fax"]}, "channels"),
])
def test_invalid_templates_are_refused(kb_api, change, needle):
    current = _template(kb_api, "membership_points")
    response = kb_api.call("PUT", "/v1/knowledge/templates/membership_points", json=change(current))
    assert response.status_code == 422 and needle in response.json()["error"]
    assert _template(kb_api, "membership_points") == current


def test_the_last_template_of_a_category_cannot_be_deleted(kb_api):
    suggestions = [t for t in kb_api.call("GET", "/v1/knowledge/templates").json() if t["category"] == "suggestion"]
    assert len(suggestions) >= 2
    for template in suggestions[:-1]:
        assert kb_api.call("DELETE", f"/v1/knowledge/templates/{template['id']}").status_code == 200
    last = kb_api.call("DELETE", f"/v1/knowledge/templates/{suggestions[-1]['id']}")
    assert last.status_code == 409 and "last suggestion template" in last.json()["error"]
    for template in suggestions[:-1]:  # put them back for the rest of the module
        history = kb_api.call("GET", f"/v1/knowledge/templates/{template['id']}/history").json()
        back = kb_api.call("POST", f"/v1/knowledge/templates/{template['id']}/revert",
                           json={"version": history[-2]["version"]})
        assert back.status_code == 200


# --- live for the next draft ------------------------------------------------------------------------

def test_a_faq_change_is_visible_to_the_next_draft(kb_api):
    question = "买洗碗机送不送安装用的专用水龙头？"
    entry_id = f"faq-live-{uuid.uuid4().hex[:6]}"
    before = kb_api.draft(question)
    assert entry_id not in [h["id"] for h in before["knowledge_hits"]]

    answer = "送。购买洗碗机赠送一个专用分水阀龙头，安装师傅上门时免费装好。"
    assert kb_api.call("POST", f"/v1/knowledge/faq/{entry_id}",
                       json=faq(entry_id, question=question, answer=answer)).status_code == 201
    after = kb_api.draft(question)
    faq_hits = [h for h in after["knowledge_hits"] if h["collection"] == "faq"]
    assert faq_hits[0]["id"] == entry_id
    assert "专用分水阀龙头" in after["draft"]

    new_answer = "送。购买洗碗机赠送一个进水三通阀，安装师傅上门时免费装好。"
    assert kb_api.call("PUT", f"/v1/knowledge/faq/{entry_id}",
                       json=faq(entry_id, question=question, answer=new_answer)).status_code == 200
    changed = kb_api.draft(question)
    assert "进水三通阀" in changed["draft"] and "专用分水阀龙头" not in changed["draft"]

    assert kb_api.call("DELETE", f"/v1/knowledge/faq/{entry_id}").status_code == 200
    removed = kb_api.draft(question)
    assert entry_id not in [h["id"] for h in removed["knowledge_hits"]]
    assert "进水三通阀" not in removed["draft"]


def test_a_template_change_is_visible_to_the_next_draft(kb_api):
    first = kb_api.draft(READY)
    assert first["template_id"] == "membership_points" and "以App公告为准" not in first["draft"]
    template = _template(kb_api, "membership_points")
    template["body"] = template["body"].replace("方便您随时核对。", "方便您随时核对，积分规则以App公告为准。")
    assert kb_api.call("PUT", "/v1/knowledge/templates/membership_points", json=template).status_code == 200
    second = kb_api.draft(READY)
    assert second["template_id"] == "membership_points" and "积分规则以App公告为准" in second["draft"]


# --- import / export -------------------------------------------------------------------------------

def test_import_dry_run_reports_and_changes_nothing_then_imports(kb_api):
    new_id = f"faq-imp-{uuid.uuid4().hex[:6]}"
    existing = kb_api.call("GET", "/v1/knowledge/faq/faq-080").json()["data"]
    unchanged = kb_api.call("GET", "/v1/knowledge/faq/faq-079").json()["data"]
    rows = [faq(new_id, question="旧家电可以上门回收吗？", answer="可以，购买新机时可预约旧机上门回收。"),
            {**existing, "tags": existing["tags"] + ["导入"]}, unchanged]
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    headers = {"content-type": "application/x-ndjson"}

    dry = kb_api.call("POST", "/v1/knowledge/import", params={"kind": "faq", "dry_run": "true"}, content=body.encode(),
                      headers=headers)
    assert dry.status_code == 200, dry.text
    assert dry.json() == {"kind": "faq", "dry_run": True, "added": 1, "changed": 1, "unchanged": 1,
                               "added_ids": [new_id], "changed_ids": ["faq-080"], "unchanged_ids": ["faq-079"]}
    assert kb_api.call("GET", f"/v1/knowledge/faq/{new_id}").status_code == 404
    assert "导入" not in kb_api.call("GET", "/v1/knowledge/faq/faq-080").json()["data"]["tags"]
    assert kb_api.audit(target_id=new_id) == []

    real = kb_api.call("POST", "/v1/knowledge/import", params={"kind": "faq"}, content=body.encode(), headers=headers)
    assert real.status_code == 200 and real.json()["added"] == 1 and real.json()["dry_run"] is False
    assert kb_api.call("GET", f"/v1/knowledge/faq/{new_id}").json()["version"] == 1
    assert "导入" in kb_api.call("GET", "/v1/knowledge/faq/faq-080").json()["data"]["tags"]
    assert [e["action"] for e in kb_api.audit(target_id=new_id)] == ["knowledge.import"]
    assert kb_api.draft("旧家电可以上门回收吗？")["knowledge_hits"][0]["id"] == new_id

    exported = kb_api.call("GET", "/v1/knowledge/export", params={"kind": "faq"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/x-ndjson")
    ids = [json.loads(line)["id"] for line in exported.text.splitlines()]
    assert new_id in ids and len(ids) == len(set(ids)) == len(kb_api.call("GET", "/v1/knowledge/faq").json())
    templates = kb_api.call("GET", "/v1/knowledge/export", params={"kind": "template"}).text.splitlines()
    assert {json.loads(line)["id"] for line in templates} >= {"membership_points", "general_inquiry"}


@pytest.mark.parametrize("body, needle", [
    ('{"id": "x1", "question": "q", "answer": "a", "category": "inquiry"}\n{"id": "x2", "question": "q",', "line 2"),
    ('{"id": "x1", "question": "q", "answer": "请提交工单", "category": "inquiry"}\n', "line 1: FAQ entry x1"),
    ('{"id": "x1", "question": "q", "answer": "a", "category": "inquiry"}\n'
     '{"id": "x1", "question": "q", "answer": "b", "category": "inquiry"}\n', "duplicate id x1"),
    ("", "no FAQ entry"),
])
def test_a_bad_import_names_the_line_and_imports_nothing(kb_api, body, needle):
    before = kb_api.call("GET", "/v1/knowledge/export").text
    response = kb_api.call("POST", "/v1/knowledge/import", content=body.encode())
    assert response.status_code == 422 and needle in response.json()["error"]
    assert kb_api.call("GET", "/v1/knowledge/export").text == before
    assert kb_api.call("POST", "/v1/knowledge/import", params={"kind": "policy"}, content=b"{}").status_code == 422


# --- similar-question proposals --------------------------------------------------------------------

def test_a_sent_draft_proposes_a_similar_question_an_editor_accepts(kb_api):
    message = "积分到年底会不会清零啊？"
    record = kb_api.draft(message)
    assert record["knowledge_hits"][0]["id"] == "faq-080" and record["status"] == "ready"
    sent = kb_api.call("POST", f"/v1/drafts/{record['id']}/send", "agent", json={"propose_similar_question": True})
    assert sent.status_code == 200, sent.text
    proposal = sent.json()["proposal"]
    assert proposal["faq_id"] == "faq-080" and proposal["question"] == message and proposal["status"] == "open"

    listed = kb_api.call("GET", "/v1/knowledge/proposals").json()
    assert proposal["id"] in [p["id"] for p in listed]
    retriever = kb_api.runtime.pipeline.retriever
    score_before = next(h.score for h in retriever.search("faq", message, k=5) if h.id == "faq-080")
    version_before = kb_api.call("GET", "/v1/knowledge/faq/faq-080").json()["version"]

    accepted = kb_api.call("POST", f"/v1/knowledge/proposals/{proposal['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["proposal"]["status"] == "accepted"
    entry = kb_api.call("GET", "/v1/knowledge/faq/faq-080").json()
    assert entry["version"] == version_before + 1 and entry["data"]["similar_questions"][-1] == message
    assert message in kb_api.runtime.pipeline.knowledge.faq["faq-080"].similar_questions
    score_after = next(h.score for h in retriever.search("faq", message, k=5) if h.id == "faq-080")
    assert score_after > score_before  # the question is now one of the entry's own views
    again = kb_api.call("POST", f"/v1/knowledge/proposals/{proposal['id']}/accept")
    assert again.status_code == 409 and again.json()["state"] == "accepted"
    actions = [e["action"] for e in kb_api.audit(action="knowledge.proposal")]
    assert "knowledge.proposal.create" in actions and "knowledge.proposal.accept" in actions


def test_proposals_can_be_reworded_dismissed_and_are_refused_without_an_faq_match(kb_api):
    record = kb_api.draft("会员积分怎么查看明细呀？")
    assert record["knowledge_hits"][0]["collection"] == "faq"
    proposed = kb_api.call("POST", f"/v1/drafts/{record['id']}/send", "agent",
                           json={"propose_similar_question": True, "similar_question": "积分明细在哪里看？"})
    assert proposed.status_code == 200, proposed.text
    proposal = proposed.json()["proposal"]
    assert proposal["question"] == "积分明细在哪里看？"
    dismissed = kb_api.call("POST", f"/v1/knowledge/proposals/{proposal['id']}/dismiss", json={"reason": "太泛"})
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    assert proposal["id"] not in [p["id"] for p in kb_api.call("GET", "/v1/knowledge/proposals").json()]
    assert proposal["id"] in [p["id"] for p in kb_api.call("GET", "/v1/knowledge/proposals",
                                                           params={"status": "dismissed"}).json()]

    unrelated = kb_api.draft("我想给你们提个建议：包装能不能少用点塑料")
    top = max((h for h in unrelated["knowledge_hits"] if h["collection"] == "faq"), key=lambda h: h["score"])
    assert top["score"] < kb_api.runtime.pipeline.retriever.no_answer_threshold and unrelated["status"] == "ready"
    refused = kb_api.call("POST", f"/v1/drafts/{unrelated['id']}/send", "agent", json={"propose_similar_question": True})
    assert refused.status_code == 422 and "not built on an FAQ entry" in refused.json()["error"]
    assert kb_api.call("GET", f"/v1/drafts/{unrelated['id']}", "agent").json()["status"] == "ready"

    leaky = kb_api.draft("积分什么时候清零？")
    response = kb_api.call("POST", f"/v1/drafts/{leaky['id']}/send", "agent",
                           json={"propose_similar_question": True, "similar_question": "13812345678的积分什么时候清零"})
    assert response.status_code == 422 and "personal data" in response.json()["error"]


def test_the_newest_committed_version_is_what_goes_live(kb_api):
    from service.db.models import KnowledgeEntry
    from service.knowledge_admin.service import apply_live

    entry_id = f"faq-order-{uuid.uuid4().hex[:6]}"
    assert kb_api.call("POST", f"/v1/knowledge/faq/{entry_id}", json=faq(entry_id)).status_code == 201
    newer = faq(entry_id, answer="可以，大件家电送货上楼，楼层不限。")
    with kb_api.runtime.sessions() as session:  # another process committed version 2 meanwhile
        session.add(KnowledgeEntry(kind="faq", entry_id=entry_id, version=2, data=newer, author="elsewhere"))
        session.commit()
    apply_live(kb_api.runtime, "faq", entry_id)  # e.g. a late request re-applying the change it made
    assert kb_api.runtime.pipeline.knowledge.faq[entry_id].answer == newer["answer"]
    hits = kb_api.runtime.pipeline.retriever.search("faq", "大件家电送货上楼，楼层不限吗？", k=5)
    assert entry_id in [h.id for h in hits]
