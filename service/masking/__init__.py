"""Mask stage: find a customer's personal data in a message and mask it per SOP
(客户姓名用“*”代替，联系方式仅保留后4位) before anything else sees the text.

    masker = Masker(policy.masking or None)
    result = masker.mask("我叫张伟，手机13812345678", {"name": "张伟"})
    result.text  ->  "我叫张*，手机138****5678"

Recognizers (numbers, places, names) each propose spans; precise kinds
(numbers, e-mail) win over addresses, addresses over names, and a longer span
over a shorter one. Masking is idempotent: masked text masks to itself.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from service.masking.base import Found, normalise
from service.masking.names import NameFinder, mask_name as _mask_name, salutation
from service.masking.numbers import find_numbers
from service.masking.places import find_addresses, find_emails
from service.masking.rules import Rules, load_rules

__all__ = ["PiiSpan", "MaskResult", "Masker", "mask_phone", "mask_name", "salutation"]

_PRIORITY = {"id_card": 0, "bank_card": 1, "mobile": 2, "landline": 3, "email": 4, "address": 5, "name": 6}
_MOBILE = re.compile(r"1[3-9][0-9]{9}")


@dataclass(frozen=True)
class PiiSpan:
    kind: str  # mobile | landline | id_card | bank_card | email | address | name
    start: int  # offsets in the original text
    end: int
    original: str
    replacement: str


@dataclass(frozen=True)
class MaskResult:
    text: str
    spans: list[PiiSpan]

    def originals(self) -> list[str]:
        """Distinct original strings, longest first."""
        unique = dict.fromkeys(span.original for span in self.spans)
        return sorted(unique, key=len, reverse=True)


def mask_phone(number: str, keep_first: int = 3, keep_last: int = 4, mask_char: str = "*") -> str:
    """'13812345678' → '138****5678' (also with +86 or separators); other numbers keep only the last 4."""
    digits = re.sub(r"\D", "", number or "")
    if len(digits) in (13, 15) and digits.startswith(("86", "0086")) and _MOBILE.fullmatch(digits[-11:]):
        digits = digits[-11:]
    if _MOBILE.fullmatch(digits):
        return digits[:keep_first] + mask_char * (11 - keep_first - keep_last) + digits[11 - keep_last:]
    if len(digits) <= keep_last:
        return mask_char * len(digits)
    return mask_char * (len(digits) - keep_last) + digits[len(digits) - keep_last:]


def mask_name(name: str) -> str:
    """'张伟' → '张*'; '欧阳娜娜' → '欧阳**'."""
    return _mask_name(name)


class Masker:
    def __init__(self, rules: dict | None = None):
        self.rules: Rules = load_rules(rules)
        name_rules = self.rules.raw["name"]
        self._names = NameFinder(name_rules["style"], self.rules.mask_char, name_rules["from_jieba"],
                                 name_rules["not_names"])

    # --- public -----------------------------------------------------------

    def find(self, text: str, customer: dict | None = None) -> list[PiiSpan]:
        """Personal data in `text`, non-overlapping, in text order."""
        if not text:
            return []
        found = self._find(text, customer)
        return [PiiSpan(f.kind, f.start, f.end, text[f.start:f.end], f.replacement)
                for f in sorted(found, key=lambda f: f.start)]

    def mask(self, text: str, customer: dict | None = None) -> MaskResult:
        spans = self.find(text, customer)
        return MaskResult(_apply(text, [(s.start, s.end, s.replacement) for s in spans]), spans)

    def customer_originals(self, customer: dict | None) -> list[str]:
        """The record's personal values (name in both scripts, phone as given and as digits), longest first."""
        values: list[str] = []
        customer = customer or {}
        values.extend(self._record_names(customer))
        phone = customer.get("phone")
        if isinstance(phone, str) and phone.strip():
            values.append(phone.strip())
            digits = _record_digits(phone)
            if digits:
                values.append(digits)
        other = customer.get("id")
        if isinstance(other, str) and other.strip() and self.find(other.strip()):
            values.append(other.strip())  # only when the "id" is itself personal data (an ID card, a phone)
        unique = dict.fromkeys(v for v in values if len(v) >= 2)
        return sorted(unique, key=len, reverse=True)

    # --- internals --------------------------------------------------------

    def _find(self, text: str, customer: dict | None) -> list[Found]:
        norm = normalise(text)
        customer = customer or {}
        precise = find_numbers(text, norm, self.rules) + find_emails(text, norm, self.rules)
        precise += self._record_phone(text, norm, customer)
        chosen = _select(precise, [])
        addresses = [a for a in (_trim(a, chosen, text, self.rules.mask_char)
                                 for a in find_addresses(text, norm, self.rules)) if a]
        chosen += _merge(addresses)
        if self.rules.enabled("name"):
            chosen = self._add_names(text, chosen, self._record_names(customer))
        return chosen

    def _add_names(self, text: str, found: list[Found], record: list[str]) -> list[Found]:
        """Names are read from the text with numbers and addresses already masked, as
        they will stand in the result. Masking a name changes how its sentence reads
        (the surname stays, 张伟 → 张*), so those sentences are read again until
        nothing new turns up: masking the masked text then changes nothing."""
        whole = True
        for _ in range(6):
            masked, stretches = _apply_with_map(text, found)
            regions = [(0, len(masked))] if whole else \
                _sentences_with(masked, stretches, [f for f in found if f.kind == "name"])
            extra: list[Found] = []
            for begin, end in regions:
                for name in self._names.find(masked[begin:end], record):
                    start = _to_original(begin + name.start, begin + name.end, stretches)
                    if start is not None:
                        extra.append(self._names.span(text, start, start + name.end - name.start))
            found = _expose_less(found, extra, text, self.rules.mask_char)
            if whole:
                found = found + _select(extra, found)
                whole = False
                continue
            changed = False
            for name in sorted(extra, key=lambda f: f.start - f.end):
                clash = [f for f in found if _overlaps(f, name)]
                if not clash:
                    found, changed = found + [name], True
                elif all(f.kind == "name" for f in clash):
                    # 李先 masked to 李* let 张李 appear: mask the whole run instead.
                    start, end = min(f.start for f in clash + [name]), max(f.end for f in clash + [name])
                    if len(clash) > 1 or (clash[0].start, clash[0].end) != (start, end):
                        found = [f for f in found if f not in clash] + [self._names.span(text, start, end)]
                        changed = True
            if not changed:
                break
        return found

    def _record_names(self, customer: dict) -> list[str]:
        name = customer.get("name")
        if not isinstance(name, str) or not name.strip() or not self.rules.enabled("name"):
            return []
        from service.language import to_simplified, to_traditional

        name = re.sub(r"(先生|女士|小姐)$", "", name.strip()).strip()
        variants = {name, to_simplified(name), to_traditional(name)}
        return sorted(v for v in variants if len(v.replace(" ", "")) >= 2)

    def _record_phone(self, text: str, norm: str, customer: dict) -> list[Found]:
        """The record's phone wherever it appears, however it is spaced or prefixed."""
        phone = customer.get("phone")
        digits = _record_digits(phone) if isinstance(phone, str) else ""
        if len(digits) < 7:
            return []
        mobile = bool(_MOBILE.fullmatch(digits))
        kind = "mobile" if mobile else "landline"
        if not self.rules.enabled(kind):
            return []
        prefix = r"(?:\(?(?:\+|00)?86\)?[ \t\-]*)?" if mobile else ""
        body = r"[ \t\u00a0\-\u2010\u2011\u2013\u2014]{0,3}".join(digits)
        pattern = re.compile(rf"(?<![0-9A-Za-z]){prefix}(?P<core>{body})(?![0-9])")
        keep_last = self.rules.get(kind, "keep_last")
        found = []
        for match in pattern.finditer(norm):
            if mobile:
                masked = mask_phone(digits, self.rules.get("mobile", "keep_first"), keep_last, self.rules.mask_char)
            else:
                masked = mask_phone(digits, 0, keep_last, self.rules.mask_char)
            found.append(Found(kind, match.start(), match.end(), text[match.start():match.start("core")] + masked))
        return found


