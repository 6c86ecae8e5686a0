"""The shipped knowledge is complete and valid, and the store versions every change."""
from __future__ import annotations

import itertools
import json

import pytest
from sqlalchemy import select

from service import kb
from service.config import PROJECT_ROOT
from service.db.models import KnowledgeEntry
from service.db.session import make_engine, make_session_factory, upgrade
from service.policy import CATEGORIES, PRIORITIES, load_policy

KNOWLEDGE = PROJECT_ROOT / "knowledge"
SOP_TEMPLATES = {"产品功能说明", "价格政策解释", "紧急投诉安抚", "服务失误补偿方案", "订单进度查询", "退换货处理进度",
                 "反馈收集确认", "改进方案同步"}


@pytest.fixture(scope="module")
def files():
    return kb.load_files(KNOWLEDGE)


def test_templates_cover_the_sop_and_every_category_priority(files):
    names = {t.name for t in files.templates.values()}
    assert SOP_TEMPLATES <= names
    assert len(files.templates) >= 20
    for category, priority in itertools.product(CATEGORIES, PRIORITIES):
        assert any(t.category == category and priority in t.priorities for t in files.templates.values()), (category, priority)


def test_every_template_renders_with_its_declared_placeholders(files):
    for template in files.templates.values():
        values = {name: f"<{name}>" for name in template.placeholders}
        text = template.render(values)
        assert all(f"<{name}>" in text for name in template.placeholders)


def test_a_missing_or_empty_value_is_caught_never_printed_blank(files):
    template = next(t for t in files.templates.values() if "order_ref" in t.placeholders)
    values = {name: "x" for name in template.placeholders}
    with pytest.raises(kb.KnowledgeError, match="order_ref"):
        template.render({k: v for k, v in values.items() if k != "order_ref"})
    with pytest.raises(kb.KnowledgeError, match="empty value for order_ref"):
        template.render(dict(values, order_ref="  "))


def test_template_validation_names_the_problem():
    base = {"id": "t1", "name": "测试", "category": "inquiry", "priorities": ["low"], "channels": ["app"],
            "placeholders": ["customer_title"], "body": "{{ customer_title }}，您好！"}
    assert kb.parse_template(base).id == "t1"
    with pytest.raises(kb.KnowledgeError, match="unknown variables"):
        kb.parse_template(dict(base, body="{{ customer_title }} {{ secret }}", placeholders=["customer_title", "secret"]))
    with pytest.raises(kb.KnowledgeError, match="do not match"):
        kb.parse_template(dict(base, placeholders=["customer_title", "deadline"]))
    with pytest.raises(kb.KnowledgeError, match="syntax"):
        kb.parse_template(dict(base, body="{{ customer_title "))
    with pytest.raises(kb.KnowledgeError, match="category"):
        kb.parse_template(dict(base, category="praise"))


def test_faq_and_examples(files):
    assert len(files.faq) >= 80
    assert all(e.category in CATEGORIES and e.question and e.answer for e in files.faq.values())
    assert len(files.examples) >= 200
    for row in files.examples:
        assert row["gold"]["category"] in CATEGORIES and row["gold"]["priority"] in PRIORITIES
        for secret in row["gold"].get("must_not_contain", []):
            assert secret in row["text"] or secret == (row.get("customer") or {}).get("name")


def test_policy_loads_and_has_no_jargon_in_templates_or_answers(files):
    policy = load_policy(KNOWLEDGE / "policy.yaml")
    texts = [t.body for t in files.templates.values()] + [e.answer for e in files.faq.values()]
    for term in policy.jargon:
        assert not any(term in text for text in texts), term


def test_bad_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "faq.jsonl"
    path.write_text('{"id": "a", "question": "q", "answer": "a", "category": "inquiry"}\n{oops\n', encoding="utf-8")
    with pytest.raises(kb.KnowledgeError, match=r"faq.jsonl:2"):
        kb.load_faq_file(path)
    path.write_text('{"id": "a", "question": "q", "answer": "a", "category": "chat"}\n', encoding="utf-8")
    with pytest.raises(kb.KnowledgeError, match="FAQ entry a: category"):
        kb.load_faq_file(path)


def test_import_versions_changes_and_dry_run_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'kb.db'}"
    upgrade(url)
    sessions = make_session_factory(make_engine(url))
    entry = {"id": "f1", "question": "能开发票吗", "answer": "可以，在订单详情里申请。", "category": "inquiry",
             "tags": [], "similar_questions": []}
    with sessions() as session:
        assert kb.import_entries(session, "faq", [entry]).added == ["f1"]
        changed = dict(entry, answer="可以，在“我的-订单-申请开票”里申请。")
        report = kb.import_entries(session, "faq", [changed], dry_run=True)
        assert report.changed == ["f1"]
        assert kb.live_entries(session, "faq") == [entry]
        kb.import_entries(session, "faq", [changed], author="editor-1")
        assert kb.import_entries(session, "faq", [changed]).unchanged == ["f1"]
        assert kb.live_entries(session, "faq") == [changed]
        versions = session.scalars(select(KnowledgeEntry).where(KnowledgeEntry.entry_id == "f1")).all()
        assert [(v.version, v.author) for v in versions] == [(1, "system"), (2, "editor-1")]
    json.dumps(report.as_dict())


def test_json_lines_skip_blank_lines_and_name_the_first_bad_one():
    from service.jsonl import JsonlError, json_objects

    assert list(json_objects(['{"id": "a"}', "", "  ", '{"id": "b"}'])) == [(1, {"id": "a"}), (4, {"id": "b"})]
    with pytest.raises(JsonlError) as bad_json:
        list(json_objects(['{"id": "a"}', "{oops"]))
    assert bad_json.value.line == 2 and "not valid JSON" in str(bad_json.value)
    with pytest.raises(JsonlError) as not_object:
        list(json_objects(["[1, 2]"]))
    assert not_object.value.line == 1 and "JSON object" in not_object.value.problem
