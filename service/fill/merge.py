"""Merge the LLM's own classification into the offline one.

When the LLM drafter answered validly it also classified the message:
its category stands (it read the whole message and picked the template), and
the priority is the higher of the model's and the offline rules' — urgent
cues, complaint/anger and the VIP raise can be confirmed or raised by the
model, never lowered. When the model did not answer (or its answer was not
used), the offline classification stands unchanged.
"""
from __future__ import annotations

from typing import Any

from service.classify import Classification
from service.policy import PRIORITIES

# Column widths of drafts.category_source / drafts.priority_source.
CATEGORY_SOURCE_MAX = 64
PRIORITY_SOURCE_MAX = 128


def higher_priority(a: str, b: str) -> str:
    """The more urgent of two priorities (PRIORITIES runs from urgent to low)."""
    return a if PRIORITIES.index(a) <= PRIORITIES.index(b) else b


def merge_classification(offline: Classification, llm: dict[str, Any] | None) -> Classification:
    if not llm:
        return offline
    source = str(llm["source"])
    priority = higher_priority(llm["priority"], offline.priority)
    if priority == llm["priority"]:  # the model agrees with the rules or raises them
        priority_source, priority_confidence = source, float(llm["confidence"])
    else:  # a rule outranks the model: name both
        priority_source = f"max({offline.priority_source}, {source}={llm['priority']})"
        priority_confidence = offline.priority_confidence
    return Classification(
        category=llm["category"], category_source=source[:CATEGORY_SOURCE_MAX],
        category_confidence=round(float(llm["confidence"]), 4),
        priority=priority, priority_source=priority_source[:PRIORITY_SOURCE_MAX],
        priority_confidence=round(priority_confidence, 4),
    )
