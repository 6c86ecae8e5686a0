"""Optional LLM rerank of the top FAQ hits: one structured call, the fused order on any failure.

Enabled with DRAFTDESK_LLM_RERANK when an LLM is configured. The model sees the
masked message and the candidates' questions and answers, and answers with the
candidate ids in the order it judges best. Its answer must be a non-empty list of
distinct ids, all among the candidates (a subset is fine: the candidates it left
out follow in the fused order). Anything else — an HTTP error, a timeout, the
circuit breaker open, invalid JSON, an unknown or repeated id, a refusal — keeps
the retriever's fused order, so a rerank can only reorder, never lose a hit.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import httpx
import jinja2
import openai
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.config import Settings
from service.llm.breaker import CircuitBreaker
from service.llm.prompts import neutralise

log = logging.getLogger("draftdesk.llm.rerank")

SCHEMA_NAME = "rerank"
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class _HasId(Protocol):
    id: str


H = TypeVar("H", bound=_HasId)


class RerankRejected(ValueError):
    """The model answered, but not with a usable order; the message is a plain reason."""


class RerankOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(min_length=1, description="候选 id，按相关程度从高到低")


def response_format(ids: Sequence[str]) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {"ids": {"type": "array", "items": {"type": "string", "enum": list(ids)},
                               "description": "候选 id，按相关程度从高到低"}},
        "required": ["ids"], "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": schema}}


def parse_order(content: str | None, given: Sequence[str]) -> list[str]:
    """The model's order, validated: distinct ids, every one among `given`."""
    if not content or not content.strip():
        raise RerankRejected("模型返回了空内容")
    fenced = _FENCE.match(content)
    try:
        data = json.loads(fenced.group(1) if fenced else content)
    except json.JSONDecodeError as exc:
        raise RerankRejected(f"模型返回的不是有效 JSON（{exc.msg}）") from exc
    try:
        output = RerankOutput.model_validate(data)
    except ValidationError as exc:
        raise RerankRejected(f"模型输出不符合格式：{exc.errors()[0]['msg']}") from exc
    unknown = [i for i in output.ids if i not in set(given)]
    if unknown:
        raise RerankRejected(f"模型给出了不在候选中的 id：{', '.join(unknown[:3])}")
    if len(set(output.ids)) != len(output.ids):
        raise RerankRejected("模型重复给出了同一个 id")
    return list(output.ids)


@dataclass
class Reranked(Generic[H]):
    hits: list[H]
    usage: dict[str, Any] | None = None  # tokens, latency and model of the call, when one was made
    fallback_reason: str | None = None  # why the fused order was kept; None when the model's order is used


class LlmReranker:
    def __init__(
        self,
        settings: Settings,
        *,
        team_name: str = "客服团队",
        prompts_dir: Path | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout_seconds: float | None = None,
        max_candidates: int = 5,
        answer_chars: int = 160,
        breaker_threshold: int = 5,
        breaker_cooldown_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        max_tokens: int | None = 200,
    ):
        self.model = settings.llm_model
        self.timeout = timeout_seconds if timeout_seconds is not None else settings.llm_timeout_seconds
        self.max_candidates = max_candidates
        self.answer_chars = answer_chars
        self.max_tokens = max_tokens
        self.breaker = CircuitBreaker(breaker_threshold, breaker_cooldown_seconds, clock)
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(prompts_dir or settings.prompts_dir)),
            undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True,
        )
        self.system = env.get_template("rerank_system.j2").render(team_name=team_name).strip()
        self._user = env.get_template("rerank_user.j2")
        # One call, no SDK retries: a rerank is an improvement, not worth a second wait.
        self.client = openai.AsyncOpenAI(
            base_url=settings.llm_base_url, api_key=settings.llm_api_key or "not-set", timeout=self.timeout,
            max_retries=0, http_client=http_client or httpx.AsyncClient(timeout=self.timeout),
        )

    async def aclose(self) -> None:
        await self.client.close()

    def messages(self, masked_text: str, candidates: list[dict[str, str]]) -> list[dict[str, str]]:
        user = self._user.render(message=neutralise(masked_text), candidates=candidates).strip()
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    async def rerank(self, masked_text: str, hits: Sequence[H],
                     documents: Mapping[str, tuple[str, str]]) -> Reranked[H]:
        """`hits` in fused order; `documents` maps an id to (question, answer)."""
        hits = list(hits)
        head, tail = hits[: self.max_candidates], hits[self.max_candidates:]
        if len(head) < 2:
            return Reranked(hits)
        if not self.breaker.allow():
            return Reranked(hits, fallback_reason="模型服务连续失败，已暂停调用（熔断中）")
        candidates = []
        for hit in head:
            question, answer = documents.get(hit.id, (getattr(hit, "title", ""), ""))
            short = answer if len(answer) <= self.answer_chars else answer[: self.answer_chars] + "…"
            candidates.append({"id": hit.id, "question": question, "answer": short})
        ids = [hit.id for hit in head]
        started = time.perf_counter()
        usage = None
        verdict = False
        try:
            kwargs: dict[str, Any] = {"model": self.model, "messages": self.messages(masked_text, candidates),
                                      "response_format": response_format(ids), "temperature": 0}
            if self.max_tokens is not None:
                kwargs["max_tokens"] = self.max_tokens
            try:
                async with asyncio.timeout(self.timeout):
                    completion = await self.client.chat.completions.create(**kwargs)
            except Exception:
                self.breaker.record_failure()
                verdict = True
                raise
            self.breaker.record_success()
            verdict = True
            usage = _usage(completion, self.model, started)
            choice = completion.choices[0] if completion.choices else None
            if choice is None or choice.message.refusal:
                raise RerankRejected("模型没有给出排序")
            order = parse_order(choice.message.content, ids)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the fused order
            reason = str(exc) if isinstance(exc, RerankRejected) else type(exc).__name__
            log.warning("LLM rerank failed, keeping the fused order: %s", reason)
            return Reranked(hits, usage=usage, fallback_reason=reason)
        finally:
            if not verdict:
                self.breaker.release()
        by_id = {hit.id: hit for hit in head}
        chosen = [by_id[i] for i in order]
        rest = [hit for hit in head if hit.id not in set(order)]
        return Reranked(chosen + rest + tail, usage=usage)


def _usage(completion: Any, model: str, started: float) -> dict[str, Any]:
    counted = completion.usage
    return {
        "prompt_tokens": counted.prompt_tokens if counted else 0,
        "completion_tokens": counted.completion_tokens if counted else 0,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        "model": completion.model or model,
    }
