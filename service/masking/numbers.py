"""Numbers: mainland mobiles, landlines, resident IDs and bank cards.

A number may be typed in groups (138 1234 5678, 6222-0212-3456-7890-128,
(021)6234-5678), so digit runs joined by short separators form a chain and
every run of consecutive groups is tried, longest first. Each kind has its
own shape and validity test; anything that passes none is left alone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from stdnum import luhn
from stdnum.cn import ric

from service.masking.base import ASCII_ALNUM, ASCII_LETTERS, Found
from service.masking.rules import Rules

_DIGITS = re.compile(r"[0-9]+")
# What may stand between two groups of one number.
_GAP = re.compile(r"[ \t\u00a0\-\u2010\u2011\u2013\u2014]{1,3}|[ \t]*\)[ \t\-]{0,2}")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_LOCAL_LABEL = re.compile(r"(?:座机|固话|电话|座機|固話|電話)(?:号码|號碼)?\s*[:：是为為]?\s*$")
# A label right before a number says what it is, even when a typo breaks its checksum.
_TAIL = r"(?:号码|號碼|号|號)?\s*(?:是|为|為|:|：)?\s*$"
_CARD_LABEL = re.compile(r"(?:银行卡|銀行卡|信用卡|储蓄卡|儲蓄卡|借记卡|借記卡|银联卡|銀聯卡|付款卡|退款卡|卡)" + _TAIL)
_ID_LABEL = re.compile(r"(?:身份证|身份證|证件|證件)" + _TAIL)
_PHONE_LABEL = re.compile(r"(?:手机|手機|电话|電話|联系方式|聯絡方式|聯繫方式|门号|門號|(?<![单單编編卡证證])(?:号码|號碼)|"
                          r"(?:tel|phone|mobile|phone number|mobile number|my number)(?: is)?)"
                          r"\s*(?:是|为|為|:|：)?\s*$", re.IGNORECASE)
_TAIWAN_MOBILE = re.compile(r"09[0-9]{8}")
# Hotlines and service numbers are the company's, not the customer's.
_SERVICE_NUMBER = re.compile(r"(?:400|800|95|96|100|12)")
_MAX_DIGITS = 19 + 4  # longest card plus a 0086 prefix


@dataclass(frozen=True)
class _Group:
    start: int
    end: int  # end of the digits; a trailing ID check letter X is not included
    digits: str
    x: bool
    clean_left: bool  # nothing alphanumeric glued to its left (XQG100, DD2024…)
    dead: bool  # touches a mask character: part of an already masked value


def _groups(norm: str, mask_char: str) -> list[_Group]:
    groups = []
    size = len(norm)
    for match in _DIGITS.finditer(norm):
        start, end = match.span()
        x = end < size and norm[end] in "Xx" and (end + 1 == size or norm[end + 1] not in ASCII_ALNUM)
        before = norm[start - 1] if start else ""
        after = norm[end + x] if end + x < size else ""
        # "SN-123…" and "B14" are codes: a letter, directly or across one joiner.
        glued = before in ASCII_LETTERS or (before in "-_/." and start >= 2 and norm[start - 2] in ASCII_LETTERS)
        groups.append(_Group(start, end, match.group(), x, not glued, mask_char in (before, after)))
    return groups


def _chains(norm: str, groups: list[_Group]) -> list[list[_Group]]:
    chains: list[list[_Group]] = []
    for group in groups:
        if chains:
            last = chains[-1][-1]
            if not last.x and not last.dead and not group.dead and _GAP.fullmatch(norm, last.end, group.start):
                chains[-1].append(group)
                continue
        chains.append([group])
    return chains


def find_numbers(text: str, norm: str, rules: Rules) -> list[Found]:
    found: list[Found] = []
    for chain in _chains(norm, _groups(norm, rules.mask_char)):
        i = 0
        while i < len(chain):
            if not chain[i].clean_left or chain[i].dead:
                i += 1
                continue
            best: tuple[int, Found] | None = None
            total = 0
            for j in range(i, len(chain)):
                total += len(chain[j].digits)
                if total > _MAX_DIGITS:
                    break
                candidate = _classify(chain[i:j + 1], text, norm, rules)
                if candidate is not None:
                    best = (j, candidate)
            if best is None:
                i += 1
            else:
                found.append(best[1])
                i = best[0] + 1
    return found


def _labelled(label: re.Pattern[str], norm: str, at: int) -> bool:
    return bool(label.search(norm, max(0, at - 14), at))


def _classify(groups: list[_Group], text: str, norm: str, rules: Rules) -> Found | None:
    digits = "".join(g.digits for g in groups)
    lengths = [len(g.digits) for g in groups]
    start, end = groups[0].start, groups[-1].end
    x = groups[-1].x
    if x or len(digits) in (15, 18):
        number = digits + ("X" if x else "")
        trusted = rules.get("id_card", "trust_label") and len(number) in (15, 18) and \
            _labelled(_ID_LABEL, norm, start)
        found = _id_card(number, start, end + x, rules, trusted)
        if found or x:
            return found
    for attempt in (_mobile, _bank_card, _landline, _other_phone):
        found = attempt(groups, digits, lengths, text, norm, rules)
        if found:
            return found
    return None


def is_resident_id(number: str, legacy_15: bool = True) -> bool:
    number = number.upper()
    if len(number) == 18:
        return ric.is_valid(number)
    if legacy_15 and len(number) == 15 and number.isdigit():
        # The 1999 upgrade: insert the century, append the check digit, validate as 18.
        upgraded = number[:6] + "19" + number[6:] + "0"
        return ric.is_valid(upgraded[:-1] + ric.calc_check_digit(upgraded))
    return False


def _id_card(number: str, start: int, end: int, rules: Rules, trusted: bool) -> Found | None:
    if not rules.enabled("id_card"):
        return None
    if not trusted and not is_resident_id(number, rules.get("id_card", "legacy_15")):
        return None
    keep = rules.get("id_card", "keep_last")
    return Found("id_card", start, end, rules.mask_char * (len(number) - keep) + number[len(number) - keep:])


def _mobile(groups, digits, lengths, text, norm, rules) -> Found | None:
    if not rules.enabled("mobile"):
        return None
    core_start, core_lengths = groups[0].start, lengths
    if len(groups) > 1 and groups[0].digits in ("86", "0086"):
        core_start, core_lengths, digits = groups[1].start, lengths[1:], digits[len(groups[0].digits):]
    elif len(digits) in (13, 15) and digits.startswith("86" if len(digits) == 13 else "0086"):
        cut = len(digits) - 11
        if lengths[0] <= cut:
            return None
        core_start, core_lengths, digits = groups[0].start + cut, [lengths[0] - cut] + lengths[1:], digits[cut:]
    if not _MOBILE.fullmatch(digits) or min(core_lengths) < 3:
        return None
    start = groups[0].start
    if start and norm[start - 1] == "+":
        start -= 1
    if start and norm[start - 1] == "(" and ")" in norm[start:core_start]:
        start -= 1
    first, last = rules.get("mobile", "keep_first"), rules.get("mobile", "keep_last")
    masked = digits[:first] + rules.mask_char * (11 - first - last) + digits[11 - last:]
    return Found("mobile", start, groups[-1].end, text[start:core_start] + masked)


def _bank_card(groups, digits, lengths, text, norm, rules) -> Found | None:
    if not rules.enabled("bank_card") or not 16 <= len(digits) <= 19:
        return None
    # Cards are typed whole, in fours, or as BIN + rest.
    shaped = len(groups) == 1 or (all(n == 4 for n in lengths[:-1]) and lengths[-1] <= 4) or \
        (len(groups) == 2 and lengths[0] == 6)
    if not shaped:
        return None
    if not luhn.is_valid(digits) and not (rules.get("bank_card", "trust_label") and
                                          _labelled(_CARD_LABEL, norm, groups[0].start)):
        return None
    if _label_pattern(rules.not_card_after).search(norm, max(0, groups[0].start - 12), groups[0].start):
        return None
    keep = rules.get("bank_card", "keep_last")
    hidden = 4 if rules.get("bank_card", "style") == "short" else len(digits) - keep
    return Found("bank_card", groups[0].start, groups[-1].end,
                 rules.mask_char * hidden + digits[len(digits) - keep:])


@lru_cache(maxsize=8)
def _label_pattern(labels: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True)) or "(?!)"
    return re.compile(rf"(?:{alternatives})\s*[:：#是为為]?\s*$")


def _landline(groups, digits, lengths, text, norm, rules) -> Found | None:
    if not rules.enabled("landline"):
        return None
    start, end = groups[0].start, groups[-1].end
    keep = rules.get("landline", "keep_last")
    if digits[0] != "0":
        # A bare local number counts only right after 电话/座机.
        if len(groups) == 1 and len(digits) in (7, 8) and digits[0] in "23456789" and \
                _LOCAL_LABEL.search(norm, max(0, start - 10), start):
            return Found("landline", start, end, rules.mask_char * (len(digits) - keep) + digits[len(digits) - keep:])
        return None
    if len(digits) < 10 or digits[1] == "0":
        return None
    area = 3 if digits[1] in "12" else 4  # 010 and 02x are the only three-digit area codes
    if digits[1] == "1" and not digits.startswith("010"):
        return None
    local = digits[area:]
    if len(local) not in (7, 8) or local[0] not in "23456789":
        return None
    if len(groups) > 1 and lengths[0] != area:
        return None
    if start and norm[start - 1] == "(" and norm[groups[0].end:groups[0].end + 1] == ")":
        start -= 1
    hidden = rules.mask_char * (len(local) - keep) + local[len(local) - keep:]
    if rules.get("landline", "keep_area_code"):
        return Found("landline", start, end, digits[:area] + "-" + hidden)
    return Found("landline", start, end, rules.mask_char * (len(digits) - keep) + digits[len(digits) - keep:])


def _other_phone(groups, digits, lengths, text, norm, rules) -> Found | None:
    """+852 5000 1234, 手機 0912-000-345: not mainland-shaped, but plainly a phone number."""
    if not rules.enabled("mobile") or not rules.get("mobile", "other_formats"):
        return None
    start, end = groups[0].start, groups[-1].end
    plus = start > 0 and norm[start - 1] == "+"
    if plus and len(groups) > 1 and lengths[0] <= 3 and 7 <= len(digits) - lengths[0] <= 12:
        local, keep_from = digits[lengths[0]:], groups[1].start
    elif not plus and 9 <= len(digits) <= 13 and not _SERVICE_NUMBER.match(digits) and \
            _labelled(_PHONE_LABEL, norm, start):
        local, keep_from = digits, start
    elif not plus and _TAIWAN_MOBILE.fullmatch(digits) and lengths in ([4, 3, 3], [4, 6]):
        local, keep_from = digits, start  # 0912-345-678: too short for a mainland landline
    else:
        return None
    keep = rules.get("mobile", "keep_last")
    start -= plus
    return Found("mobile", start, end, text[start:keep_from] + rules.mask_char * (len(local) - keep) + local[len(local) - keep:])
