"""The drafting pipeline, in the order of the SOP:

    intake → mask → retrieve → classify → fill → guard → route

Each stage is a small module with one job; this file only wires them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from time import perf_counter
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from service import intake as intake_stage
from service.classify import Classification, OfflineClassifier
from service.db.models import Draft, DraftCheck, Message
from service.fill.channel import format_for_channel
from service.fill.extract import extract
from service.fill.offline import FaqMatch, FilledDraft, FillRequest, rank_templates
from service.guard import DraftContext
from service.guard.checks import run_checks
from service.guard.promises import check_promised_times
from service.guard.routing import route
from service.guard.sla import SlaEngine
from service.kb import KnowledgeBase
from service.masking import Masker, MaskResult, salutation
from service.policy import Policy
from service.records import draft_record
from service.retrieval.retriever import Hit, KnowledgeRetriever
from service.schemas import DraftRecord, DraftRequest

log = logging.getLogger("draftdesk.pipeline")


@dataclass
class Retrieved:
    faq_hits: list[Hit]
    template_hits: list[Hit]
    faq_match: FaqMatch | None


@dataclass
class Pipeline:
    policy: Policy
    knowledge: KnowledgeBase
    masker: Masker
    retriever: KnowledgeRetriever
    classifier: OfflineClassifier
    drafter: object  # OfflineDrafter or LLM drafter: `async fill(FillRequest) -> FilledDraft`
    sla: SlaEngine
    sessions: sessionmaker[Session]

    async def draft(self, request: DraftRequest) -> DraftRecord:
        started = perf_counter()
        with self.sessions() as session:
            received = intake_stage.receive(session, request)                      # 1 intake
            if received.existing_draft is not None:
                return draft_record(received.existing_draft)
            message = received.message
            try:
                masked = self.mask(request)                                         # 2 mask
                intake_stage.store_masked(session, message, masked.text)
                retrieved = self.retrieve(masked.text)                              # 3 retrieve
                classification = self.classify(masked.text, message.customer_tier)  # 4 classify
                fill_request = self.fill_request(request, masked, retrieved, classification, message)
                filled = await self.drafter.fill(fill_request)                      # 5 fill
                draft = self.guard_and_route(session, request, message, masked, retrieved,     # 6 guard
                                             classification, fill_request, filled)             # 7 route
                draft.latency_ms = round((perf_counter() - started) * 1000, 2)
                message.status = "drafted"
                session.commit()
            except Exception as exc:
                log.exception("drafting failed for message %s", message.id)
                intake_stage.mark_failed(session, message, f"{type(exc).__name__}: {exc}")
                raise
            return draft_record(draft)

    # --- stages -----------------------------------------------------------

    def mask(self, request: DraftRequest) -> MaskResult:
        customer = request.customer.model_dump() if request.customer else None
        return self.masker.mask(request.text, customer)

    def retrieve(self, masked_text: str) -> Retrieved:
        faq_hits = self.retriever.search("faq", masked_text, k=3)
        template_hits = self.retriever.search("templates", masked_text, k=10)
        match = None
        if faq_hits and faq_hits[0].score >= self.retriever.no_answer_threshold:
            entry = self.knowledge.faq.get(faq_hits[0].id)
            if entry is not None:
                match = FaqMatch(entry.id, entry.question, entry.answer, faq_hits[0].score)
        return Retrieved(faq_hits, template_hits, match)

    def classify(self, masked_text: str, tier: str) -> Classification:
        return self.classifier.classify(masked_text, self.retriever.embed_query(masked_text), tier)

    def fill_request(self, request: DraftRequest, masked: MaskResult, retrieved: Retrieved,
                     classification: Classification, message: Message) -> FillRequest:
        scores = {hit.id: hit.score for hit in retrieved.template_hits}
        candidates = rank_templates(list(self.knowledge.templates.values()), classification.category,
                                    classification.priority, request.channel, scores)
        customer_name = request.customer.name if request.customer else None
        return FillRequest(
            masked_text=masked.text, channel=request.channel, category=classification.category,
            priority=classification.priority, tier=message.customer_tier,
            customer_title=salutation(customer_name, request.text),
            extracted=extract(masked.text, request.order_id), faq=retrieved.faq_match, candidates=candidates,
        )

    def guard_and_route(self, session: Session, request: DraftRequest, message: Message, masked: MaskResult,
                        retrieved: Retrieved, classification: Classification, fill_request: FillRequest,
                        filled: FilledDraft) -> Draft:
        template = self.knowledge.templates.get(filled.template_id)
        formatted = format_for_channel(
            filled.text, channel=request.channel, category=classification.category,
            order_id=fill_request.extracted.order_id,
            template_name=template.name if template else None, message_text=request.text, policy=self.policy,
        )
        received_at = message.received_at.astimezone(ZoneInfo(self.policy.timezone))
        plan = self.sla.plan(classification.priority, classification.category, request.channel, received_at)
        customer = request.customer.model_dump() if request.customer else {}
        context = DraftContext(
            draft_text=formatted.text, channel=request.channel, category=classification.category,
            priority=classification.priority, confidence=classification.category_confidence,
            message_text=request.text, masked_text=masked.text,
            pii_originals=sorted(set(masked.originals()) | set(self.masker.customer_originals(customer)), key=len, reverse=True),
            customer=customer, subject=formatted.subject, sms_text=formatted.sms_text,
            template_id=filled.template_id, sla_plan=plan, now=received_at, role="agent",
        )
        promised = check_promised_times(formatted.text, plan, received_at, self.sla)
        checks = run_checks(context, self.policy, extra=[promised])
        decision = route(checks, classification.priority, classification.category_confidence, self.policy,
                         extra_flags=list(filled.degraded))

        draft = Draft(
            message_id=message.id, status=decision.status,
            category=classification.category, category_source=classification.category_source,
            category_confidence=classification.category_confidence,
            priority=classification.priority, priority_source=classification.priority_source,
            priority_confidence=classification.priority_confidence,
            template_id=filled.template_id, drafter=filled.drafter,
            text=formatted.text, subject=formatted.subject, sms_text=formatted.sms_text,
            knowledge_hits=[_hit(h) for h in retrieved.faq_hits + retrieved.template_hits[:3]],
            sla=plan.to_dict(), flagged=decision.status == "flagged", flags=list(decision.flags),
            reasons=list(decision.reasons), reviewer=decision.reviewer, llm_usage=filled.usage,
        )
        draft.checks = [DraftCheck(position=i, name=c.name, passed=c.passed, reason=c.reason, details=c.details)
                        for i, c in enumerate(checks)]
        session.add(draft)
        session.flush()
        return draft


def _hit(hit: Hit) -> dict:
    return {"id": hit.id, "collection": hit.collection, "score": round(float(hit.score), 4),
            "title": hit.title, "category": hit.category}

