"""The deterministic offline drafter: same input, same draft.

It picks the best-ranked template for the category and priority, and fills
every placeholder from the customer record, values in the message, the SLA
policy and the matched FAQ answer. The LLM drafter supplies the same values
by other means and renders through the same `Template.render`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.fill.extract import Extracted
from service.kb import Template
from service.policy import Duration, Policy

_UNIT_WORDS = {
    "seconds": "秒", "minutes": "分钟", "hours": "小时", "days": "天",
    "work_hours": "个工作小时", "work_days": "个工作日",
}

FALLBACK_ANSWER = {
    "inquiry": "我们已记录您的问题，专员会核实具体情况后给您准确答复。",
    "after_sales": "我们已登记您的售后需求，专员正在核实处理。",
    "complaint": "我们已将您反映的情况交由专人核实处理。",
    "suggestion": "您的建议我们已完整记录，并会转交相关团队评估。",
}
FALLBACK_SUMMARY = {
    "inquiry": "您咨询的问题",
    "after_sales": "您反映的售后问题",
    "complaint": "您反映的情况",
    "suggestion": "您提出的建议",
}
PERSONAL_NOTE = {
    "inquiry": "希望能帮到您。",
    "after_sales": "给您添麻烦了，我们会尽快帮您处理好。",
    "complaint": "这次的经历让您不满意，我们真的很抱歉。",
    "suggestion": "谢谢您花时间告诉我们您的想法。",
}


def duration_phrase(duration: Duration) -> str:
    amount = int(duration.amount) if float(duration.amount).is_integer() else duration.amount
    return f"{amount}{_UNIT_WORDS[duration.unit]}内"


def followup_sentence(policy: Policy, priority: str, category: str) -> str:
    sentences = []
    for rule in policy.followups:
        if rule.when_priority and priority not in rule.when_priority:
            continue
        if rule.when_category and category not in rule.when_category:
            continue
        if rule.customer_text:
            phrase = duration_phrase(Duration(amount=rule.amount, unit=rule.unit))
            sentences.append(rule.customer_text.format(duration=phrase))
    return "".join(sentences) or "如有新的情况，欢迎随时联系我们。"


# FAQ categories whose answers may stand in a draft of the category: an inquiry and an
# after-sales question often share an answer (how to return, how long a refund takes), while a
# complaint or a suggestion quoting an unrelated how-to answer reads as not listening.
FAQ_CATEGORIES_FOR = {
    "inquiry": {"inquiry", "after_sales"},
    "after_sales": {"after_sales", "inquiry"},
    "complaint": {"complaint", "after_sales"},
    "suggestion": {"suggestion"},
}
# Categories whose drafts may name the matched FAQ question as the customer's issue; a
# complaint is summarised in its own terms, never as a stock question.
SUMMARY_FROM_FAQ = {"inquiry", "after_sales"}


@dataclass
class FaqMatch:
    id: str
    question: str
    answer: str
    score: float
    category: str | None = None  # None: trusted for any category (e.g. a caller without one)

    def fits(self, category: str) -> bool:
        return self.category is None or self.category in FAQ_CATEGORIES_FOR.get(category, {category})


@dataclass
class FillRequest:
    masked_text: str
    channel: str
    category: str
    priority: str
    tier: str
    customer_title: str
    extracted: Extracted
    faq: FaqMatch | None
    # Candidate templates, best first: the category's own (ranked by `rank_templates`), then
    # the best retrieval hits of other categories, so an LLM can correct the offline category.
    candidates: list[Template]


@dataclass
class FilledDraft:
    text: str
    template_id: str
    values: dict[str, str]
    drafter: str = "offline"
    usage: dict[str, Any] | None = None
    degraded: list[tuple[str, str]] = field(default_factory=list)  # (flag, reason)
    classification: dict[str, Any] | None = None  # an LLM's own category/priority, when it gave one


def standard_values(request: FillRequest, policy: Policy) -> dict[str, str]:
    """Every variable a template may use, from data only (no model)."""
    targets = policy.sla[request.priority]
    extracted = request.extracted
    faq = request.faq if request.faq is not None and request.faq.fits(request.category) else None
    summary = FALLBACK_SUMMARY[request.category]
    if extracted.fault_code:
        summary = f"{extracted.fault_code}故障提示"
    elif faq is not None and request.category in SUMMARY_FROM_FAQ:
        summary = f"“{faq.question.rstrip('？?。！! ')}”"
    return {
        "customer_title": request.customer_title,
        "order_ref": f"订单{extracted.order_id}" if extracted.order_id else "您的订单",
        "product_ref": extracted.product_model or "您购买的商品",
        "issue_summary": summary,
        "faq_answer": faq.answer if faq is not None else FALLBACK_ANSWER[request.category],
        "deadline": duration_phrase(targets.first_response),
        "resolution_deadline": duration_phrase(targets.resolution),
        "followup": followup_sentence(policy, request.priority, request.category),
        "compensation": policy.compensation.default_offer.get(request.tier)
        or policy.compensation.default_offer.get("regular", "一张优惠券"),
        "agent_contact": policy.agent.default_contact,
        "team_name": policy.agent.team_name,
        "personal_note": PERSONAL_NOTE[request.category],
    }


class OfflineDrafter:
    name = "offline"

    def __init__(self, policy: Policy):
        self.policy = policy

    async def fill(self, request: FillRequest) -> FilledDraft:
        # The best candidate of the request's category; other categories are there for an LLM.
        template = next((t for t in request.candidates if t.category == request.category), None)
        if template is None:
            raise LookupError(f"no template for category {request.category}")
        values = standard_values(request, self.policy)
        used = {name: values[name] for name in template.placeholders}
        return FilledDraft(text=template.render(used), template_id=template.id, values=used)


def rank_templates(templates: list[Template], category: str, priority: str, channel: str,
                   scores: dict[str, float]) -> list[Template]:
    """Templates of the category that suit the channel; those made for the priority first,
    then by retrieval score, then by id so ties are stable."""
    eligible = [t for t in templates if t.category == category and channel in t.channels]
    if not eligible:
        eligible = [t for t in templates if t.category == category]
    return sorted(eligible, key=lambda t: (priority not in t.priorities, -scores.get(t.id, 0.0), t.id))


def candidate_templates(templates: list[Template], category: str, priority: str, channel: str,
                        hits: list[tuple[str, float]], *, own: int = 8, others: int = 4) -> list[Template]:
    """The templates a drafter may choose from, best first.

    Up to `own` of the category ranked by `rank_templates` (so the first is the
    offline drafter's choice), then up to `others` of other categories that suit
    the channel, in retrieval order (`hits`: (template id, score), best first).
    """
    scores = dict(hits)
    ranked = rank_templates(templates, category, priority, channel, scores)[:own]
    by_id = {t.id: t for t in templates}
    taken = {t.id for t in ranked}
    extra: list[Template] = []
    for template_id, _ in hits:
        if len(extra) >= others:
            break
        template = by_id.get(template_id)
        if template is None or template.id in taken or template.category == category:
            continue
        if channel in template.channels:
            taken.add(template.id)
            extra.append(template)
    return ranked + extra
