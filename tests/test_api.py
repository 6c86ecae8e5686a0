"""The HTTP API end to end, on the real offline providers."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from tests.conftest import bearer

CURL_EXAMPLE = {"channel": "app", "text": "我的订单DD20240315001三天了还没发货，手机13812345678"}


@pytest.fixture(scope="module")
def client(shared_runtime, shared_tokens):
    """An agent's client: drafts need a bearer token."""
    app = create_app(shared_runtime.settings, runtime=shared_runtime)
    with TestClient(app, headers=bearer(shared_tokens["agent"])) as test_client:
        yield test_client


def test_readme_example_gives_a_checked_chinese_draft(client):
    response = client.post("/v1/drafts", json=CURL_EXAMPLE)
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["category"]["value"] == "after_sales"
    assert record["category"]["source"]
    assert "DD20240315001" in record["draft"]
    # "还没发货" is an order-progress question (the matched FAQ says so), not a change of order details
    assert record["template_id"] == "order_progress"
    assert "13812345678" not in response.text  # the full phone appears nowhere in the record
    assert "138****5678" in record["masked_message"]
    assert re.search(r"[\u4e00-\u9fff]{10,}", record["draft"])
    assert record["sla"]["first_response_due"]
    assert {c["name"] for c in record["checks"]} >= {
        "personal_data", "placeholders", "promised_time", "jargon", "commitments", "tone", "language",
        "channel_format"}
    assert all(isinstance(c["passed"], bool) and c["reason"] for c in record["checks"])
    assert record["status"] in {"ready", "flagged"}
    assert record["flagged"] == (record["status"] == "flagged")
    assert record["knowledge_hits"] and all("score" in h for h in record["knowledge_hits"])


def test_record_can_be_read_back_and_listed(client):
    created = client.post("/v1/drafts", json={"channel": "web", "text": "你们的空调有没有一级能效的型号？",
                                               "customer": {"name": "李娜", "tier": "regular"}}).json()
    fetched = client.get(f"/v1/drafts/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created
    assert "李娜" not in fetched.text
    assert created["version"] == 1 and fetched.headers["etag"] == '"1"'  # a new draft starts at version 1
    page = client.get("/v1/drafts", params={"category": created["category"]["value"], "limit": 1}).json()
    assert page["limit"] == 1 and len(page["items"]) == 1 and page["total"] >= 1
    assert all(item["category"]["value"] == created["category"]["value"] for item in page["items"])


def test_same_client_message_id_returns_same_draft(client):
    body = dict(CURL_EXAMPLE, client_message_id="msg-idem-1")
    first = client.post("/v1/drafts", json=body).json()
    second = client.post("/v1/drafts", json=body).json()
    assert first["id"] == second["id"]
    listed = client.get("/v1/drafts", params={"limit": 200}).json()["items"]
    assert sum(1 for item in listed if item["client_message_id"] == "msg-idem-1") == 1


@pytest.mark.parametrize("body, needle", [
    ({"channel": "app", "text": ""}, "empty"),
    ({"channel": "app", "text": "   \n\t "}, "empty"),
    ({"channel": "app", "text": "好" * 5001}, "limit is 5000"),
    ({"channel": "fax", "text": "你好"}, "unknown channel"),
    ({"text": "你好"}, "channel"),
    ({"channel": "app", "text": "你好", "customer": {"tier": "gold"}}, "tier"),
    ({"channel": "app", "text": "你好", "surprise": 1}, "surprise"),
])
def test_bad_requests_get_a_clear_422(client, body, needle):
    response = client.post("/v1/drafts", json=body)
    assert response.status_code == 422
    assert needle in response.json()["error"]


def test_malformed_json_is_refused_and_nothing_is_stored(client):
    before = client.get("/v1/drafts").json()["total"]
    response = client.post("/v1/drafts", content=b'{"channel": "app", "text": ', headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "json" in response.json()["error"].lower()
    assert client.get("/v1/drafts").json()["total"] == before


def test_unknown_draft_and_bad_filters(client):
    assert client.get("/v1/drafts/nope").status_code == 404
    assert "no draft" in client.get("/v1/drafts/nope").json()["error"]
    assert client.get("/v1/drafts", params={"category": "spam"}).status_code == 422
    assert client.get("/v1/drafts", params={"priority": "p0"}).status_code == 422


def test_health_readiness_console_and_docs(client):
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"database": True, "index": True, "status": "ready"}
    console = client.get("/")
    assert console.status_code == 200 and "生成草稿" in console.text
    assert "/v1/drafts" in client.get("/openapi.json").json()["paths"]


def test_readiness_reports_a_lost_database(shared_runtime):
    from sqlalchemy import create_engine

    app = create_app(shared_runtime.settings, runtime=shared_runtime)
    with TestClient(app) as test_client:
        original = shared_runtime.engine
        shared_runtime.engine = create_engine("sqlite:////nonexistent-dir/x.db")
        try:
            response = test_client.get("/readyz")
        finally:
            shared_runtime.engine = original
    assert response.status_code == 503 and response.json()["database"] is False
