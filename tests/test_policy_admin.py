"""The business policy through the API (admins): version 0 is the file; a change is validated,
versioned, audited and live for the next draft; history, revert, conflicts; a restart keeps it;
policy rows never appear as knowledge."""
from __future__ import annotations

import copy
import uuid
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service import kb
from service.api.app import create_app
from service.config import PROJECT_ROOT
from service.db.models import AuditEvent, KnowledgeEntry
from service.db.session import make_engine, make_session_factory, upgrade
from service.policy import load_policy
from service.policy_admin.service import as_document
from service.runtime import build_runtime
from tests.conftest import add_role_users, bearer, make_settings

READY = "会员积分什么时候过期？"  # inquiry, medium priority; the membership_points template quotes agent_contact
FILE_POLICY = as_document(load_policy(PROJECT_ROOT / "knowledge" / "policy.yaml"))
ENDPOINTS = [("GET", "/v1/policy"), ("PUT", "/v1/policy"), ("GET", "/v1/policy/history"),
             ("POST", "/v1/policy/revert")]


class Api:
    def __init__(self, client: TestClient, tokens: dict[str, str], runtime):
        self.client, self.tokens, self.runtime = client, tokens, runtime

    def call(self, method: str, url: str, who: str | None = "admin", **kw):
        headers = {**(bearer(self.tokens[who]) if who else {}), **kw.pop("headers", {})}
        return self.client.request(method, url, headers=headers, **kw)

    def policy(self) -> dict:
        response = self.call("GET", "/v1/policy")
        assert response.status_code == 200, response.text
        return response.json()

    def put(self, document: dict, headers: dict | None = None, **body):
        return self.call("PUT", "/v1/policy", json={"policy": document, **body}, headers=headers or {})

    def draft(self, text: str = READY) -> dict:
        response = self.call("POST", "/v1/drafts", "agent",
                             json={"channel": "app", "text": text, "client_message_id": uuid.uuid4().hex})
        assert response.status_code == 201, response.text
        return response.json()


def _hours_to_first_response(draft: dict) -> float:
    sla = draft["sla"]
    due = datetime.fromisoformat(sla["first_response_due"]) - datetime.fromisoformat(sla["received_at"])
    return due.total_seconds() / 3600


def _with(document: dict, path: str, value) -> dict:
    changed = copy.deepcopy(document)
    *parents, last = path.split(".")
    node = changed
    for key in parents:
        node = node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return changed


@pytest.fixture(scope="module")
def api(tmp_path_factory, index_cache, shared_runtime):
    url = f"sqlite:///{tmp_path_factory.mktemp('policy') / 'policy.db'}"
    runtime = build_runtime(make_settings(url, index_cache))
    tokens = add_role_users(runtime, "policy")
    with TestClient(create_app(runtime.settings, runtime=runtime)) as client:
        yield Api(client, tokens, runtime)
    runtime.engine.dispose()


# Runs first: the module's database has no policy version yet.
def test_the_file_is_version_zero_until_the_first_change(api):
    response = api.call("GET", "/v1/policy")
    assert response.status_code == 200 and response.headers["etag"] == '"0"'
    assert response.json() == {"version": 0, "source": "file", "policy": FILE_POLICY}
    assert api.call("GET", "/v1/policy/history").json() == []
    same = api.put(FILE_POLICY)  # the file's own content is no change
    assert same.status_code == 200 and same.json()["version"] == 0
    with api.runtime.sessions() as session:
        assert session.scalars(select(KnowledgeEntry).where(KnowledgeEntry.kind == "policy")).all() == []


@pytest.mark.parametrize("role", ["agent", "supervisor", "editor"])
@pytest.mark.parametrize("method, url", ENDPOINTS)
def test_only_admins_may_use_the_policy_endpoints(api, role, method, url):
    body = {"json": {"version": 1}} if url.endswith("revert") else {"json": {"policy": FILE_POLICY}}
    response = api.call(method, url, role, **({} if method == "GET" else body))
    assert response.status_code == 403
    assert f"role '{role}' may not use {method} {url}" in response.json()["error"] and "admin" in response.json()["error"]
    anonymous = api.call(method, url, None, **({} if method == "GET" else body))
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"


