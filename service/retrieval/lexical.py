"""Lexical side: jieba tokens, BM25 (Okapi, as rank-bm25 scores it) and identifier tokens.

rank_bm25.BM25Okapi rescans every document in Python for each query term and
cannot change its corpus. `Bm25Index` keeps an inverted index that accepts
live adds and removes and scores with numpy; its scores equal BM25Okapi's on
the same corpus (a test checks this).
"""
from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

import numpy as np

_ASCII = re.compile(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*")
_WORDISH = re.compile(r"\w", re.UNICODE)
# Function words that carry no topic; BM25's idf would down-weight most of them,
# but they would still inflate the query's maximum score that lexical scores are
# normalised by.
STOPWORDS = frozenset("""
的 了 吗 呢 吧 啊 呀 哦 嗯 么 嘛 啦 哈 呐 诶 哎 唉 喔 哟 咧
我 你 您 他 她 它 我们 你们 他们 咱们 自己 这 那 这个 那个 这样 那样 这些 那些 这里 那里
是 在 有 和 与 及 或 就 都 也 还 又 才 很 太 再 被 把 给 让 对 从 向 跟 而 但 但是 如果 因为 所以 然后
一下 一个 一些 怎么 怎么办 怎样 如何 什么 为什么 为啥 哪 哪里 哪个 多少 几 能 能否 可以 可不可以 会 要 想 请问 请 麻烦 谢谢 你好 您好 亲
""".split())

log = logging.getLogger("draftdesk.retrieval")
_jieba = None


def _get_jieba():
    global _jieba
    if _jieba is None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba = jieba
    return _jieba


_t2s = None


def normalize(text: str) -> str:
    """Full-width to half-width (Ｅ３ → E3), Traditional to Simplified (退貨 → 退货), lower case."""
    global _t2s
    if _t2s is None:
        import opencc

        _t2s = opencc.OpenCC("t2s")
    text = unicodedata.normalize("NFKC", text or "")
    return (_t2s.convert(text) if text else text).lower()


def tokenize(text: str) -> list[str]:
    """jieba search-mode words for Chinese, whole ASCII runs (e3, xqg100-b14) for the rest."""
    jieba = _get_jieba()
    text = normalize(text)
    tokens: list[str] = []

    def chinese(segment: str) -> None:
        for word in jieba.cut_for_search(segment):
            word = word.strip()
            if word and word not in STOPWORDS and _WORDISH.search(word):
                tokens.append(word)

    position = 0
    for match in _ASCII.finditer(text):
        if match.start() > position:
            chinese(text[position:match.start()])
        run = match.group()
        tokens.append(run)
        if "-" in run or "_" in run or "." in run:
            tokens.extend(part for part in re.split(r"[-_.]", run) if part)
        position = match.end()
    if position < len(text):
        chinese(text[position:])
    return tokens


_IDENT = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?![A-Za-z0-9])")


def entry_identifiers(text: str) -> set[str]:
    """Identifier-looking tokens in knowledge text: fault codes (E3, F1, UE) and model numbers (XQG100-B14).

    A token counts when it has a letter and either a digit or is a short
    all-capitals code; how rare it is in the collection is judged at query time.
    """
    found: set[str] = set()
    for match in _IDENT.finditer(unicodedata.normalize("NFKC", text or "")):
        token = match.group()
        has_letter = any(c.isalpha() for c in token)
        has_digit = any(c.isdigit() for c in token)
        if has_letter and (has_digit or (token.isupper() and 2 <= len(token) <= 4)):
            found.add(token.upper())
    return found


def query_identifiers(text: str) -> set[str]:
    """Every ASCII token of a query, upper-cased: customers type codes in any case (ue, e3)."""
    found: set[str] = set()
    for match in _IDENT.finditer(unicodedata.normalize("NFKC", text or "")):
        token = match.group()
        if any(c.isalpha() for c in token):
            found.add(token.upper())
            if "-" in token:
                found.update(part.upper() for part in token.split("-") if part)
    return found