def _record_digits(phone: str) -> str:
    digits = re.sub(r"\D", "", phone or "")
    if len(digits) in (13, 15) and digits.startswith(("86", "0086")) and _MOBILE.fullmatch(digits[-11:]):
        return digits[-11:]
    return digits


def _overlaps(a: Found, b: Found) -> bool:
    return a.start < b.end and b.start < a.end


def _select(candidates: list[Found], taken: list[Found]) -> list[Found]:
    """Longest first, then by kind; a candidate overlapping one already taken is dropped."""
    chosen: list[Found] = []
    for candidate in sorted(candidates, key=lambda f: (f.start - f.end, _PRIORITY[f.kind], f.start)):
        if not any(_overlaps(candidate, other) for other in taken) and \
                not any(_overlaps(candidate, other) for other in chosen):
            chosen.append(candidate)
    return chosen


def _merge(addresses: list[Found]) -> list[Found]:
    """Overlapping address readings become one address, so no part of either is left readable."""
    merged: list[Found] = []
    for item in sorted(addresses, key=lambda f: (f.start, f.start - f.end)):
        if merged and item.start < merged[-1].end:
            last = merged[-1]
            if item.end > last.end:
                merged[-1] = Found("address", last.start, item.end, last.replacement, last.kept)
        else:
            merged.append(item)
    return merged


