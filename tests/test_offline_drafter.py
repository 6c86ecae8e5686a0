"""The offline drafter's values: which FAQ answer may stand in which kind of draft."""
from __future__ import annotations

import asyncio

import pytest

from service.config import PROJECT_ROOT
from service.fill.extract import extract
from service.fill.offline import FALLBACK_ANSWER, FALLBACK_SUMMARY, FaqMatch, FillRequest, standard_values
from service.policy import load_policy

POLICY = load_policy(PROJECT_ROOT / "knowledge" / "policy.yaml")

INSTALL_FEE_FAQ = FaqMatch("faq_install_fee", "空调安装要另外收费吗？",
                           "标准安装免费；超出标准的铜管和支架按公示价格收费，师傅会先告知再施工。", 0.93, "inquiry")
REPAIR_FAQ = FaqMatch("faq_e3", "洗衣机显示E3怎么办？", "E3表示排水超时，请先清理排水过滤器后重新启动。", 0.92,
                      "after_sales")


def request(category: str, faq: FaqMatch | None, text: str = "空调安装师傅要加收费用") -> FillRequest:
    return FillRequest(masked_text=text, channel="app", category=category, priority="medium", tier="regular",
                       customer_title="您", extracted=extract(text), faq=faq, candidates=[])


@pytest.mark.parametrize("category", ["inquiry", "after_sales"])
def test_questions_and_after_sales_share_answers_and_name_the_question(category):
    values = standard_values(request(category, INSTALL_FEE_FAQ), POLICY)
    assert values["faq_answer"] == INSTALL_FEE_FAQ.answer
    assert values["issue_summary"] == "“空调安装要另外收费吗”"


def test_a_complaint_is_never_summarised_as_a_stock_question():
    values = standard_values(request("complaint", REPAIR_FAQ, "修了三次还是E3，你们太敷衍了"), POLICY)
    assert "E3" in values["issue_summary"]  # the fault code the customer named stays
    values = standard_values(request("complaint", INSTALL_FEE_FAQ), POLICY)
    assert values["issue_summary"] == FALLBACK_SUMMARY["complaint"]


def test_a_complaint_does_not_quote_an_inquiry_answer_but_may_use_a_repair_one():
    assert standard_values(request("complaint", INSTALL_FEE_FAQ), POLICY)["faq_answer"] == FALLBACK_ANSWER["complaint"]
    assert standard_values(request("complaint", REPAIR_FAQ), POLICY)["faq_answer"] == REPAIR_FAQ.answer


def test_a_suggestion_only_takes_a_suggestion_answer():
    values = standard_values(request("suggestion", INSTALL_FEE_FAQ, "建议安装费写清楚"), POLICY)
    assert values["faq_answer"] == FALLBACK_ANSWER["suggestion"]
    assert values["issue_summary"] == FALLBACK_SUMMARY["suggestion"]


def test_a_match_without_a_category_is_trusted_as_before():
    uncategorised = FaqMatch("x", "发票怎么开？", "在订单详情页申请电子发票。", 0.9)
    assert standard_values(request("inquiry", uncategorised), POLICY)["faq_answer"] == uncategorised.answer


# --- template choice: the message and the matched FAQ question together ---

def test_template_evidence_for_every_faq_question_is_ready_before_the_first_request(shared_runtime):
    pipeline = shared_runtime.pipeline
    checksum = pipeline.retriever.checksum("templates")
    questions = {entry.question for entry in pipeline.knowledge.faq.values()}
    ready = {question for question, key in pipeline._faq_template_hits if key == checksum}
    assert questions <= ready
    question = sorted(questions)[0]
    prepared = [(hit.id, round(hit.score, 4)) for hit in pipeline._faq_template_hits[(question, checksum)]]
    searched = [(hit.id, round(hit.score, 4)) for hit in pipeline.retriever.search("templates", question, k=10)]
    assert prepared == searched  # the batch gives what a request would have computed


def test_the_faq_question_breaks_a_near_tie_between_templates(shared_runtime):
    pipeline = shared_runtime.pipeline
    message = "我的订单DD20240315001三天了还没发货，手机138****5678"
    retrieved = asyncio.run(pipeline.retrieve(message))
    assert retrieved.faq_match is not None
    after_sales = [hit.id for hit in retrieved.template_hits if hit.category == "after_sales"]
    assert after_sales[0] == "order_progress"