def test_admins_may_use_all_four_endpoints(api):
    start = api.policy()
    first = api.put(_with(start["policy"], "jargon.售后单", "服务记录"))
    second = api.put(_with(first.json()["policy"], "jargon.售后单", None))
    assert (first.status_code, second.status_code) == (200, 200)
    assert api.call("GET", "/v1/policy/history").status_code == 200
    reverted = api.call("POST", "/v1/policy/revert", json={"version": first.json()["version"]})
    assert reverted.status_code == 200 and reverted.json()["policy"]["jargon"]["售后单"] == "服务记录"
    assert api.put(start["policy"]).status_code == 200


def test_a_change_is_visible_in_the_next_draft_and_audited(api):
    before = api.draft()
    assert "客服小悦专线" not in before["draft"] and _hours_to_first_response(before) == 24
    current = api.policy()
    changed = _with(current["policy"], "agent.default_contact", "客服小悦专线（服务热线400-820-1234）")
    changed = _with(changed, "sla.medium.first_response", {"amount": 30, "unit": "hours"})

    response = api.put(changed, headers={"If-Match": f'"{current["version"]}"'})
    assert response.status_code == 200, response.text
    version = response.json()["version"]
    assert version == current["version"] + 1 and response.headers["etag"] == f'"{version}"'
    assert response.json()["source"] == "database"
    assert api.policy()["policy"]["agent"]["default_contact"].startswith("客服小悦专线")

    after = api.draft()
    assert "客服小悦专线" in after["draft"]
    assert _hours_to_first_response(after) == 30

    events = api.call("GET", "/v1/audit", params={"target_kind": "policy", "action": "policy.update"}).json()["items"]
    newest = events[0]
    assert newest["before"] == {"version": current["version"]}
    assert newest["after"] == {"version": version, "changed": ["agent", "sla"]}
    assert newest["actor"].startswith("policy-admin")

    history = api.call("GET", "/v1/policy/history").json()
    assert history[-1]["version"] == version and history[-1]["changed"] == ["agent", "sla"]
    assert [h["version"] for h in history] == sorted(h["version"] for h in history)
    assert api.put(FILE_POLICY).status_code == 200  # back to the file's content for the tests after
    assert "客服小悦专线" not in api.draft()["draft"]


@pytest.mark.parametrize("path, value, field", [
    ("sla.high.first_response.amount", 0, "sla.high.first_response.amount"),
    ("categories.spam", {"label": "垃圾", "description": "x"}, "categories.spam"),
    ("priorities.low", None, "priorities"),
    ("agent", None, "agent"),
    ("channels.store", None, "channels"),
    ("timezone", "Mars/Olympus", "timezone"),
    ("business_hours.default", None, "business_hours.default"),
    ("business_hours.default.periods", [["18:00", "09:00"]], "business_hours.default.periods"),
    ("compensation.agent_limit", 500, "compensation"),
])
def test_an_invalid_policy_is_refused_naming_the_field_and_changes_nothing(api, path, value, field):
    current = api.policy()
    running = api.runtime.policy
    response = api.put(_with(_with(current["policy"], "agent.default_contact", "不该生效（服务热线400-820-1234）"),
                             path, value))
    assert response.status_code == 422, response.text
    body = response.json()
    assert field in body["error"] and any(p["field"].startswith(field) for p in body["problems"])
    assert api.policy() == current and api.runtime.policy is running
    assert "不该生效" not in api.draft()["draft"]


def test_a_policy_the_service_cannot_build_is_refused(api, monkeypatch):
    current = api.policy()

    def broken(policy):
        raise RuntimeError("masking rules do not compile")

    monkeypatch.setattr(api.runtime, "prepare_policy", broken)
    response = api.put(_with(current["policy"], "jargon.售后单", "服务记录"))
    assert response.status_code == 422 and "masking rules do not compile" in response.json()["error"]
    assert api.policy() == current


def test_a_failed_build_leaves_the_running_policy_whole(api, monkeypatch):
    runtime, pipeline = api.runtime, api.runtime.pipeline
    old = (runtime.policy, pipeline.policy, pipeline.masker, pipeline.classifier, pipeline.drafter, pipeline.sla)
    changed = runtime.policy.model_copy(update={"timezone": "UTC"})

    def broken(policy):
        raise RuntimeError("boom")

    monkeypatch.setattr("service.runtime.SlaEngine", broken)
    with pytest.raises(RuntimeError):
        runtime.apply_policy(changed)
    assert (runtime.policy, pipeline.policy, pipeline.masker, pipeline.classifier, pipeline.drafter,
            pipeline.sla) == old
    monkeypatch.undo()
    runtime.apply_policy(changed)
    assert runtime.policy.timezone == pipeline.policy.timezone == pipeline.sla.policy.timezone == "UTC"
    assert pipeline.classifier is not old[3] and pipeline.drafter.policy is changed
    runtime.apply_policy(old[0])