def _trim(address: Found, taken: list[Found], text: str, mask_char: str) -> Found | None:
    """Cut an address short where a number or e-mail inside it begins."""
    end = address.end
    for other in taken:
        if _overlaps(address, other):
            if other.start <= address.start:
                return None
            end = min(end, other.start)
    if end == address.end:
        return address
    while end > address.start and text[end - 1] in " \t,，、:：":
        end -= 1
    if end <= address.start + address.kept:
        return None
    return Found("address", address.start, end, text[address.start:address.start + address.kept] + mask_char * 4,
                 address.kept)


def _expose_less(found: list[Found], names: list[Found], text: str, mask_char: str) -> list[Found]:
    """An address keeps its province/city/district readable, unless a name sits there:
    then the address starts after the name, or stops showing before it."""
    result = []
    for item in found:
        if item.kind == "address" and item.kept:
            start, kept = item.start, item.kept
            for name in names:
                if name.start < start + kept and start < name.end:
                    if name.start <= start:
                        kept -= min(name.end, start + kept) - start
                        start = min(name.end, start + kept)
                    else:
                        kept = name.start - start
            if start >= item.end:
                continue
            if (start, kept) != (item.start, item.kept):
                item = Found("address", start, item.end, text[start:start + kept] + mask_char * 4, kept)
        result.append(item)
    return result


def _apply(text: str, spans: list[tuple[int, int, str]]) -> str:
    out, at = [], 0
    for start, end, replacement in sorted(spans):
        out += [text[at:start], replacement]
        at = end
    out.append(text[at:])
    return "".join(out)


def _apply_with_map(text: str, found: list[Found]) -> tuple[str, list[tuple[int, int, int]]]:
    """The masked text, and the stretches it shares with the original text as
    (masked start, masked end, original start): the unmasked text and the part
    of an address that stays readable."""
    parts, stretches = [], []
    at = out = 0
    for item in sorted(found, key=lambda f: f.start):
        parts.append(text[at:item.start])
        stretches.append((out, out + item.start - at + item.kept, at))
        out += item.start - at
        parts.append(item.replacement)
        out += len(item.replacement)
        at = item.end
    parts.append(text[at:])
    stretches.append((out, out + len(text) - at, at))
    return "".join(parts), stretches


_SENTENCE_END = re.compile(r"[。！？!?；;\n]")


def _sentences_with(masked: str, stretches: list[tuple[int, int, int]], items: list[Found]) -> list[tuple[int, int]]:
    """Sentences of the masked text that hold one of `items`' replacements."""
    starts = {original: masked_start for masked_start, _, original in stretches}
    positions = sorted(starts[item.end] for item in items if item.end in starts)  # just after each replacement
    bounds = [0] + [m.end() for m in _SENTENCE_END.finditer(masked)] + [len(masked)]
    touched = []
    for begin, end in zip(bounds, bounds[1:]):
        if any(begin < p <= end for p in positions):
            touched.append((begin, end))
    return touched


def _to_original(start: int, end: int, stretches: list[tuple[int, int, int]]) -> int | None:
    for masked_start, masked_end, original_start in stretches:
        if masked_start <= start and end <= masked_end:
            return original_start + start - masked_start
    return None  # inside (or across) a replacement

