"""`draftdesk eval …`: score drafts and retrieval on labeled sets."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from service.config import get_settings

eval_app = typer.Typer(help="Score draft quality and retrieval on labeled sets.", no_args_is_help=True)

DEFAULT_GUARDED = ["category_accuracy", "priority_accuracy", "priority_under_rate", "pii_leak_count",
                   "unfilled_placeholder_count", "retrieval_recall_at_1"]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@eval_app.command("run")
def run(dataset: Path = typer.Argument(..., help="labeled rows, ../shared/LABELING.md format"),
        kb: Optional[Path] = typer.Option(None, "--kb", help="FAQ file to use instead of the knowledge base"),
        drafter: str = typer.Option("offline", help="offline or llm"),
        out: Path = typer.Option(Path("eval/reports/latest"), "--out", help="folder for report.json and report.html"),
        limit: Optional[int] = typer.Option(None, help="score only the first N rows"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bar")) -> None:
    """Draft every row through the real pipeline; write report.json and report.html."""
    from service.eval.runner import EvalError, run_eval
    from service.kb import KnowledgeError

    if drafter not in {"offline", "llm"}:
        _fail("--drafter must be offline or llm")
    if not dataset.exists():
        _fail(f"dataset not found: {dataset}")
    if kb is not None and not kb.exists():
        _fail(f"knowledge file not found: {kb}")
    try:
        report = run_eval(dataset, out, get_settings(), kb_path=kb, drafter=drafter, progress=not quiet, limit=limit)
    except (EvalError, KnowledgeError) as exc:
        _fail(str(exc))
    for key in ("rows", "errors", "category_accuracy", "category_macro_f1", "priority_accuracy",
                "priority_under_rate", "priority_over_rate", "retrieval_recall_at_1", "retrieval_recall_at_3",
                "retrieval_mrr", "pii_leak_count", "unfilled_placeholder_count", "jargon_count", "flagged_rate",
                "latency_ms_p50", "latency_ms_p95"):
        value = report[key]
        if key.startswith("retrieval_") and not report.get("retrieval_rows"):
            value = "n/a (no row has gold.faq_id)"
        typer.echo(f"{key:28s} {value}")
    for key in sorted(k for k in report if k.startswith("llm_")):
        typer.echo(f"{key:28s} {report[key]}")
    typer.echo(f"wrote {out / 'report.json'} and {out / 'report.html'}")


@eval_app.command("compare")
def compare_cmd(before: Path = typer.Argument(..., help="baseline report.json"),
                after: Path = typer.Argument(..., help="new report.json"),
                metric: list[str] = typer.Option(DEFAULT_GUARDED, "--metric", help="guarded metric (repeatable)"),
                tolerance: float = typer.Option(0.0, help="allowed slack before a change counts as worse")) -> None:
    """Print metric deltas; exit 1 when a guarded metric got worse."""
    from service.eval.runner import compare

    try:
        a = json.loads(before.read_text(encoding="utf-8"))
        b = json.loads(after.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        _fail(f"report not found: {exc.filename}")
    except json.JSONDecodeError as exc:
        _fail(f"not a JSON report: {exc}")
    rows, worse = compare(a, b, metric, tolerance)
    for row in rows:
        mark = "WORSE" if row["regressed"] else ""
        guard = "*" if row["guarded"] else " "
        typer.echo(f"{guard} {row['metric']:28s} {row['before']:>10} → {row['after']:<10} {row['delta']:+.4f} {mark}")
    if worse:
        typer.echo("a guarded metric got worse", err=True)
        raise typer.Exit(1)


@eval_app.command("retrieval")
def retrieval(kb: Path = typer.Option(..., "--kb", help="FAQ file (knowledge/faq.jsonl format)"),
              queries: Path = typer.Option(..., "--queries", help="rows with gold.faq_id (LABELING.md format)"),
              mode: Optional[str] = typer.Option(None, help="dense, lexical or hybrid (default: configured)"),
              category_prior: bool = typer.Option(
                  True, "--category-prior/--no-category-prior",
                  help="hybrid mode: prefer entries of the category the classifier expects, as the service does"),
              as_json: bool = typer.Option(False, "--json", help="one JSON object")) -> None:
    """Recall@1, recall@3, MRR and no-answer accuracy of FAQ retrieval, indexed for this run only."""
    from service.kb import KnowledgeError, load_faq_file
    from service.retrieval.embedders import get_embedder
    from service.retrieval.evaluate import evaluate_retrieval, load_queries

    settings = get_settings()
    mode = mode or settings.retrieval_mode
    if mode not in {"dense", "lexical", "hybrid"}:
        _fail("--mode must be dense, lexical or hybrid")
    try:
        faq = [entry.model_dump() for entry in load_faq_file(kb)]
        rows = load_queries(queries)
    except (KnowledgeError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    embedder = get_embedder(settings)
    prior = None
    if category_prior and mode == "hybrid":
        from service.runtime import category_prior_for_eval

        try:
            prior = category_prior_for_eval(settings, embedder)
        except (KnowledgeError, FileNotFoundError, ValueError) as exc:
            _fail(f"cannot build the category prior ({exc}); use --no-category-prior to score without it")
    result = evaluate_retrieval(faq, rows, embedder, mode, progress=not as_json, category_prior=prior)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    for key, value in result.items():
        typer.echo(f"{key:20s} {value}")


BASELINE_GUARDED = ["category_accuracy", "category_macro_f1", "priority_accuracy", "priority_under_rate",
                    "pii_leak_count", "unfilled_placeholder_count", "jargon_count"]


@eval_app.command("baseline")
def baseline(dataset: Path = typer.Argument(Path("eval/data/dev.jsonl"), help="labeled rows"),
             rows: int = typer.Option(60, help="the fixed subset: the first N rows"),
             out: Path = typer.Option(Path("eval/baseline.json"), "--out", help="baseline file to write"),
             tolerance: float = typer.Option(0.02, help="slack the CI guard allows"),
             quiet: bool = typer.Option(False, "--quiet", help="no progress bar")) -> None:
    """Score the fixed CI subset (offline drafter) and write it as the committed baseline."""
    import tempfile

    from service.eval.runner import EvalError, run_eval

    if not dataset.exists():
        _fail(f"dataset not found: {dataset}")
    if rows < 1:
        _fail("--rows must be at least 1")
    with tempfile.TemporaryDirectory() as scratch:
        try:
            report = run_eval(dataset, Path(scratch), get_settings(), progress=not quiet, limit=rows)
        except EvalError as exc:
            _fail(str(exc))
    kept = [key for key, value in report.items() if isinstance(value, (int, float)) and not isinstance(value, bool)]
    document = {
        "dataset": str(dataset), "subset_rows": rows, "drafter": "offline",
        "command": f"draftdesk eval baseline {dataset} --rows {rows}",
        "guarded": BASELINE_GUARDED, "tolerance": tolerance,
        "metrics": {key: report[key] for key in kept},
    }
    out.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for key in BASELINE_GUARDED:
        value = report[key]
        if key.startswith("retrieval_") and not report.get("retrieval_rows"):
            value = "n/a (no row has gold.faq_id)"
        typer.echo(f"{key:28s} {value}")
    for key in sorted(k for k in report if k.startswith("llm_")):
        typer.echo(f"{key:28s} {report[key]}")
    typer.echo(f"wrote {out}")