def test_a_stale_version_is_a_conflict(api):
    current = api.policy()
    changed = _with(current["policy"], "limits.low_confidence", 0.5)
    stale = api.put(changed, expected_version=current["version"] + 5)
    assert stale.status_code == 409 and stale.json()["version"] == current["version"]
    stale_header = api.put(changed, headers={"If-Match": f'"{current["version"] + 5}"'})
    assert stale_header.status_code == 409
    assert api.policy() == current


def test_revert_makes_an_old_version_the_policy_again(api):
    start = api.policy()
    one = api.put(_with(start["policy"], "agent.default_contact", "甲组（服务热线400-820-1234）")).json()
    two = api.put(_with(start["policy"], "agent.default_contact", "乙组（服务热线400-820-1234）")).json()
    assert "乙组" in api.draft()["draft"]

    reverted = api.call("POST", "/v1/policy/revert", json={"version": one["version"]})
    assert reverted.status_code == 200 and reverted.json()["version"] == two["version"] + 1
    assert reverted.json()["policy"] == one["policy"]
    assert "甲组" in api.draft()["draft"]
    again = api.call("POST", "/v1/policy/revert", json={"version": one["version"]})
    assert again.status_code == 409
    assert api.call("POST", "/v1/policy/revert", json={"version": 999}).status_code == 404
    stale = api.call("POST", "/v1/policy/revert", json={"version": two["version"], "expected_version": 1})
    assert stale.status_code == 409

    event = api.call("GET", "/v1/audit", params={"action": "policy.revert"}).json()["items"][0]
    assert event["target_kind"] == "policy" and event["details"] == {"reverted_to": one["version"]}
    assert event["before"] == {"version": two["version"]} and event["after"]["changed"] == ["agent"]
    assert api.put(start["policy"]).status_code == 200


def test_policy_rows_never_show_as_knowledge(api):
    assert api.put(_with(api.policy()["policy"], "jargon.售后单", "服务记录")).status_code == 200
    with api.runtime.sessions() as session:
        assert session.scalars(select(KnowledgeEntry).where(KnowledgeEntry.kind == "policy")).first() is not None
    faq = api.call("GET", "/v1/knowledge/faq", "editor").json()
    templates = api.call("GET", "/v1/knowledge/templates", "editor").json()
    assert faq and templates and all("question" in row for row in faq) and all("body" in row for row in templates)
    for kind in ("faq", "template"):
        export = api.call("GET", "/v1/knowledge/export", "editor", params={"kind": kind}).text
        assert "default_contact" not in export and '"policy"' not in export
    assert api.call("GET", "/v1/knowledge/faq/policy", "editor").status_code == 404
    assert api.call("GET", "/v1/knowledge/templates/policy", "editor").status_code == 404


def test_a_database_with_only_a_policy_is_still_seeded_with_knowledge(tmp_path):
    url = f"sqlite:///{tmp_path / 'seed.db'}"
    upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        session.add(KnowledgeEntry(kind="policy", entry_id="policy", version=1, data=FILE_POLICY, author="t"))
        session.commit()
        assert kb.seed_if_empty(session, PROJECT_ROOT / "knowledge")
        assert kb.live_entries(session, "faq") and kb.live_entries(session, "template")
    engine.dispose()


def test_a_restart_uses_the_stored_policy(api):
    changed = _with(api.policy()["policy"], "agent.default_contact", "重启后（服务热线400-820-1234）")
    version = api.put(changed).json()["version"]
    restarted = build_runtime(api.runtime.settings)
    try:
        assert restarted.policy.agent.default_contact.startswith("重启后")
        assert restarted.pipeline.drafter.policy.agent.default_contact.startswith("重启后")
        with restarted.sessions() as session:
            events = session.scalars(select(AuditEvent).where(AuditEvent.target_kind == "policy")).all()
        assert {e.action for e in events} == {"policy.update", "policy.revert"}
        assert max(e.after["version"] for e in events) == version
    finally:
        restarted.engine.dispose()
