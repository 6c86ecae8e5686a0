"""Persistence on SQLite and PostgreSQL: migrations, intake before models, idempotency, nothing lost."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect, select

from service.db.models import Draft, DraftCheck, Message
from service.runtime import build_runtime
from service.schemas import DraftRequest
from tests.conftest import make_settings


@pytest.fixture
def runtime(database_url, index_cache):
    rt = build_runtime(make_settings(database_url, index_cache))
    yield rt
    rt.engine.dispose()


def test_migrations_create_every_table(runtime):
    tables = set(inspect(runtime.engine).get_table_names())
    assert {"messages", "drafts", "draft_checks", "review_actions", "knowledge_entries", "alembic_version"} <= tables


def test_draft_is_stored_with_its_checks(runtime):
    request = DraftRequest(channel="email", text="主题：发票抬头开错了\n订单YJ202405120034开的发票抬头写错了，麻烦重开。",
                           customer={"name": "王芳", "phone": "13900001111", "tier": "regular"})
    record = asyncio.run(runtime.pipeline.draft(request))
    with runtime.sessions() as session:
        draft = session.get(Draft, record.id)
        assert draft is not None and draft.message.status == "drafted"
        assert draft.message.raw_text == request.text  # the audit copy, in its own column
        assert "王芳" not in (draft.message.masked_text or "") and "王芳" not in draft.text
        checks = session.scalars(select(DraftCheck).where(DraftCheck.draft_id == record.id)).all()
        assert len(checks) == len(record.checks) >= 8
    assert record.subject and record.subject.startswith("【客户服务回复】")


def test_message_is_committed_before_any_model_runs(runtime, monkeypatch):
    seen = {}

    def exploding_classify(masked_text, tier, category_probabilities=None):
        # Another connection must already see the message: it was committed at intake.
        with runtime.sessions() as other:
            seen["rows"] = other.scalars(select(Message).where(Message.client_message_id == "cm-crash")).all()
        raise RuntimeError("classifier crashed")

    monkeypatch.setattr(runtime.pipeline, "classify", exploding_classify)
    request = DraftRequest(channel="app", text="APP登录不了，一直提示验证码错误", client_message_id="cm-crash")
    with pytest.raises(RuntimeError):
        asyncio.run(runtime.pipeline.draft(request))
    assert len(seen["rows"]) == 1 and seen["rows"][0].status == "received"
    with runtime.sessions() as session:
        message = session.scalar(select(Message).where(Message.client_message_id == "cm-crash"))
        assert message.status == "failed" and "classifier crashed" in message.error
        assert message.raw_text == request.text
        assert session.scalars(select(Draft).where(Draft.message_id == message.id)).all() == []

    # Retrying the same message after the fault drafts it, on the same stored row.
    monkeypatch.undo()
    record = asyncio.run(runtime.pipeline.draft(request))
    assert record.message_id == message.id


def test_idempotent_on_client_message_id(runtime):
    request = DraftRequest(channel="wechat", text="会员积分什么时候过期？", client_message_id="cm-1")
    first = asyncio.run(runtime.pipeline.draft(request))
    second = asyncio.run(runtime.pipeline.draft(request))
    assert first.id == second.id
    with runtime.sessions() as session:
        assert len(session.scalars(select(Message).where(Message.client_message_id == "cm-1")).all()) == 1
