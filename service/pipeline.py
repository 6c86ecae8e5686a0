"""The drafting pipeline, in the order of the SOP:

    intake → mask → retrieve → classify → fill → guard → route

Each stage is a small module with one job; this file only wires them.
With an LLM configured, the fill stage's drafter also classifies: its answer is
merged into the offline classification (its category, the higher priority)
before the guard, so SLA, checks and routing judge the draft by what it says.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from time import perf_counter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from service import intake as intake_stage
from service.classify import Classification, OfflineClassifier
from service.db.models import Draft, DraftCheck, Message
from service.fill.channel import format_for_channel
from service.fill.extract import extract
from service.fill.merge import merge_classification
from service.fill.offline import FaqMatch, FilledDraft, FillRequest, candidate_templates
from service.guard import DraftContext
from service.guard.evaluate import guard_checks, personal_data_originals
from service.guard.routing import route
from service.guard.sla import SlaEngine
from service.kb import KnowledgeBase
from service.masking import Masker, MaskResult, salutation
from service.policy import Policy
from service.records import draft_record
from service.retrieval.retriever import Hit, KnowledgeRetriever
from service.schemas import DraftRecord, DraftRequest

log = logging.getLogger("draftdesk.pipeline")

FAQ_HITS = 3  # FAQ hits kept (the first may become the answer)
# A matched FAQ question says plainly what the customer asks, so the templates that fit it
# count this much in the template ranking (the message itself counts the rest).
FAQ_EVIDENCE_WEIGHT = 0.5
RERANK_DEPTH = 5  # FAQ hits an LLM rerank orders, when enabled
TEMPLATE_HITS = 10


@dataclass
class Retrieved:
    faq_hits: list[Hit]
    template_hits: list[Hit]
    faq_match: FaqMatch | None
    rerank_usage: dict[str, Any] | None = None
    category_probabilities: dict[str, float] | None = None  # the classifier model's, reused by classify


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
    reranker: object | None = None  # LlmReranker when DRAFTDESK_LLM_RERANK is on: `async rerank(...)`
    # Template hits for an FAQ question, by (question, templates checksum): few questions, many messages.
    _faq_template_hits: dict[tuple[str, str], list[Hit]] = field(default_factory=dict, repr=False)

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
                retrieved = await self.retrieve(masked.text)                        # 3 retrieve
                offline = self.classify(masked.text, message.customer_tier,         # 4 classify
                                        retrieved.category_probabilities)
                fill_request = self.fill_request(request, masked, retrieved, offline, message)
                filled = await self.drafter.fill(fill_request)                      # 5 fill
                # An LLM that answered validly classified too: its category, the higher priority.
                classification = merge_classification(offline, filled.classification)
                draft = self.guard_and_route(session, request, message, masked, retrieved,     # 6 guard
                                             classification, fill_request, filled, started)    # 7 route
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

    async def retrieve(self, masked_text: str) -> Retrieved:
        rerank_usage = None
        # What the classifier's model expects the category to be orders close FAQ candidates
        # (a soft prior, not a filter); the classify stage still decides, rules included.
        prior = self.classifier.category_probabilities(masked_text, self.retriever.query_vector(masked_text))
        if self.reranker is None:
            faq_hits = self.retriever.search("faq", masked_text, k=FAQ_HITS, category_prior=prior)
        else:  # the model orders the fused top hits; on any failure the fused order stays
            fused = self.retriever.search("faq", masked_text, k=RERANK_DEPTH, category_prior=prior)
            documents = {h.id: (e.question, e.answer) for h in fused if (e := self.knowledge.faq.get(h.id))}
            reranked = await self.reranker.rerank(masked_text, fused, documents)
            faq_hits, rerank_usage = reranked.hits[:FAQ_HITS], reranked.usage
        match = None
        # The threshold judges the hit that would answer: a rerank picks among confident hits,
        # it never promotes a weak one to an answer.
        if faq_hits and faq_hits[0].score >= self.retriever.no_answer_threshold:
            entry = self.knowledge.faq.get(faq_hits[0].id)
            if entry is not None:
                match = FaqMatch(entry.id, entry.question, entry.answer, faq_hits[0].score, entry.category)
        template_hits = self.retriever.search("templates", masked_text, k=TEMPLATE_HITS)
        if match is not None:
            template_hits = self._with_faq_evidence(template_hits, match.question)
        return Retrieved(faq_hits, template_hits, match, rerank_usage, prior)

    def prepare_template_evidence(self) -> None:
        """Rank the templates for every FAQ question now, in one batch, so no request pays for it."""
        questions = sorted({entry.question for entry in self.knowledge.faq.values()})
        checksum = self.retriever.checksum("templates")
        vectors: list = [None] * len(questions)
        if questions and self.retriever.mode != "lexical":
            vectors = list(self.retriever.query_vectors(questions))
        self._faq_template_hits.clear()
        for question, vector in zip(questions, vectors):
            self._faq_template_hits[(question, checksum)] = self.retriever.search_vector(
                "templates", question, vector, k=TEMPLATE_HITS)

    def _with_faq_evidence(self, message_hits: list[Hit], question: str) -> list[Hit]:
        """Template hits re-scored as a blend of the message's and the matched FAQ question's scores."""
        key = (question, self.retriever.checksum("templates"))
        question_hits = self._faq_template_hits.get(key)
        if question_hits is None:
            question_hits = self.retriever.search("templates", question, k=TEMPLATE_HITS)
            if len(self._faq_template_hits) > 4096:
                self._faq_template_hits.clear()
            self._faq_template_hits[key] = question_hits
        by_question = {hit.id: hit.score for hit in question_hits}
        floor = min(by_question.values(), default=0.0)  # a template outside the question's top list
        blended = [replace(hit, score=(1 - FAQ_EVIDENCE_WEIGHT) * hit.score
                           + FAQ_EVIDENCE_WEIGHT * by_question.get(hit.id, floor)) for hit in message_hits]
        return sorted(blended, key=lambda hit: -hit.score)

    def classify(self, masked_text: str, tier: str,
                 category_probabilities: dict[str, float] | None = None) -> Classification:
        return self.classifier.classify(masked_text, self.retriever.query_vector(masked_text), tier,
                                        category_probabilities)

    def fill_request(self, request: DraftRequest, masked: MaskResult, retrieved: Retrieved,
                     classification: Classification, message: Message) -> FillRequest:
        # The category's templates first (the offline drafter takes the first), then the best
        # retrieval hits of other categories, so an LLM can correct the offline category.
        candidates = candidate_templates(list(self.knowledge.templates.values()), classification.category,
                                         classification.priority, request.channel,
                                         [(hit.id, hit.score) for hit in retrieved.template_hits])
        customer_name = request.customer.name if request.customer else None
        return FillRequest(
            masked_text=masked.text, channel=request.channel, category=classification.category,
            priority=classification.priority, tier=message.customer_tier,
            customer_title=salutation(customer_name, request.text),
            extracted=extract(masked.text, request.order_id), faq=retrieved.faq_match, candidates=candidates,
        )

    def guard_and_route(self, session: Session, request: DraftRequest, message: Message, masked: MaskResult,
                        retrieved: Retrieved, classification: Classification, fill_request: FillRequest,
                        filled: FilledDraft, started: float) -> Draft:
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
            pii_originals=personal_data_originals(self.masker, request.text, customer, masked=masked),
            customer=customer, subject=formatted.subject, sms_text=formatted.sms_text,
            template_id=filled.template_id, sla_plan=plan, now=received_at, role="agent",
        )
        checks = guard_checks(context, self.policy, self.sla)
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
            reasons=list(decision.reasons), reviewer=decision.reviewer,
            llm_usage=_llm_usage(filled.usage, retrieved.rerank_usage),
        )
        # Set before the first flush: a later change would bump the optimistic-lock version.
        draft.latency_ms = round((perf_counter() - started) * 1000, 2)
        draft.checks = [DraftCheck(position=i, name=c.name, passed=c.passed, reason=c.reason, details=c.details)
                        for i, c in enumerate(checks)]
        session.add(draft)
        session.flush()
        return draft


def _llm_usage(fill: dict[str, Any] | None, rerank: dict[str, Any] | None) -> dict[str, Any] | None:
    """The fill call's usage; a rerank call's, when one was made, under "rerank"."""
    if rerank is None:
        return fill
    return {**(fill or {}), "rerank": rerank}


def _hit(hit: Hit) -> dict:
    return {"id": hit.id, "collection": hit.collection, "score": round(float(hit.score), 4),
            "title": hit.title, "category": hit.category}

