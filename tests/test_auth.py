"""Roles and access: every endpoint × every role, 401/403 with a reason, tokens hashed at rest,
the anonymous quick-start role, and the users API and CLI."""
from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from service.api.app import create_app
from service.auth import service as users
from service.auth.roles import ROLES
from service.cli import app as cli
from service.config import get_settings
from service.db.models import User
from service.runtime import build_runtime
from tests.conftest import add_role_users, bearer, make_settings

AGENT, SUPERVISOR, EDITOR, ADMIN = ROLES
DRAFTERS = {AGENT, SUPERVISOR, ADMIN}
REVIEWERS = {SUPERVISOR, ADMIN}


@pytest.fixture(scope="module")
def world(shared_runtime):
    tokens = add_role_users(shared_runtime, "matrix")
    client = TestClient(create_app(shared_runtime.settings, runtime=shared_runtime))
    with client:
        agent = bearer(tokens[AGENT])
        ready = client.post("/v1/drafts", json={"channel": "app", "text": "会员积分什么时候过期？"}, headers=agent).json()
        flagged = client.post("/v1/drafts", json={"channel": "app", "text": "APP登录不了，一直提示验证码错误"},
                              headers=agent).json()
        assert ready["status"] == "ready" and flagged["status"] == "flagged"
        yield {"client": client, "tokens": tokens, "ready": ready["id"], "flagged": flagged["id"]}


