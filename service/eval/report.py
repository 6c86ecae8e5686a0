"""report.html: what a supervisor reads — headline numbers, confusion matrices, latency, wrong rows."""
from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import jinja2
import matplotlib

matplotlib.use("Agg")  # no display here or in CI
import matplotlib.pyplot as plt  # noqa: E402

from service.policy import CATEGORIES, PRIORITIES  # noqa: E402

HEADLINE = [
    ("category_accuracy", "类别准确率 category accuracy"),
    ("category_macro_f1", "类别宏平均F1 macro F1"),
    ("priority_accuracy", "优先级准确率 priority accuracy"),
    ("priority_under_rate", "优先级偏低率 under-rate (costly)"),
    ("priority_over_rate", "优先级偏高率 over-rate"),
    ("retrieval_recall_at_1", "知识命中@1 recall@1"),
    ("retrieval_recall_at_3", "知识命中@3 recall@3"),
    ("retrieval_mrr", "MRR"),
    ("pii_leak_count", "个人信息泄露 PII leaks"),
    ("unfilled_placeholder_count", "未填占位符 unfilled placeholders"),
    ("jargon_count", "术语 jargon"),
    ("flagged_rate", "转主管审核比例 flagged rate"),
    ("latency_ms_p50", "延迟 p50 (ms)"),
    ("latency_ms_p95", "延迟 p95 (ms)"),
    ("rows", "行数 rows"),
    ("errors", "错误 errors"),
]

_PAGE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>draftdesk eval · {{ report.dataset }}</title>
<style>
body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:24px;color:#1d2330}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #dde2e8;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f4f8}.bad{color:#a4161a;font-weight:600}img{max-width:480px;margin-right:16px}
.text{max-width:640px;white-space:pre-wrap;word-break:break-all}
</style></head><body>
<h1>draftdesk 草稿质量评估</h1>
<p>数据集 {{ report.dataset }} · 知识库 {{ report.kb }} · 起草方式 {{ report.drafter }} · 向量模型 {{ report.embedder }}</p>
<h2>主要指标</h2>
<table>{% for key, label in headline %}<tr><th>{{ label }}</th><td>{% if key.startswith("retrieval_") and not report.retrieval_rows %}—（没有标注 faq_id 的行）{% else %}{{ report[key] }}{% endif %}</td></tr>{% endfor %}</table>
<h2>各类别</h2>
<table><tr><th>类别</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>
{% for name, c in report.per_category.items() %}<tr><td>{{ name }}</td><td>{{ c.precision }}</td><td>{{ c.recall }}</td><td>{{ c.f1 }}</td><td>{{ c.support }}</td></tr>{% endfor %}</table>
<h2>混淆矩阵与延迟分布</h2>
<p>{% for title, png in images %}<img alt="{{ title }}" title="{{ title }}" src="data:image/png;base64,{{ png }}">{% endfor %}</p>
<h2>判错的行（{{ report.wrong_rows|length }}）</h2>
<table><tr><th>id</th><th>客户原文</th><th>标注</th><th>预测</th></tr>
{% for r in report.wrong_rows %}<tr><td>{{ r.id }}</td><td class="text">{{ r.text[:600] }}{% if r.text|length > 600 %}…{% endif %}</td>
<td>{{ r.gold.category }} / {{ r.gold.priority }}{% if r.gold.faq_id %} / {{ r.gold.faq_id }}{% endif %}</td>
<td>{% if r.error %}<span class="bad">{{ r.error }}</span>{% else %}{{ r.predicted.category }} / {{ r.predicted.priority }}{% if r.gold.faq_id %} / {{ r.predicted.faq_id }}{% endif %}
<br><small>{{ r.predicted.category_source }} · {{ r.predicted.priority_source }}</small>{% if r.leaked %}<br><span class="bad">泄露 {{ r.leaked|length }} 项</span>{% endif %}{% endif %}</td></tr>{% endfor %}
</table></body></html>""")


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _matrix(matrix: list[list[int]], labels: list[str], title: str) -> str:
    fig, ax = plt.subplots(figsize=(4.6, 4))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    peak = max((max(row) for row in matrix), default=0) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black")
    return _png(fig)


def _latency(values: list[float]) -> str:
    fig, ax = plt.subplots(figsize=(4.6, 4))
    ax.hist(values or [0.0], bins=30, color="#1f6feb")
    ax.set_xlabel("latency per draft (ms)")
    ax.set_ylabel("drafts")
    ax.set_title("latency distribution")
    return _png(fig)


def write_html(report: dict[str, Any], results: list[dict[str, Any]], path: Path) -> None:
    images = [
        ("category confusion", _matrix(report["confusion_category"]["matrix"], list(CATEGORIES), "category")),
        ("priority confusion", _matrix(report["confusion_priority"]["matrix"], list(PRIORITIES), "priority")),
        ("latency", _latency([r["latency_ms"] for r in results if r.get("error") is None])),
    ]
    path.write_text(_PAGE.render(report=report, headline=HEADLINE, images=images), encoding="utf-8")
