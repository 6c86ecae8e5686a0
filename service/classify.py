"""Classify stage (offline): nearest labeled examples plus the policy's transparent rules.

Category comes from a similarity-weighted vote of the nearest examples, with
cue words from policy.yaml able to overrule it; priority comes from the rules
(urgent cues, complaint/anger, the category's default), then the VIP raise.
Every decision names the rule or model that made it.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from service.language import to_simplified
from service.policy import CATEGORIES, PRIORITIES, Policy

DEFAULT_PRIORITY = {"inquiry": "medium", "after_sales": "medium", "complaint": "high", "suggestion": "low"}
# Complaint cues strong enough to overrule the neighbours on their own.
STRONG_COMPLAINT_CUES = ("投诉", "差评", "12315", "消协", "律师", "起诉", "曝光", "欺骗", "骗子", "虚假宣传")


@dataclass(frozen=True)
class Classification:
    category: str
    category_source: str
    category_confidence: float
    priority: str
    priority_source: str
    priority_confidence: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _base_priority(row: dict[str, Any]) -> str:
    """An example's priority before the VIP raise (rows state the final priority)."""
    priority = row["gold"]["priority"]
    if (row.get("customer") or {}).get("tier") == "vip" and priority != "low":
        # Lowering undoes the raise; an urgent VIP row may have been urgent already, keep it.
        if priority != "urgent":
            return PRIORITIES[PRIORITIES.index(priority) + 1]
    return priority


class OfflineClassifier:
    name = "offline-knn"

    def __init__(self, policy: Policy, example_texts: list[str], example_rows: list[dict[str, Any]],
                 example_vectors: np.ndarray, k: int = 9, sharpness: float = 30.0):
        if len(example_texts) != len(example_vectors):
            raise ValueError("one vector per example is required")
        self.policy = policy
        self.rows = example_rows
        self.vectors = np.asarray(example_vectors, dtype=np.float32)
        self.categories = [row["gold"]["category"] for row in example_rows]
        self.base_priorities = [_base_priority(row) for row in example_rows]
        self.k = min(k, len(example_rows))
        self.sharpness = sharpness

    def _neighbour_votes(self, query_vector: np.ndarray, labels: list[str]) -> dict[str, float]:
        sims = self.vectors @ np.asarray(query_vector, dtype=np.float32).reshape(-1)
        top = np.argsort(-sims)[: self.k]
        weights = np.exp(self.sharpness * (sims[top] - sims[top[0]]))
        votes: dict[str, float] = defaultdict(float)
        for index, weight in zip(top, weights):
            votes[labels[index]] += float(weight)
        total = sum(votes.values())
        return {label: value / total for label, value in votes.items()}

    def classify(self, masked_text: str, query_vector: np.ndarray, tier: str = "regular") -> Classification:
        text = to_simplified(masked_text)
        rules = self.policy.rules

        votes = self._neighbour_votes(query_vector, self.categories)
        category = max(CATEGORIES, key=lambda c: (votes.get(c, 0.0), -CATEGORIES.index(c)))
        category_confidence = votes.get(category, 0.0)
        category_source = f"knn(k={self.k})"
        strong = next((cue for cue in STRONG_COMPLAINT_CUES if cue in text), None)
        if strong and category != "complaint":
            category, category_source = "complaint", f"rule:complaint_cue:{strong}"
            category_confidence = max(0.8, votes.get("complaint", 0.0))

        urgent = next((cue for cue in rules.urgent_cues if cue in text), None)
        anger = next((cue for cue in rules.anger_cues if cue in text), None)
        if urgent:
            priority, source, confidence = "urgent", f"rule:urgent_cue:{urgent}", 0.9
        elif category == "complaint":
            priority, source, confidence = "high", "rule:complaint_is_high", category_confidence
        elif anger:
            priority, source, confidence = "high", f"rule:anger_cue:{anger}", 0.8
        else:
            priority_votes = self._neighbour_votes(query_vector, self.base_priorities)
            default = DEFAULT_PRIORITY[category]
            if priority_votes.get("urgent", 0.0) >= 0.6 and category == "after_sales":
                priority, source, confidence = "urgent", f"knn(k={self.k})", priority_votes["urgent"]
            else:
                priority, source = default, f"rule:default_for_{category}"
                confidence = max(priority_votes.get(default, 0.0), 0.6)

        if tier == "vip" and rules.vip_raise:
            raised = self.policy.raise_priority(priority)
            if raised != priority:
                priority, source = raised, source + "+rule:vip_raise"
        return Classification(category, category_source, round(category_confidence, 4),
                              priority, source, round(confidence, 4))
