"""Pieces shared by the recognizers."""
from __future__ import annotations

import re
import string
from dataclasses import dataclass

ASCII_LETTERS = frozenset(string.ascii_letters)
ASCII_ALNUM = frozenset(string.ascii_letters + string.digits)
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"

# Full-width ASCII (１３８, ＠, （）) and the ideographic space, mapped one character
# to one character so offsets in the normalised text are offsets in the original.
_FULL_WIDTH = {0xFF01 + i: 0x21 + i for i in range(0x5E)}
_FULL_WIDTH[0x3000] = 0x20


# Numbers read out digit by digit (一三八…) are typed in Chinese numerals; only long
# runs are converted, so 一二三 in ordinary prose stays prose.
_SPOKEN = re.compile(r"[零〇一二三四五六七八九幺]{7,}")
_SPOKEN_DIGITS = str.maketrans("零〇一二三四五六七八九幺", "001234567891")


def normalise(text: str) -> str:
    text = text.translate(_FULL_WIDTH)
    if _SPOKEN.search(text):
        text = _SPOKEN.sub(lambda m: m.group().translate(_SPOKEN_DIGITS), text)
    return text


@dataclass(frozen=True)
class Found:
    kind: str
    start: int
    end: int
    replacement: str
    kept: int = 0  # leading characters shown as they are (an address's province/city/district)
