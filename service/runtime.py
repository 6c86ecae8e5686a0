"""Assemble the pipeline from configuration: the one place providers are chosen."""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from service import kb
from service.classify import OfflineClassifier
from service.config import Settings
from service.db.session import make_engine, make_session_factory, upgrade
from service.fill.offline import OfflineDrafter
from service.guard.sla import SlaEngine
from service.masking import Masker
from service.pipeline import Pipeline
from service.policy import Policy, load_policy
from service.policy_admin.service import stored_policy
from service.retrieval.embedders import Embedder, get_embedder
from service.retrieval.retriever import KnowledgeRetriever, query_for_embedding

log = logging.getLogger("draftdesk.runtime")


@dataclass
class PolicyParts:
    """Everything built from a policy; a runtime swaps all of them in at once."""
    policy: Policy
    masker: Masker
    example_texts: list[str]
    example_vectors: np.ndarray
    classifier: OfflineClassifier
    drafter: object
    sla: SlaEngine
    reranker: object | None


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    policy: Policy
    embedder: Embedder
    pipeline: Pipeline
    # The labeled examples as the classifier was trained on them (masked, embedded), kept so a
    # policy change need not embed them again.
    examples: list[dict[str, Any]] = field(default_factory=list)
    example_texts: list[str] = field(default_factory=list)
    example_vectors: np.ndarray | None = None

    def reload_knowledge(self) -> None:
        """Make the database's live knowledge the pipeline's (after imports or edits)."""
        with self.sessions() as session:
            knowledge = kb.load_from_db(session, self.settings.knowledge_dir)
        self.pipeline.retriever.build(knowledge.faq_dicts(), knowledge.template_dicts())
        self.pipeline.knowledge = knowledge
        self.pipeline.prepare_template_evidence()

    def prepare_policy(self, policy: Policy) -> PolicyParts:
        """Build every policy-dependent part for `policy` without touching the running ones."""
        # Masking rules decide the examples' masked texts; otherwise the embedded ones still hold.
        embedded = None
        if policy.masking == self.policy.masking and self.example_vectors is not None:
            embedded = (self.example_texts, self.example_vectors)
        return build_policy_parts(self.settings, policy, self.examples, self.embedder, self.pipeline.retriever,
                                  embedded)

    def apply_policy(self, policy: Policy, prepared: PolicyParts | None = None) -> None:
        """Make `policy` the one the next request uses. A failure while building leaves the old one in place.

        `prepared`: the parts `prepare_policy(policy)` built already.
        """
        parts = prepared if prepared is not None else self.prepare_policy(policy)
        pipeline = self.pipeline
        # Only attribute swaps from here: nothing can fail half-way. A replaced LLM client is left to the
        # garbage collector: a request in flight may still be using it.
        pipeline.masker, pipeline.classifier, pipeline.drafter = parts.masker, parts.classifier, parts.drafter
        pipeline.sla, pipeline.reranker, pipeline.policy = parts.sla, parts.reranker, parts.policy
        self.example_texts, self.example_vectors = parts.example_texts, parts.example_vectors
        self.policy = parts.policy


def build_drafter(settings: Settings, policy: Policy, few_shot=None):
    """The offline drafter, or the LLM drafter (offline as its fallback) when configured.

    `few_shot`: a picker `masked text -> labeled rows (masked)` for the prompt's examples.
    """
    offline = OfflineDrafter(policy)
    if not settings.llm_enabled:
        return offline
    from service.llm.drafter import LlmDrafter  # imported only when configured

    return LlmDrafter(settings, policy, fallback=offline, few_shot=few_shot)


def build_reranker(settings: Settings, policy: Policy):
    """The LLM rerank of FAQ hits, when an LLM is configured and DRAFTDESK_LLM_RERANK is on."""
    if not (settings.llm_enabled and settings.llm_rerank):
        return None
    from service.llm.rerank import LlmReranker  # imported only when configured

    return LlmReranker(settings, team_name=policy.agent.team_name)