# (method, route as in the OpenAPI document, concrete URL, request kwargs, roles allowed, status for them)
def endpoints(ready: str, flagged: str) -> list[tuple]:
    faq_body = {"question": "q", "answer": "a", "category": "inquiry"}
    return [
        ("POST", "/v1/drafts", "/v1/drafts", {"json": {"channel": "app", "text": "发票怎么开？"}}, DRAFTERS, 201),
        ("GET", "/v1/drafts", "/v1/drafts", {}, DRAFTERS, 200),
        ("GET", "/v1/drafts/{draft_id}", f"/v1/drafts/{ready}", {}, DRAFTERS, 200),
        ("GET", "/v1/drafts/{draft_id}/raw", f"/v1/drafts/{flagged}/raw", {}, REVIEWERS, 200),
        ("GET", "/v1/review", "/v1/review", {}, REVIEWERS, 200),
        ("POST", "/v1/drafts/{draft_id}/approve", "/v1/drafts/missing/approve", {}, REVIEWERS, 404),
        ("POST", "/v1/drafts/{draft_id}/edit", "/v1/drafts/missing/edit", {"json": {"text": "您好。感谢您！"}},
         REVIEWERS, 404),
        ("POST", "/v1/drafts/{draft_id}/reject", "/v1/drafts/missing/reject", {"json": {"reason": "x"}}, REVIEWERS, 404),
        ("POST", "/v1/drafts/{draft_id}/send", "/v1/drafts/missing/send", {"json": {}}, DRAFTERS, 404),
        ("POST", "/v1/drafts/{draft_id}/discard", "/v1/drafts/missing/discard", {"json": {"reason": "x"}}, DRAFTERS, 404),
        ("GET", "/v1/followups", "/v1/followups", {}, {AGENT, SUPERVISOR}, 200),
        ("POST", "/v1/followups/{followup_id}/done", "/v1/followups/999999/done", {"json": {}}, {AGENT, SUPERVISOR}, 404),
        ("GET", "/v1/stats/drafts", "/v1/stats/drafts", {}, {SUPERVISOR, EDITOR, ADMIN}, 200),
        ("GET", "/v1/knowledge/faq", "/v1/knowledge/faq", {}, {EDITOR}, 200),
        ("GET", "/v1/knowledge/faq/{entry_id}", "/v1/knowledge/faq/faq-080", {}, {EDITOR}, 200),
        ("POST", "/v1/knowledge/faq/{entry_id}", "/v1/knowledge/faq/faq-080", {"json": faq_body}, {EDITOR}, 409),
        ("PUT", "/v1/knowledge/faq/{entry_id}", "/v1/knowledge/faq/missing-x", {"json": faq_body}, {EDITOR}, 404),
        ("DELETE", "/v1/knowledge/faq/{entry_id}", "/v1/knowledge/faq/missing-x", {}, {EDITOR}, 404),
        ("GET", "/v1/knowledge/faq/{entry_id}/history", "/v1/knowledge/faq/faq-080/history", {}, {EDITOR}, 200),
        ("POST", "/v1/knowledge/faq/{entry_id}/revert", "/v1/knowledge/faq/faq-080/revert", {"json": {"version": 99}},
         {EDITOR}, 404),
        ("GET", "/v1/knowledge/templates", "/v1/knowledge/templates", {}, {EDITOR}, 200),
        ("GET", "/v1/knowledge/templates/{entry_id}", "/v1/knowledge/templates/membership_points", {}, {EDITOR}, 200),
        ("POST", "/v1/knowledge/templates/{entry_id}", "/v1/knowledge/templates/new-one", {"json": {}}, {EDITOR}, 422),
        ("PUT", "/v1/knowledge/templates/{entry_id}", "/v1/knowledge/templates/missing-x", {"json": {}}, {EDITOR}, 404),
        ("DELETE", "/v1/knowledge/templates/{entry_id}", "/v1/knowledge/templates/missing-x", {}, {EDITOR}, 404),
        ("GET", "/v1/knowledge/templates/{entry_id}/history", "/v1/knowledge/templates/membership_points/history", {},
         {EDITOR}, 200),
        ("POST", "/v1/knowledge/templates/{entry_id}/revert", "/v1/knowledge/templates/membership_points/revert",
         {"json": {"version": 99}}, {EDITOR}, 404),
        ("GET", "/v1/knowledge/export", "/v1/knowledge/export", {}, {EDITOR}, 200),
        ("POST", "/v1/knowledge/import", "/v1/knowledge/import?dry_run=true", {"content": b""}, {EDITOR}, 422),
        ("GET", "/v1/knowledge/proposals", "/v1/knowledge/proposals", {}, {EDITOR}, 200),
        ("POST", "/v1/knowledge/proposals/{proposal_id}/accept", "/v1/knowledge/proposals/999999/accept", {}, {EDITOR},
         404),
        ("POST", "/v1/knowledge/proposals/{proposal_id}/dismiss", "/v1/knowledge/proposals/999999/dismiss", {},
         {EDITOR}, 404),
        ("GET", "/v1/audit", "/v1/audit", {}, {ADMIN}, 200),
        # The shared runtime's policy must not change: the admin's PUT and revert are refused.
        ("GET", "/v1/policy", "/v1/policy", {}, {ADMIN}, 200),
        ("PUT", "/v1/policy", "/v1/policy", {"json": {"policy": {}}}, {ADMIN}, 422),
        ("GET", "/v1/policy/history", "/v1/policy/history", {}, {ADMIN}, 200),
        ("POST", "/v1/policy/revert", "/v1/policy/revert", {"json": {"version": 99}}, {ADMIN}, 404),
        ("GET", "/v1/users", "/v1/users", {}, {ADMIN}, 200),
        ("POST", "/v1/users", "/v1/users", {"json": {"name": "bad name!", "role": "agent"}}, {ADMIN}, 422),
        ("POST", "/v1/users/{name}/revoke", "/v1/users/nobody-x/revoke", {}, {ADMIN}, 404),
    ]


ENDPOINTS = endpoints("READY", "FLAGGED")
IDS = [f"{e[0]} {e[1]}" for e in ENDPOINTS]


def _concrete(world, index: int) -> tuple:
    return endpoints(world["ready"], world["flagged"])[index]


def test_the_matrix_covers_every_endpoint(world):
    documented = {(method.upper(), path) for path, item in world["client"].get("/openapi.json").json()["paths"].items()
                  for method in item if path.startswith("/v1/")}
    assert documented == {(e[0], e[1]) for e in ENDPOINTS}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("index", range(len(ENDPOINTS)), ids=IDS)
