"""The draftdesk command: same record shape as the API, clear errors, knowledge import/export."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.config import get_settings
from service.schemas import DraftRecord


@pytest.fixture
def cli_env(tmp_path, index_cache, monkeypatch):
    monkeypatch.setenv("DRAFTDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("DRAFTDESK_INDEX_DIR", str(index_cache))
    monkeypatch.delenv("DRAFTDESK_LLM_BASE_URL", raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_draft_json_prints_the_api_record_shape(cli_env):
    result = cli_env.invoke(app, ["draft", "--channel", "app", "--json", "--text",
                                  "我的订单DD20240315001三天了还没发货，手机13812345678"])
    assert result.exit_code == 0, result.output
    record = DraftRecord.model_validate_json(result.stdout)
    assert record.category.value == "after_sales"
    assert "13812345678" not in result.stdout


def test_draft_human_output(cli_env):
    result = cli_env.invoke(app, ["draft", "--channel", "phone", "--text", "客户：我家热水器显示E2，洗不了澡了"])
    assert result.exit_code == 0, result.output
    assert "priority" in result.stdout and "SMS:" in result.stdout and "first response due" in result.stdout


@pytest.mark.parametrize("args, needle", [
    (["draft", "--channel", "fax", "--text", "你好"], "unknown channel"),
    (["draft", "--channel", "app", "--text", "   "], "empty"),
    (["draft", "--channel", "app", "--tier", "gold", "--text", "你好"], "tier"),
])
def test_bad_input_is_one_clear_line_and_exit_2(cli_env, args, needle):
    result = cli_env.invoke(app, args)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]


def test_kb_import_dry_run_export_and_errors(cli_env, tmp_path):
    faq = tmp_path / "more.jsonl"
    faq.write_text(json.dumps({"id": "faq-new-1", "question": "可以送货上楼吗？", "answer": "可以，大件商品免费送货上楼。",
                               "category": "inquiry", "tags": ["配送"]}, ensure_ascii=False) + "\n", encoding="utf-8")
    dry = cli_env.invoke(app, ["kb", "import", str(faq), "--dry-run"])
    assert dry.exit_code == 0 and "would import" in dry.stdout and "1 added" in dry.stdout
    exported = cli_env.invoke(app, ["kb", "export"])
    assert "faq-new-1" not in exported.stdout
    real = cli_env.invoke(app, ["kb", "import", str(faq)])
    assert real.exit_code == 0 and "imported" in real.stdout
    exported = cli_env.invoke(app, ["kb", "export"])
    ids = [json.loads(line)["id"] for line in exported.stdout.splitlines()]
    assert "faq-new-1" in ids and len(ids) >= 81

    faq.write_text('{"id": "x", "question": "", "answer": "a", "category": "inquiry"}\n', encoding="utf-8")
    bad = cli_env.invoke(app, ["kb", "import", str(faq)])
    assert bad.exit_code == 2 and "FAQ entry x" in bad.stderr
    missing = cli_env.invoke(app, ["kb", "import", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "not found" in missing.stderr


def test_db_upgrade(cli_env):
    result = cli_env.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0 and "up to date" in result.stdout


def test_db_upgrade_creates_the_database_folder_of_a_fresh_checkout(cli_env, tmp_path, monkeypatch):
    database = tmp_path / "var" / "nested" / "draftdesk.db"  # a fresh clone has no var/
    monkeypatch.setenv("DRAFTDESK_DATABASE_URL", f"sqlite:///{database}")
    get_settings.cache_clear()
    result = cli_env.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert database.exists() and "up to date" in result.stdout


def test_kb_import_checks_jargon_and_personal_data_and_is_audited(cli_env, tmp_path):
    from sqlalchemy import select

    from service.db.models import AuditEvent
    from service.db.session import make_engine, make_session_factory

    faq = tmp_path / "checked.jsonl"
    row = {"id": "faq-cli-1", "question": "大件可以送货上楼吗？", "answer": "可以，请提交工单预约。", "category": "inquiry"}
    faq.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    jargon = cli_env.invoke(app, ["kb", "import", str(faq)])
    assert jargon.exit_code == 2 and "工单" in jargon.stderr and jargon.stderr.count("\n") == 1

    faq.write_text(json.dumps({**row, "answer": "可以，请致电13812345678预约。"}, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    personal = cli_env.invoke(app, ["kb", "import", str(faq)])
    assert personal.exit_code == 2 and "personal data" in personal.stderr and "13812345678" not in personal.stderr

    faq.write_text(json.dumps({**row, "answer": "可以，大件免费送货上楼。"}, ensure_ascii=False) + "\n", encoding="utf-8")
    ok = cli_env.invoke(app, ["kb", "import", str(faq), "--author", "ops-li"])
    assert ok.exit_code == 0 and "1 added" in ok.stdout
    engine = make_engine(get_settings().database_url)
    try:
        with make_session_factory(engine)() as session:
            events = session.scalars(select(AuditEvent).where(AuditEvent.target_id == "faq-cli-1")).all()
            assert [(e.action, e.actor, e.after["answer"]) for e in events] == [
                ("knowledge.import", "ops-li", "可以，大件免费送货上楼。")]
    finally:
        engine.dispose()
