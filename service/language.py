"""Which Chinese script a text is written in, and conversion between the two.

Detection compares the text with its own OpenCC conversions: a character that
changes under t2s is a Traditional form, one that changes under s2t is a
Simplified form. Characters shared by both scripts (您, 好, 的 …) count for
neither, so short or mixed texts are decided by the characters that differ.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

import opencc

Script = Literal["hant", "hans", "other"]

# CJK Unified Ideographs, Extension A and the compatibility block.
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@lru_cache(maxsize=None)
def _converter(config: str) -> opencc.OpenCC:
    # Building a converter loads dictionaries from disk; do it once per config.
    return opencc.OpenCC(config)


def to_traditional(text: str) -> str:
    return _converter("s2t").convert(text) if text else text


def to_simplified(text: str) -> str:
    return _converter("t2s").convert(text) if text else text


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text or ""))


@lru_cache(maxsize=8192)
def _char_changes(ch: str, to_simplified_side: bool) -> bool:
    return (to_simplified(ch) if to_simplified_side else to_traditional(ch)) != ch


def _changed(text: str, converted: str, to_simplified_side: bool) -> int:
    if len(converted) == len(text):
        return sum(1 for a, b in zip(text, converted) if a != b and _CJK.match(a))
    # Phrase tables can change the length; then judge character by character.
    return sum(1 for ch in text if _CJK.match(ch) and _char_changes(ch, to_simplified_side))


def script_counts(text: str) -> tuple[int, int]:
    """(Traditional-only characters, Simplified-only characters) in `text`."""
    if not has_cjk(text):
        return 0, 0
    return _changed(text, to_simplified(text), True), _changed(text, to_traditional(text), False)


def detect_script(text: str) -> Script:
    """'hant' when Traditional-only characters outnumber Simplified-only ones,
    'hans' otherwise (including text made only of shared characters),
    'other' when there is no CJK character at all."""
    if not has_cjk(text):
        return "other"
    hant, hans = script_counts(text)
    return "hant" if hant > hans else "hans"
