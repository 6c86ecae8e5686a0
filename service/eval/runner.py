"""Draft every labeled row through the real pipeline and score the drafts."""
from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from tqdm import tqdm

from service.config import Settings
from service.eval.metrics import leaked, summarise
from service.kb import KnowledgeError, read_jsonl
from service.policy import CATEGORIES, CHANNELS, PRIORITIES
from service.runtime import build_runtime
from service.schemas import DraftRequest


class EvalError(ValueError):
    pass


def load_rows(path: Path) -> list[dict[str, Any]]:
    try:
        rows = read_jsonl(path)
    except KnowledgeError as exc:
        raise EvalError(str(exc)) from exc
    for number, row in enumerate(rows, start=1):
        where = f"{path} row {number} ({row.get('id', '?')})"
        if not isinstance(row.get("text"), str) or row.get("channel") not in CHANNELS:
            raise EvalError(f"{where}: needs text and a channel from {', '.join(CHANNELS)}")
        gold = row.get("gold")
        if not isinstance(gold, dict):
            raise EvalError(f"{where}: missing gold")
        if gold.get("category") not in (None, *CATEGORIES) or gold.get("priority") not in (None, *PRIORITIES):
            raise EvalError(f"{where}: gold category/priority not in the labeling guide")
    return rows


def _request(row: dict[str, Any]) -> DraftRequest:
    customer = row.get("customer") or None
    return DraftRequest(channel=row["channel"], text=row["text"], customer=customer,
                        order_id=row.get("order_id"))


async def _run_rows(runtime, rows: list[dict[str, Any]], progress: bool) -> list[dict[str, Any]]:
    results = []
    for row in tqdm(rows, desc="drafting", unit="row", disable=not progress):
        gold = row["gold"]
        result: dict[str, Any] = {"id": row.get("id"), "text": row["text"], "gold": gold, "error": None}
        try:
            record = await runtime.pipeline.draft(_request(row))
        except Exception as exc:  # noqa: BLE001 - a failing row is counted, the run goes on
            result["error"] = f"{type(exc).__name__}: {exc}"
            results.append(result)
            continue
        faq_ranked = [h.id for h in record.knowledge_hits if h.collection == "faq"]
        result.update(
            category=record.category.value, priority=record.priority.value,
            category_source=record.category.source, priority_source=record.priority.source,
            template_id=record.template_id, faq_ranked=faq_ranked, draft=record.draft,
            flagged=record.flagged, flags=record.flags, latency_ms=record.latency_ms,
            drafter=record.drafter, llm_usage=record.llm_usage,
            checks={c.name: c.passed for c in record.checks},
            leaked=leaked(gold.get("must_not_contain") or [], [record.draft, record.subject, record.sms_text]),
        )
        results.append(result)
    for client in (runtime.pipeline.drafter, getattr(runtime.pipeline, "reranker", None)):
        close = getattr(client, "aclose", None)
        if close is not None:  # the LLM's HTTP client belongs to this event loop
            await close()
    return results


def run_eval(dataset: Path, out_dir: Path, settings: Settings, kb_path: Path | None = None,
             drafter: str = "offline", progress: bool = True, limit: int | None = None) -> dict[str, Any]:
    rows = load_rows(dataset)
    if limit:
        rows = rows[:limit]
    if drafter == "llm" and not settings.llm_enabled:
        raise EvalError("--drafter llm needs DRAFTDESK_LLM_BASE_URL and DRAFTDESK_LLM_MODEL")
    if drafter == "offline":
        settings = settings.model_copy(update={"llm_base_url": "", "llm_model": ""})
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="draftdesk-eval-") as scratch:
        # A private database so an eval run never touches the service's data.
        settings = settings.model_copy(update={"database_url": f"sqlite:///{Path(scratch) / 'eval.db'}"})
        runtime = build_runtime(settings, progress=progress, faq_path=kb_path)
        try:
            results = asyncio.run(_run_rows(runtime, rows, progress))
        finally:
            runtime.engine.dispose()
    report = summarise(results)
    report.update({
        "dataset": str(dataset), "kb": str(kb_path) if kb_path else "knowledge/faq.jsonl",
        "drafter": drafter, "embedder": runtime.embedder.name,
        **(_llm_summary(results) if drafter == "llm" else {}),
        "wrong_rows": [_wrong(r) for r in results if _is_wrong(r)],
    })
    (out_dir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    from service.eval.report import write_html

    write_html(report, results, out_dir / "report.html")
    return report


def _llm_summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """How many rows the LLM drafted, how many fell back, and the tokens spent (fill and rerank calls)."""
    drafted = [r for r in results if not r.get("error")]
    usages = []
    for r in drafted:
        usage = r.get("llm_usage") or {}
        usages.extend(u for u in (usage, usage.get("rerank") or {}) if u.get("model"))
    latencies = sorted(u["latency_ms"] for u in usages if "latency_ms" in u)
    return {
        "llm_drafted_rows": sum(r.get("drafter") == "llm" for r in drafted),
        "llm_degraded_rows": sum("llm_degraded" in (r.get("flags") or []) for r in drafted),
        "llm_calls": len(usages),
        "llm_prompt_tokens": sum(u.get("prompt_tokens") or 0 for u in usages),
        "llm_completion_tokens": sum(u.get("completion_tokens") or 0 for u in usages),
        "llm_latency_ms_p50": latencies[len(latencies) // 2] if latencies else 0.0,
    }


def _is_wrong(r: dict[str, Any]) -> bool:
    if r.get("error"):
        return True
    gold = r["gold"]
    return bool((gold.get("category") and gold["category"] != r["category"])
                or (gold.get("priority") and gold["priority"] != r["priority"])
                or (gold.get("faq_id") and (not r["faq_ranked"] or r["faq_ranked"][0] != gold["faq_id"]))
                or r["leaked"])


def _wrong(r: dict[str, Any]) -> dict[str, Any]:
    if r.get("error"):
        return {"id": r["id"], "text": r["text"], "gold": r["gold"], "error": r["error"]}
    return {
        "id": r["id"], "text": r["text"], "gold": r["gold"],
        "predicted": {"category": r["category"], "priority": r["priority"],
                      "faq_id": r["faq_ranked"][0] if r["faq_ranked"] else None,
                      "category_source": r["category_source"], "priority_source": r["priority_source"],
                      "template_id": r["template_id"]},
        "leaked": r["leaked"],
    }


def compare(before: dict[str, Any], after: dict[str, Any], metrics: list[str],
            tolerance: float = 0.0) -> tuple[list[dict[str, Any]], bool]:
    """Deltas for every shared numeric metric; `worse` is True when a guarded one regressed."""
    from service.eval.metrics import HIGHER_IS_BETTER, LOWER_IS_BETTER

    rows, worse = [], False
    for key in sorted(set(before) & set(after)):
        a, b = before[key], after[key]
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or isinstance(a, bool):
            continue
        delta = b - a
        if key in HIGHER_IS_BETTER:
            regressed = delta < -tolerance
        elif key in LOWER_IS_BETTER:
            regressed = delta > tolerance
        else:
            regressed = False
        guarded = key in metrics
        rows.append({"metric": key, "before": a, "after": b, "delta": round(delta, 4),
                     "regressed": regressed, "guarded": guarded})
        worse = worse or (regressed and guarded)
    return rows, worse