def embed_examples(examples: list[dict], masker: Masker, embedder: Embedder,
                   cache_dir: Path | None) -> tuple[list[str], np.ndarray]:
    """The labeled examples' masked texts and their query vectors (cached by content)."""
    # The index sees masked text only, examples included.
    texts = [masker.mask(row["text"], row.get("customer")).text for row in examples]
    # Normalised as a message is (`KnowledgeRetriever.query_vector`), but whole: the classifier
    # learns more from the full example than from its first line (measured on the dev set).
    embedded = [query_for_embedding(text, max_chars=None) for text in texts]
    digest = hashlib.sha256(json.dumps([embedder.name, embedded], ensure_ascii=False).encode()).hexdigest()[:16]
    cache = cache_dir / f"examples-{digest}.npy" if cache_dir else None
    if cache is not None and cache.exists():
        vectors = np.load(cache)
    else:
        vectors = embedder.embed_queries(embedded) if texts else np.zeros((0, embedder.dim), dtype=np.float32)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npy")
            np.save(tmp, vectors)
            tmp.replace(cache)
    return texts, vectors


def category_prior_for_eval(settings: Settings, embedder: Embedder):
    """`(text, vector) -> category probabilities` as the retrieve stage computes them: the
    offline classifier trained on the labeled examples, reading the masked text."""
    policy = load_policy(settings.policy_path)
    examples = kb.read_jsonl(settings.knowledge_dir / "examples.jsonl")
    masker = Masker(policy.masking or None)
    texts, vectors = embed_examples(examples, masker, embedder, settings.index_dir)
    classifier = OfflineClassifier(policy, texts, examples, vectors)
    return lambda text, vector: classifier.category_probabilities(masker.mask(text).text, vector)


def build_runtime(settings: Settings, progress: bool = False, migrate: bool = True,
                  faq_path: Path | None = None, persist_index: bool = True) -> Runtime:
    """Database (migrated and seeded), knowledge, providers and the pipeline.

    `faq_path` replaces the knowledge base for this run only (eval), with the index kept in memory.
    """
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade(settings.database_url)
    sessions = make_session_factory(engine)
    if faq_path is not None:  # an eval run: the files only
        policy = load_policy(settings.policy_path)
        knowledge = kb.load_files(settings.knowledge_dir, faq_path=faq_path)
    else:
        with sessions() as session:
            if kb.seed_if_empty(session, settings.knowledge_dir):
                log.info("seeded the knowledge base from %s", settings.knowledge_dir)
            knowledge = kb.load_from_db(session, settings.knowledge_dir)
            # The file until an admin first changes the policy (PUT /v1/policy).
            policy = stored_policy(session) or load_policy(settings.policy_path)

    embedder = get_embedder(settings)
    index_dir = settings.index_dir if (persist_index and faq_path is None) else None
    retriever = KnowledgeRetriever(embedder, index_dir, mode=settings.retrieval_mode)
    retriever.build(knowledge.faq_dicts(), knowledge.template_dicts(), progress=progress)
    parts = build_policy_parts(settings, policy, knowledge.examples, embedder, retriever)
    pipeline = Pipeline(
        policy=policy, knowledge=knowledge, masker=parts.masker, retriever=retriever, classifier=parts.classifier,
        drafter=parts.drafter, sla=parts.sla, sessions=sessions, reranker=parts.reranker,
    )
    pipeline.prepare_template_evidence()
    return Runtime(settings=settings, engine=engine, sessions=sessions, policy=policy, embedder=embedder,
                   pipeline=pipeline, examples=knowledge.examples, example_texts=parts.example_texts,
                   example_vectors=parts.example_vectors)


def build_policy_parts(settings: Settings, policy: Policy, examples: list[dict[str, Any]], embedder: Embedder,
                       retriever: KnowledgeRetriever,
                       embedded: tuple[list[str], np.ndarray] | None = None) -> PolicyParts:
    """Masker, classifier, drafter, SLA engine and reranker for `policy`.

    `embedded`: the examples' masked texts and vectors when still valid for this policy's masking.
    """
    masker = Masker(policy.masking or None)
    if embedded is None:
        embedded = embed_examples(examples, masker, embedder, settings.index_dir)
    example_texts, example_vectors = embedded
    classifier = OfflineClassifier(policy, example_texts, examples, example_vectors)
    few_shot = None
    if settings.llm_enabled:  # the LLM's examples: the labeled rows nearest the message, masked
        from service.llm.fewshot import embedding_examples

        few_shot = embedding_examples(examples, example_texts, example_vectors, retriever.query_vector)
    return PolicyParts(policy=policy, masker=masker, example_texts=example_texts, example_vectors=example_vectors,
                       classifier=classifier, drafter=build_drafter(settings, policy, few_shot), sla=SlaEngine(policy),
                       reranker=build_reranker(settings, policy))