def test_role_matrix(world, role, index):
    method, route, url, kwargs, allowed, status = _concrete(world, index)
    response = world["client"].request(method, url, headers=bearer(world["tokens"][role]), **kwargs)
    if role in allowed:
        assert response.status_code == status, response.text
    else:
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert f"role '{role}' may not use {method} {route}" in error
        assert all(r in error for r in allowed)


@pytest.mark.parametrize("index", range(len(ENDPOINTS)), ids=IDS)
def test_no_token_is_401_with_a_bearer_challenge(world, index):
    method, _, url, kwargs, _, _ = _concrete(world, index)
    response = world["client"].request(method, url, **kwargs)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "authentication required" in response.json()["error"]


@pytest.mark.parametrize("header, needle", [
    ("Bearer dd_not-a-real-token", "invalid or revoked token"),
    ("Basic YWdlbnQ6cGFzcw==", "must be 'Bearer <token>'"),
    ("Bearer ", "must be 'Bearer <token>'"),
])
def test_a_bad_token_is_401_with_the_reason(world, header, needle):
    response = world["client"].get("/v1/drafts", headers={"Authorization": header})
    assert response.status_code == 401 and needle in response.json()["error"]
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_public_endpoints_need_no_token(world):
    client = world["client"]
    for url in ("/healthz", "/readyz", "/", "/docs", "/openapi.json"):
        assert client.get(url).status_code == 200, url


def test_agents_see_masked_data_only(world):
    agent = bearer(world["tokens"][AGENT])
    record = world["client"].post("/v1/drafts", headers=agent, json={
        "channel": "app", "text": "APP登录不了，手机13812345678收不到验证码", "customer": {"name": "王芳"}}).json()
    for response in (world["client"].get(f"/v1/drafts/{record['id']}", headers=agent),
                     world["client"].get("/v1/drafts", headers=agent, params={"limit": 200})):
        assert "13812345678" not in response.text and "王芳" not in response.text
    assert world["client"].get(f"/v1/drafts/{record['id']}/raw", headers=agent).status_code == 403
    raw = world["client"].get(f"/v1/drafts/{record['id']}/raw", headers=bearer(world["tokens"][SUPERVISOR]))
    assert "13812345678" in raw.json()["raw_text"] and raw.json()["customer"]["name"] == "王芳"


def test_tokens_are_stored_as_hashes(shared_runtime):
    with shared_runtime.sessions() as session:
        created = users.add_user(session, f"hash-{uuid.uuid4().hex[:6]}", AGENT, actor="tests")
        row = session.scalar(select(User).where(User.name == created.user.name))
        assert created.token.startswith("dd_") and len(created.token) > 40
        assert row.token_hash == users.hash_token(created.token) and created.token not in row.token_hash
        assert row.token_prefix == created.token[:10] and len(row.token_prefix) < len(created.token) // 4
        assert users.authenticate(session, created.token).name == created.user.name
        assert users.authenticate(session, created.token + "x") is None


def test_anonymous_role_for_the_local_quick_start(shared_runtime):
    settings = shared_runtime.settings.model_copy(update={"anonymous_role": "agent"})
    with TestClient(create_app(settings, runtime=shared_runtime)) as client:
        created = client.post("/v1/drafts", json={"channel": "app", "text": "发票怎么开？"})
        assert created.status_code == 201
        refused = client.get("/v1/review")
        assert refused.status_code == 403 and "role 'agent'" in refused.json()["error"]
        # A token still counts when one is sent.
        assert client.get("/v1/drafts", headers={"Authorization": "Bearer wrong"}).status_code == 401
    with pytest.raises(ValueError, match="ANONYMOUS_ROLE"):
        make_settings("sqlite://", shared_runtime.settings.index_dir, anonymous_role="root")


# --- the users API (admins) ---------------------------------------------------------------