class Bm25Index:
    """Okapi BM25 over documents keyed by int, with live add/remove."""

    def __init__(self, k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
        self.k1, self.b, self.epsilon = k1, b, epsilon
        self._slot: dict[int, int] = {}              # doc key -> slot
        self._keys: list[int | None] = []            # slot -> doc key (None = free)
        self._key_array = np.zeros(0, dtype=np.int64)  # the same as an array, -1 = free
        self._free: list[int] = []
        self._length = np.zeros(0, dtype=np.float32)
        self._terms: dict[int, tuple[str, ...]] = {}  # slot -> its distinct terms (for removal)
        self._postings: dict[str, dict[int, int]] = {}  # term -> {slot: tf}
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._total_length = 0
        self._idf: dict[str, float] | None = None

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, key: int) -> bool:
        return key in self._slot

    def add(self, key: int, tokens: Iterable[str]) -> None:
        if key in self._slot:
            self.remove(key)
        counts = Counter(tokens)
        if self._free:
            slot = self._free.pop()
            self._keys[slot] = key
        else:
            slot = len(self._keys)
            self._keys.append(key)
            if slot >= len(self._length):
                size = max(16, 2 * len(self._length))
                grown = np.zeros(size, dtype=np.float32)
                grown[:len(self._length)] = self._length
                self._length = grown
                keys = np.full(size, -1, dtype=np.int64)
                keys[:len(self._key_array)] = self._key_array
                self._key_array = keys
        self._slot[key] = slot
        self._key_array[slot] = key
        self._terms[slot] = tuple(counts)
        length = sum(counts.values())
        self._length[slot] = length
        self._total_length += length
        for term, tf in counts.items():
            self._postings.setdefault(term, {})[slot] = tf
            self._arrays.pop(term, None)
        self._idf = None

    def remove(self, key: int) -> bool:
        slot = self._slot.pop(key, None)
        if slot is None:
            return False
        for term in self._terms.pop(slot):
            posting = self._postings[term]
            del posting[slot]
            if not posting:
                del self._postings[term]
            self._arrays.pop(term, None)
        self._total_length -= int(self._length[slot])
        self._length[slot] = 0
        self._keys[slot] = None
        self._key_array[slot] = -1
        self._free.append(slot)
        self._idf = None
        return True

    def idf(self) -> dict[str, float]:
        """rank-bm25's BM25Okapi idf, with its floor for terms in over half the documents."""
        if self._idf is None:
            n = len(self._slot)
            idf: dict[str, float] = {}
            negative: list[str] = []
            for term, posting in self._postings.items():
                df = len(posting)
                value = math.log(n - df + 0.5) - math.log(df + 0.5)
                idf[term] = value
                if value < 0:
                    negative.append(term)
            if idf:
                floor = self.epsilon * (sum(idf.values()) / len(idf))
                for term in negative:
                    idf[term] = floor
            self._idf = idf
        return self._idf

    def _posting_arrays(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        arrays = self._arrays.get(term)
        if arrays is None:
            posting = self._postings[term]
            arrays = (np.fromiter(posting.keys(), dtype=np.int64, count=len(posting)),
                      np.fromiter(posting.values(), dtype=np.float32, count=len(posting)))
            self._arrays[term] = arrays
        return arrays

    def score_slots(self, query_tokens: list[str]) -> np.ndarray:
        """Scores of every slot (0 where no query term occurs); see `slot_keys`."""
        total = np.zeros(len(self._keys), dtype=np.float32)
        if not self._slot:
            return total
        idf = self.idf()
        avgdl = self._total_length / len(self._slot) or 1.0
        for term in query_tokens:  # a repeated query term counts again, as in rank-bm25
            if term not in self._postings:
                continue
            slots, tf = self._posting_arrays(term)
            norm = self.k1 * (1 - self.b + self.b * self._length[slots] / avgdl)
            total[slots] += idf[term] * (tf * (self.k1 + 1) / (tf + norm))
        return total

    @property
    def slot_keys(self) -> np.ndarray:
        """Document key of each slot, -1 for a free one."""
        return self._key_array[:len(self._keys)]

    def slot_of(self, key: int) -> int | None:
        return self._slot.get(key)

    def scores(self, query_tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(keys, scores) of every document sharing a term with the query."""
        total = self.score_slots(query_tokens)
        slots = np.flatnonzero(total)
        return self.slot_keys[slots], total[slots]

    def query_weight(self, query_tokens: list[str]) -> float:
        """What a document matching every query term once, at average length, would score.

        Lexical scores divided by this are comparable across queries (about 1 for
        a full match). A term the collection never uses counts at the highest idf,
        so a query that is mostly about something else scores low."""
        idf = self.idf()
        n = len(self._slot)
        unseen = math.log(n + 0.5) - math.log(0.5)
        return float(sum(idf.get(t, unseen) for t in query_tokens))
