"""The LLM drafter: the model classifies, picks a candidate template and writes a few slots.

Same contract as the offline drafter (`async fill(FillRequest) -> FilledDraft`).
Anything that goes wrong with the model — the service, the answer or its
content — is answered by the fallback drafter, with the draft flagged
`llm_degraded` and a plain reason, so the pipeline never waits on or breaks
because of the model.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from service.config import Settings
from service.fill.merge import higher_priority
from service.fill.offline import FilledDraft, FillRequest, standard_values
from service.kb import KnowledgeError
from service.llm.breaker import CircuitBreaker
from service.llm.fewshot import nearest_examples
from service.llm.prompts import PromptBuilder
from service.llm.schema import OutputRejected, parse_output, response_format
from service.policy import Policy

log = logging.getLogger("draftdesk.llm")

DEGRADED_FLAG = "llm_degraded"
_RETRY_STATUSES = {408, 409, 429}


class LlmCallFailed(Exception):
    """The model service gave no usable response; the message is a plain reason."""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, TimeoutError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRY_STATUSES or exc.status_code >= 500
    return False


def _plain_reason(exc: BaseException) -> str:
    if isinstance(exc, (openai.APITimeoutError, TimeoutError)):
        return "模型服务响应超时"
    if isinstance(exc, openai.APIConnectionError):
        return "无法连接模型服务"
    if isinstance(exc, openai.RateLimitError):
        return "模型服务限流（HTTP 429），重试后仍未成功"
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return f"模型服务出错（HTTP {exc.status_code}），重试后仍未成功"
        return f"模型服务拒绝了请求（HTTP {exc.status_code}）"
    return f"调用模型时出错（{type(exc).__name__}）"


class LlmDrafter:
    name = "llm"

    def __init__(
        self,
        settings: Settings,
        policy: Policy,
        fallback: Any,
        *,
        examples: list[dict[str, Any]] | None = None,
        few_shot: Callable[[str], list[dict[str, Any]]] | None = None,
        few_shot_k: int = 3,
        prompts_dir: Path | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout_seconds: float | None = None,
        max_retries: int | None = None,
        retry_wait_initial: float = 0.5,
        retry_wait_max: float = 4.0,
        breaker_threshold: int = 5,
        breaker_cooldown_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        temperature: float | None = 0.2,
        max_tokens: int | None = 800,
    ):
        self.settings = settings
        self.policy = policy
        self.fallback = fallback
        self.model = settings.llm_model
        self.timeout = timeout_seconds if timeout_seconds is not None else settings.llm_timeout_seconds
        self.max_retries = max(0, max_retries if max_retries is not None else settings.llm_max_retries)
        self.retry_wait_initial = retry_wait_initial
        self.retry_wait_max = retry_wait_max
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.breaker = CircuitBreaker(breaker_threshold, breaker_cooldown_seconds, clock)
        self.prompts = PromptBuilder(prompts_dir or settings.prompts_dir, policy)
        if few_shot is None and examples:
            few_shot = nearest_examples(examples, few_shot_k)
        self.few_shot = few_shot
        # An httpx client (not the SDK's default transport) so one timeout governs the
        # socket, and tests can mock it with respx. Retries are ours (below), not the SDK's,
        # so the total number of attempts stays bounded by max_retries + 1.
        self.client = openai.AsyncOpenAI(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key or "not-set",  # never fall back to a key from the environment
            timeout=self.timeout,
            max_retries=0,
            http_client=http_client or httpx.AsyncClient(timeout=self.timeout),
        )

    async def aclose(self) -> None:
        await self.client.close()

    # --- the drafter contract ---------------------------------------------

    async def fill(self, request: FillRequest) -> FilledDraft:
        started = time.perf_counter()
        usage: dict[str, Any] | None = None
        if not request.candidates:
            return await self._degrade(request, "没有候选模板，模型无从选择")
        try:
            messages = self.prompts.messages(request, self._examples(request.masked_text))
            completion = await self._call(messages, response_format(request.candidates))
            usage = self._usage(completion, started)
            choice = completion.choices[0] if completion.choices else None
            if choice is None:
                raise OutputRejected("模型没有返回任何结果")
            if choice.message.refusal:
                raise OutputRejected("模型拒绝回答这条消息")
            if choice.finish_reason == "content_filter":
                raise OutputRejected("模型输出被内容过滤拦截")
            if choice.finish_reason == "length":
                raise OutputRejected("模型输出过长被截断")
            output, template, slots = parse_output(choice.message.content, request)
            # Deadlines, follow-up and stock phrases follow the classification the pipeline
            # will record (merge_classification): the model's category, the higher priority.
            merged = replace(request, category=output.category,
                             priority=higher_priority(output.priority, request.priority))
            values = {**standard_values(merged, self.policy), **slots}
            used = {name: values[name] for name in template.placeholders}
            text = template.render(used)
        except LlmCallFailed as exc:
            return await self._degrade(request, str(exc), usage)
        except OutputRejected as exc:
            return await self._degrade(request, str(exc), usage)
        except KnowledgeError as exc:
            return await self._degrade(request, f"模型填写的内容无法套用模板（{exc}）", usage)
        except Exception as exc:  # noqa: BLE001 - the model path must never break the pipeline
            log.exception("unexpected error in the LLM drafter")
            return await self._degrade(request, f"模型草稿出错（{type(exc).__name__}）", usage)
        return FilledDraft(
            text=text, template_id=template.id, values=used, drafter=self.name, usage=usage,
            classification={"category": output.category, "priority": output.priority,
                            "confidence": output.confidence, "reason": output.reason,
                            "source": f"llm:{self.model}"},
        )

    # --- pieces -----------------------------------------------------------

    def _examples(self, masked_text: str) -> list[dict[str, Any]]:
        if self.few_shot is None:
            return []
        try:
            return list(self.few_shot(masked_text))
        except Exception:  # noqa: BLE001 - examples are a help, not a requirement
            log.warning("few-shot picker failed; drafting without examples", exc_info=True)
            return []

    async def _call(self, messages: list[dict[str, str]], fmt: dict[str, Any]):
        """One logical call: retries on transient errors, guarded by the circuit breaker."""
        if not self.breaker.allow():
            raise LlmCallFailed("模型服务连续失败，已暂停调用（熔断中）")
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "response_format": fmt}
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        verdict = False
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.max_retries + 1), wait=self._wait,
                retry=retry_if_exception(_is_transient), reraise=True,
            ):
                with attempt:
                    # httpx timeouts are per read; this bounds the whole attempt,
                    # so a server trickling bytes cannot hold a draft hostage.
                    async with asyncio.timeout(self.timeout):
                        completion = await self.client.chat.completions.create(**kwargs)
        except Exception as exc:
            self.breaker.record_failure()
            verdict = True
            log.warning("LLM call failed: %s", type(exc).__name__)
            raise LlmCallFailed(_plain_reason(exc)) from exc
        else:
            self.breaker.record_success()  # the service answered; what it said is judged later
            verdict = True
            return completion
        finally:
            if not verdict:
                self.breaker.release()

    def _wait(self, state: RetryCallState) -> float:
        """Full-jitter exponential backoff; a server's Retry-After is honoured up to the cap."""
        ceiling = min(self.retry_wait_max, self.retry_wait_initial * 2 ** (state.attempt_number - 1))
        wait = random.uniform(0, ceiling)
        exc = state.outcome.exception() if state.outcome else None
        response = getattr(exc, "response", None)
        header = response.headers.get("retry-after") if response is not None else None
        if header:
            try:
                wait = max(wait, min(float(header), self.retry_wait_max))
            except ValueError:
                pass  # an HTTP date; the backoff is good enough
        return wait

    def _usage(self, completion: Any, started: float) -> dict[str, Any]:
        counted = completion.usage
        return {
            "prompt_tokens": counted.prompt_tokens if counted else 0,
            "completion_tokens": counted.completion_tokens if counted else 0,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "model": completion.model or self.model,
        }

    async def _degrade(self, request: FillRequest, reason: str,
                       usage: dict[str, Any] | None = None) -> FilledDraft:
        log.warning("LLM draft degraded to the fallback drafter: %s", reason)
        # The fallback's own errors (e.g. no template at all) are the offline
        # drafter's behaviour and propagate as they would without an LLM.
        draft = await self.fallback.fill(request)
        draft.degraded = [*draft.degraded, (DEGRADED_FLAG, f"{reason}，已改用离线草稿")]
        if usage is not None and draft.usage is None:
            draft.usage = usage  # tokens were spent even though the answer was not used
        return draft