def test_admins_add_list_and_revoke_users(world):
    client, admin = world["client"], bearer(world["tokens"][ADMIN])
    name = f"new-agent-{uuid.uuid4().hex[:6]}"
    created = client.post("/v1/users", headers=admin, json={"name": name, "role": "agent"})
    assert created.status_code == 201 and created.json()["token"].startswith("dd_")
    token = created.json()["token"]
    assert client.get("/v1/drafts", headers=bearer(token)).status_code == 200

    listed = client.get("/v1/users", headers=admin)
    assert name in [u["name"] for u in listed.json()]
    assert token not in listed.text and "token_hash" not in listed.text and "\"token\"" not in listed.text

    assert client.post("/v1/users", headers=admin, json={"name": name, "role": "agent"}).status_code == 409
    bad_role = client.post("/v1/users", headers=admin, json={"name": "x-" + name, "role": "root"})
    assert bad_role.status_code == 422 and "unknown role" in bad_role.json()["error"]

    revoked = client.post(f"/v1/users/{name}/revoke", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    after = client.get("/v1/drafts", headers=bearer(token))
    assert after.status_code == 401 and "revoked" in after.json()["error"]
    assert client.post(f"/v1/users/{name}/revoke", headers=admin).status_code == 409


def test_the_last_admin_cannot_be_revoked_through_the_api(tmp_path, index_cache):
    runtime = build_runtime(make_settings(f"sqlite:///{tmp_path / 'admins.db'}", index_cache))
    try:
        with runtime.sessions() as session:
            token = users.add_user(session, "only-admin", ADMIN).token
        with TestClient(create_app(runtime.settings, runtime=runtime)) as client:
            response = client.post("/v1/users/only-admin/revoke", headers=bearer(token))
            assert response.status_code == 409 and "last active admin" in response.json()["error"]
            assert client.get("/v1/users", headers=bearer(token)).status_code == 200
    finally:
        runtime.engine.dispose()


# --- the users CLI ------------------------------------------------------------------------------

@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'users.db'}"
    monkeypatch.setenv("DRAFTDESK_DATABASE_URL", url)
    get_settings.cache_clear()
    yield CliRunner(), url
    get_settings.cache_clear()


def test_cli_users_add_prints_the_token_once_list_and_revoke(cli_env):
    runner, url = cli_env
    added = runner.invoke(cli, ["users", "add", "li.na", "--role", "supervisor"])
    assert added.exit_code == 0, added.output
    token = added.stdout.strip()
    assert token.startswith("dd_") and "\n" not in token and "shown once" in added.stderr

    listed = runner.invoke(cli, ["users", "list", "--json"])
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["role"], r["active"]) for r in rows] == [("li.na", "supervisor", True)]
    assert token not in listed.stdout and rows[0]["token_prefix"] == token[:10]
    human = runner.invoke(cli, ["users", "list"])
    assert "li.na" in human.stdout and token not in human.stdout

    from service.db.session import make_engine, make_session_factory

    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            assert users.authenticate(session, token).role == "supervisor"
            revoked = runner.invoke(cli, ["users", "revoke", "li.na"])
            assert revoked.exit_code == 0 and "revoked" in revoked.stdout
            session.expire_all()
            assert users.authenticate(session, token) is None
            from service.db.models import AuditEvent

            events = session.scalars(select(AuditEvent).where(AuditEvent.target_id == "li.na")
                                     .order_by(AuditEvent.id)).all()
            assert [(e.action, e.actor) for e in events] == [("user.add", "cli"), ("user.revoke", "cli")]
            assert token not in json.dumps([e.after for e in events])
    finally:
        engine.dispose()
    assert "revoked" in runner.invoke(cli, ["users", "list"]).stdout


@pytest.mark.parametrize("args, needle", [
    (["users", "add", "x", "--role", "root"], "unknown role"),
    (["users", "add", "bad name", "--role", "agent"], "invalid user name"),
    (["users", "revoke", "nobody"], "no user named"),
])
def test_cli_users_bad_input_is_one_clear_line(cli_env, args, needle):
    runner, _ = cli_env
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]


def test_cli_refuses_a_duplicate_user(cli_env):
    runner, _ = cli_env
    assert runner.invoke(cli, ["users", "add", "wang", "--role", "agent"]).exit_code == 0
    again = runner.invoke(cli, ["users", "add", "wang", "--role", "editor"])
    assert again.exit_code == 2 and "already exists" in again.stderr
