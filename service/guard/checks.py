"""The deterministic draft checks.

Every check is `(ctx, policy) -> CheckResult` and reads only the draft, the
context the pipeline built and the policy. Reasons are plain Chinese sentences
an agent can act on; they never repeat a customer's personal data.

Texts are compared in Simplified script (Traditional drafts are converted
first) so every word list is written once.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from functools import lru_cache
from math import ceil

from service.fill.extract import extract
from service.guard import CheckResult, DraftContext
from service.language import detect_script, has_cjk, script_counts, to_simplified, to_traditional
from service.policy import Policy

log = logging.getLogger("draftdesk.guard")

Check = Callable[[DraftContext, Policy], CheckResult]

_CJK_CHAR = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"


def _fields(ctx: DraftContext) -> list[tuple[str, str]]:
    """Every text the customer will read, with the name used in reasons."""
    found = [("draft", ctx.draft_text or "")]
    if ctx.subject:
        found.append(("subject", ctx.subject))
    if ctx.sms_text:
        found.append(("sms", ctx.sms_text))
    return found


_WHERE = {"draft": "正文", "subject": "邮件标题", "sms": "短信"}


# --- personal data ------------------------------------------------------------

_SEPARATOR = r"[\s\-‐–—.·・/()（）]{0,2}"
_COMPACT_DROP = re.compile(r"[\s\-‐–—.·・/()（）+]")
# An unmasked mainland mobile, optionally written with +86 and separators.
_MOBILE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[\s\-]?)?(1[3-9]\d(?:[\s\-‐–—.·]?\d){8})(?!\d)")
# An 18-digit resident ID whose middle is a plausible birth date.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx])(?![0-9A-Za-z])")

_KIND_LABEL = {
    "phone": "手机号/电话", "id_number": "身份证号", "bank_card": "银行卡号", "email": "邮箱",
    "name": "客户姓名", "address": "地址", "personal_data": "个人信息",
}


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _kind(value: str) -> str:
    compact = _COMPACT_DROP.sub("", value)
    if "@" in value:
        return "email"
    if re.fullmatch(r"(?:0086|86)?1[3-9]\d{9}", compact):
        return "phone"
    if re.fullmatch(r"\d{17}[\dXx]|\d{15}", compact):
        return "id_number"
    if re.fullmatch(r"\d{16,19}", compact):
        return "bank_card"
    if re.fullmatch(r"0\d{9,11}|\d{7,8}", compact):
        return "phone"
    if re.fullmatch(rf"[{_CJK_CHAR}·•]{{2,5}}", value.strip()):
        return "name"
    if re.search(r"[省市区县镇乡路街道号楼室弄巷村]", value) and len(value) >= 6:
        return "address"
    return "personal_data"


def _hint(kind: str, value: str) -> str:
    """A masked form that helps an agent find the leak without showing it."""
    value = value.strip()
    digits = _digits(value)
    if kind == "phone":
        if len(digits) >= 11 and re.fullmatch(r"(?:0086|86)?1[3-9]\d{9}", digits):
            core = digits[-11:]
            return f"{core[:3]}****{core[-4:]}"
        return f"****{digits[-4:]}"
    if kind in ("id_number", "bank_card"):
        return f"****{_COMPACT_DROP.sub('', value)[-4:]}"
    if kind == "email":
        return "***@" + value.rsplit("@", 1)[-1]
    if kind == "name":
        return value[0] + "*" * (len(value) - 1)
    if kind == "address":
        return value[:3] + "***"
    return value[0] + "***" if value else "***"


@lru_cache(maxsize=1024)
def _matcher(value: str) -> re.Pattern[str] | None:
    value = value.strip()
    compact = _COMPACT_DROP.sub("", value)
    if len(compact) < 2:
        return None  # a single character would match everywhere
    if len(_digits(compact)) >= 7 and re.fullmatch(r"[\dXx]+", compact):
        if re.fullmatch(r"(?:0086|86)1[3-9]\d{9}", compact):
            compact = compact[-11:]
        # Digits may be re-typed with spaces or dashes: 138-1234-5678.
        body = _SEPARATOR.join(re.escape(ch) for ch in compact)
        return re.compile(rf"(?<![0-9A-Za-z]){body}(?![0-9A-Za-z])", re.IGNORECASE)
    variants = {value, to_traditional(value), to_simplified(value)}
    return re.compile("|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True)), re.IGNORECASE)


def _known_personal_data(ctx: DraftContext) -> list[str]:
    values = [v for v in (ctx.pii_originals or []) if isinstance(v, str)]
    customer = ctx.customer or {}
    for key in ("name", "phone"):
        if isinstance(customer.get(key), str):
            values.append(customer[key])
    unique: dict[str, str] = {}
    for value in values:
        if value.strip():
            unique.setdefault(value.strip().casefold(), value.strip())
    return sorted(unique.values(), key=len, reverse=True)


def find_personal_data(text: str, ctx: DraftContext) -> list[dict[str, str]]:
    """Personal data in `text`: [{kind, hint}], deduplicated, raw values never returned."""
    if not text:
        return []
    found: list[dict[str, str]] = []
    seen: set[str] = set()

    def add(kind: str, value: str) -> None:
        key = _digits(value)[-11:] if kind == "phone" else _COMPACT_DROP.sub("", value).casefold()
        if key not in seen:
            seen.add(key)
            found.append({"kind": kind, "hint": _hint(kind, value)})

    for value in _known_personal_data(ctx):
        pattern = _matcher(value)
        if pattern is not None and pattern.search(text):
            add(_kind(value), value)
    for match in _MOBILE.finditer(text):
        add("phone", _digits(match.group(1)))
    for match in _ID_NUMBER.finditer(text):
        add("id_number", match.group(1))
    return found


def check_personal_data(ctx: DraftContext, policy: Policy) -> CheckResult:
    leaks = []
    for where, text in _fields(ctx):
        for item in find_personal_data(text, ctx):
            leaks.append({**item, "where": where})
    if not leaks:
        return CheckResult("personal_data", True, "草稿中没有客户的个人信息。")
    listed = "、".join(f"{_KIND_LABEL[i['kind']]}（{i['hint']}，在{_WHERE[i['where']]}）" for i in leaks)
    return CheckResult("personal_data", False, f"草稿包含客户个人信息：{listed}，发送前须删除或改为打码形式。",
                       {"found": leaks})


# --- placeholders -------------------------------------------------------------

# Names the SOP and the templates use for slots; seen bare inside 【】 they are unfilled.
PLACEHOLDER_NAMES = frozenset({
    "客户称呼", "客户姓名", "客户名称", "客户昵称", "称呼", "姓名", "昵称", "订单号", "订单编号", "产品型号",
    "订单号/产品型号", "处理时限", "联系方式", "客服工号", "工号", "客服姓名", "问题类型", "问题描述",
    "解决方案", "补偿方案", "补偿金额", "金额", "券码", "日期", "时间", "物流单号", "快递单号", "地址",
    "手机号", "门店名称", "处理结果", "预计时间", "具体时间", "原因",
})
TEMPLATE_VARIABLES = frozenset({
    "customer_title", "order_ref", "product_ref", "issue_summary", "faq_answer", "deadline",
    "resolution_deadline", "followup", "compensation", "agent_contact", "team_name", "personal_note",
})
# WeChat writes its stickers as [微笑]; those are not slots.
_WECHAT_STICKERS = frozenset({"微笑", "抱拳", "握手", "玫瑰", "爱心", "强", "愉快", "鼓掌", "OK", "耶", "咖啡", "太阳", "拥抱", "加油", "合十", "祈祷"})

_TEMPLATE_SYNTAX = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|\{\{|\}\}|\{%|%\}|\$\{[^}\n]*\}", re.DOTALL)
_FORMAT_FIELD = re.compile(r"\{\s*[A-Za-z_][A-Za-z0-9_.]*\s*\}")
_SQUARE = re.compile(r"[\[［]([^\[\]［］\n]{0,30})[\]］]")
_LENTICULAR = re.compile(r"[【〖]([^【】〖〗\n]{1,30})[】〗]")
_NULLISH = re.compile(r"(?<![A-Za-z])(?:None|NaN|undefined|null|nil)(?![A-Za-z])")
_XXX = re.compile(r"(?<![A-Za-z0-9])(?:[xX]{2,}|×{2,}|[○◯]{2,}|_{3,}|＿{2,})(?![A-Za-z0-9])")
_EMPTY_SLOTS = [
    re.compile(r"[，,、；;：:][ \t　]*[，,、；;。！!？?]"),      # 订单，，已发货 / 联系方式：。
    re.compile(r"[。！!？?][ \t　]*[，,、；;：:]"),              # 您好！，
    re.compile(r"(?m)^[ \t　]*[，,、；;：:。]"),                  # ，您好！ (the salutation was empty)
    re.compile(r"（[ \t　]*）|\([ \t　]*\)|“[ \t　]*”|《[ \t　]*》|【[ \t　]*】|「[ \t　]*」|『[ \t　]*』|‘[ \t　]*’|\[[ \t　]*\]|［[ \t　]*］"),
    re.compile(r"(?:尊敬的|亲爱的)[ \t　]*[，,：:！!。]"),          # 尊敬的，
    re.compile(r"(?<![A-Za-z])(?:Dear|Hi|Hello)[ \t]*,", re.IGNORECASE),
    re.compile(r"的的(?!确)|关于的"),
]
_DIVIDER = re.compile(r"[-—–─=_*·]{3,}")


def _slot_name(content: str) -> str:
    return re.split(r"[:：]", content.strip(), maxsplit=1)[0].strip()


def _only_punctuation(line: str) -> bool:
    stripped = line.strip()
    if not stripped or _DIVIDER.fullmatch(stripped):
        return False
    return all(unicodedata.category(ch).startswith("P") or ch.isspace() for ch in stripped)


def find_placeholders(text: str) -> list[dict[str, str]]:
    """Unfilled slots in `text`: [{kind, text}]."""
    found: list[dict[str, str]] = []
    simplified = to_simplified(text)

    def add(kind: str, snippet: str) -> None:
        item = {"kind": kind, "text": snippet.strip() or snippet}
        if item not in found:
            found.append(item)

    for match in _TEMPLATE_SYNTAX.finditer(simplified):
        add("template_syntax", match.group(0))
    for match in _FORMAT_FIELD.finditer(simplified):
        add("template_syntax", match.group(0))
    for match in _SQUARE.finditer(simplified):
        content = match.group(1).strip()
        if content in _WECHAT_STICKERS or not content:
            continue  # empty brackets are reported as an empty slot below
        if (re.search(f"[{_CJK_CHAR}]", content) or content in TEMPLATE_VARIABLES
                or re.fullmatch(r"[xX×.…\s]+", content)):
            add("bracket", match.group(0))
    for match in _LENTICULAR.finditer(simplified):
        content = match.group(1).strip()
        name = _slot_name(content)
        if name in PLACEHOLDER_NAMES or content in TEMPLATE_VARIABLES or content.endswith("模板"):
            add("bracket", match.group(0))
    for match in _NULLISH.finditer(simplified):
        add("null_value", match.group(0))
    for match in _XXX.finditer(simplified):
        token = match.group(0)
        if token[0] in "xX" and len(token) == 2:
            # Two x's are a slot only inside Chinese text (张XX先生), not e.g. "XX-Large".
            before = simplified[match.start() - 1: match.start()]
            after = simplified[match.end(): match.end() + 1]
            if not (re.match(f"[{_CJK_CHAR}]", before) or re.match(f"[{_CJK_CHAR}]", after)):
                continue
        add("filler", token)
    for pattern in _EMPTY_SLOTS:
        for match in pattern.finditer(simplified):
            add("empty_slot", match.group(0))
    for line in simplified.splitlines():
        if _only_punctuation(line):
            add("empty_line", line)
    return found


def check_placeholders(ctx: DraftContext, policy: Policy) -> CheckResult:
    found = []
    for where, text in _fields(ctx):
        for item in find_placeholders(text):
            found.append({**item, "where": where})
    if not found:
        return CheckResult("placeholders", True, "所有占位符都已填写。")
    listed = "、".join(f"“{i['text']}”（{_WHERE[i['where']]}）" for i in found[:6])
    more = f"等{len(found)}处" if len(found) > 6 else ""
    return CheckResult("placeholders", False, f"草稿还有未填写的占位符或空位：{listed}{more}。", {"found": found})


# --- jargon -------------------------------------------------------------------

@lru_cache(maxsize=8)
def _jargon_patterns(glossary: tuple[tuple[str, str], ...]) -> list[tuple[str, str, re.Pattern[str]]]:
    patterns = []
    for term, plain in sorted(glossary, key=lambda item: len(item[0]), reverse=True):
        simplified = to_simplified(term)
        body = re.escape(simplified)
        # Lookarounds keep 404 out of 14045 or 400-404-…, and RMA out of "normal".
        if simplified[0].isdigit():
            body = r"(?<!\d)(?<!\d-)(?<!\d\s)" + body
        elif simplified[0].isascii() and simplified[0].isalpha():
            body = r"(?<![A-Za-z])" + body
        if simplified[-1].isdigit():
            body += r"(?!\d)(?!-\d)(?!\s\d)"
        elif simplified[-1].isascii() and simplified[-1].isalpha():
            body += r"(?:e?s)?(?![A-Za-z])"
        patterns.append((term, plain, re.compile(body, re.IGNORECASE)))
    return patterns


def find_jargon(text: str, policy: Policy) -> list[dict[str, str]]:
    simplified = to_simplified(text)
    found = []
    for term, plain, pattern in _jargon_patterns(tuple(policy.jargon.items())):
        if pattern.search(simplified):
            found.append({"term": term, "replacement": plain})
    return found


def check_jargon(ctx: DraftContext, policy: Policy) -> CheckResult:
    terms: list[dict[str, str]] = []
    for where, text in _fields(ctx):
        for item in find_jargon(text, policy):
            if all(item["term"] != t["term"] for t in terms):
                terms.append({**item, "where": where})
    if not terms:
        return CheckResult("jargon", True, "没有发现内部或技术术语。")
    listed = "、".join(f"“{t['term']}”改为“{t['replacement']}”" for t in terms)
    return CheckResult("jargon", False, f"草稿使用了客户不易理解的术语，请把{listed}。", {"terms": terms})


# --- commitments --------------------------------------------------------------

# Words that promise money or goods on their own.
_FIRM_WORDS = ("积分补偿", "现金补偿", "全额退款", "退全款", "赔偿", "补偿", "赔付", "包赔", "返现", "免单", "报销")
# Words that only promise when a giver or an amount goes with them (优惠券 can be a rule, not a gift).
_SOFT_WORDS = ("退款", "退还", "退回", "返还", "优惠券", "代金券", "抵用券", "礼品卡", "购物卡", "红包", "现金",
               "积分", "补贴", "礼品", "券")
_COMMIT_WORD = re.compile("|".join(sorted(_FIRM_WORDS + _SOFT_WORDS, key=len, reverse=True)))
_GIVER = re.compile(r"为您|给您|帮您|向您|替您|送您|赠送|赠予|发放|补发|奉上|我们将|我们会|我们愿意|将为|会为|立即|马上|安排|承诺|保证|准备了")
_NEGATION = re.compile(r"不(?![便满好周快少])|无法|没法|没有|未能|暂无")
# A refund the customer may apply for (申请退款, 如需退款) is not promised.
_REFUND_PROCESS_BEFORE = re.compile(r"(?:申请|如需|可以|可|查询|查看)$")
# A rule or a process named by the word (赔偿标准, 退款进度, 优惠券使用规则) promises nothing.
_INFORMATIONAL_AFTER = re.compile(r"^(?:使用)?(?:流程|进度|申请|规则|方式|政策|说明|入口|状态|标准|规定|范围|条款)")
_GIVER_AFTER = re.compile(r"^(?:给|到)?您")  # 差价将退还给您

_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_CN_NUM = "零〇一二两三四五六七八九十百千万"
_AMOUNT = re.compile(
    rf"(?:¥|￥|RMB|CNY|人民币)\s*(?P<a>{_NUM})\s*(?P<au>万|千)?"
    rf"|(?P<b>{_NUM})\s*(?P<bu>万|千)?\s*(?:元|块钱|块|圆|RMB|CNY|人民币)"
    rf"|(?P<c>[{_CN_NUM}]+)\s*(?:元|块钱|圆|块(?![{_CJK_CHAR}]))",
    re.IGNORECASE,
)
# Amounts that are prices or order totals, not offers.
_PRICE_BEFORE = re.compile(r"(?:购买|购入|买的|买了|价格|售价|原价|标价|定价|实付|实付款|支付了|付了|付款|订单金额|金额为|花了|单价|总价|满|价值约)\s*[为是了:：]?\s*$"
                           rf"|满\s*{_NUM}\s*元?\s*减\s*$")
_SENTENCE_SPLIT = re.compile(r"[。！!？?；;\n]")
_CLAUSE = re.compile(r"(?:[^，,]|(?<=\d),(?=\d{3}))+")  # 1,200元 stays whole
_WINDOW = 12


def _chinese_number(text: str) -> float:
    digits = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
    units = {"十": 10, "百": 100, "千": 1000}
    total = section = number = 0
    for ch in text:
        if ch in digits:
            number = digits[ch]
        elif ch in units:
            section += (number or (1 if ch == "十" else 0)) * units[ch]
            number = 0
        elif ch == "万":
            total += (section + number) * 10000
            section = number = 0
    return float(total + section + number)


def _amounts(clause: str) -> list[tuple[int, int, float]]:
    found = []
    for match in _AMOUNT.finditer(clause):
        if _PRICE_BEFORE.search(clause[max(0, match.start() - 10): match.start()]):
            continue
        if match.group("c"):
            value = _chinese_number(match.group("c"))
        else:
            raw, unit = (match.group("a"), match.group("au")) if match.group("a") else (match.group("b"), match.group("bu"))
            value = float(raw.replace(",", "")) * {"万": 10000, "千": 1000}.get(unit or "", 1)
        if value > 0:
            found.append((match.start(), match.end(), value))
    return found


def _gap(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(0, max(a[0], b[0]) - min(a[1], b[1]))


def find_commitments(text: str, policy: Policy) -> dict:
    """Compensation and refund promises in `text`: the words, the amounts attached
    to them, and the promises left without any amount."""
    simplified = to_simplified(text)
    defaults = [to_simplified(v) for v in policy.compensation.default_offer.values() if v]
    words: list[str] = []
    amounts: list[float] = []
    unpriced: list[str] = []
    default_offer = False
    for sentence in _SENTENCE_SPLIT.split(simplified):
        has_default = any(d in sentence for d in defaults)
        default_offer = default_offer or has_default
        sentence_amounts: dict[int, float] = {}  # by position: one amount can sit by two words
        sentence_unpriced: list[str] = []
        for clause_match in _CLAUSE.finditer(sentence):
            clause, offset = clause_match.group(0), clause_match.start()
            clause_amounts = _amounts(clause)
            for match in _COMMIT_WORD.finditer(clause):
                word = match.group(0)
                if _NEGATION.search(clause[max(0, match.start() - 6): match.start()]):
                    continue
                if _INFORMATIONAL_AFTER.search(clause[match.end():]):
                    continue
                if word in ("退款", "退还", "退回") and _REFUND_PROCESS_BEFORE.search(clause[: match.start()]):
                    continue
                attached = {offset + s: v for s, e, v in clause_amounts if _gap((s, e), match.span()) <= _WINDOW}
                if word in _SOFT_WORDS and not attached:
                    # Without an amount, 优惠券/退款 only promise when someone gives them just before.
                    lead = clause[max(0, match.start() - _WINDOW): match.start()]
                    if not (_GIVER.search(lead) or _GIVER_AFTER.search(clause[match.end():])):
                        continue
                words.append(word)
                if attached:
                    sentence_amounts.update(attached)
                else:
                    sentence_unpriced.append(word)
        amounts.extend(sentence_amounts.values())
        # A promise without an amount is covered by an amount or the default offer in the same sentence.
        if sentence_unpriced and not sentence_amounts and not has_default:
            unpriced.extend(sentence_unpriced)
    return {"words": list(dict.fromkeys(words)), "amounts": amounts, "unpriced": list(dict.fromkeys(unpriced)),
            "default_offer": default_offer}


_ROLE_LIMIT = {"agent": "agent_limit", "supervisor": "supervisor_limit", "admin": "manager_limit"}
_ROLE_LABEL = {"agent": "客服", "supervisor": "主管", "admin": "经理"}
_APPROVER_LABEL = {"supervisor": "主管（supervisor）", "admin": "经理（admin）"}


def _fmt(amount: float) -> str:
    return f"{amount:g}"


def check_commitments(ctx: DraftContext, policy: Policy) -> CheckResult:
    comp = policy.compensation
    role = ctx.role if ctx.role in _ROLE_LIMIT else "agent"
    limit = getattr(comp, _ROLE_LIMIT[role])
    text = "\n".join(t for where, t in _fields(ctx) if where != "subject")
    found = find_commitments(text, policy)
    largest = max(found["amounts"], default=None)
    details = {"commitments": found["words"], "largest_amount": largest, "total_amount": sum(found["amounts"]) or None,
               "limit": limit, "role": role, "currency": comp.currency, "default_offer": found["default_offer"],
               "approver": None}
    if not found["words"]:
        return CheckResult("commitments", True, "草稿没有补偿或退款承诺。", details)
    if largest is not None and largest > limit:
        approver = "supervisor" if largest <= comp.supervisor_limit and role == "agent" else "admin"
        details["approver"] = approver
        beyond = "，且超出经理权限，须另行申请" if largest > comp.manager_limit else ""
        return CheckResult(
            "commitments", False,
            f"草稿承诺了{_fmt(largest)}{comp.currency}的补偿或退款，超过{_ROLE_LABEL[role]}权限"
            f"{_fmt(limit)}{comp.currency}，须{_APPROVER_LABEL[approver]}审批{beyond}。", details)
    if found["unpriced"] and role == "agent":
        details["approver"] = "supervisor"
        listed = "、".join(found["unpriced"])
        return CheckResult(
            "commitments", False,
            f"草稿做出了未写明金额的补偿承诺（{listed}），且不是政策允许的默认补偿，须{_APPROVER_LABEL['supervisor']}审批。",
            details)
    shown = f"（最高{_fmt(largest)}{comp.currency}）" if largest is not None else ""
    return CheckResult("commitments", True,
                       f"补偿承诺{shown}在{_ROLE_LABEL[role]}权限{_fmt(limit)}{comp.currency}以内。", details)


# --- tone ---------------------------------------------------------------------

_SALUTATION = re.compile(
    r"^\s*(?:"
    r"[^\n。！!：:]{0,20}?(?:(?:您|你)好(?!好)|早上好|上午好|下午好|晚上好)[！!，,。：:～~]?"
    r"|(?:尊敬的|亲爱的)[^\n，,。！!：:]{0,20}[：:，,！!]"
    r"|[^\n，,。！!：:]{1,12}[：:][ \t]*\n"
    r"|(?:Dear|Hi|Hello)\b[^\n,，:]{0,30}[,，:]?"
    r")\s*",
    re.IGNORECASE,
)
_EMPATHY = re.compile(
    r"抱歉|歉意|致歉|道歉|对不起|不好意思|理解您|非常理解|十分理解|完全理解|心情|带来不便|带来困扰|带来麻烦|添麻烦|"
    r"添了麻烦|让您久等|让您失望|让您不满|不愉快|很遗憾|深感|感同身受|辛苦您|委屈|sorry|apolog|understand|regret",
    re.IGNORECASE,
)
_BLAME = re.compile(
    r"您自己操作不当|您操作不当|您的操作不当|您操作有误|您操作失误|是您的问题|您自己的问题|是您自己|您自己的原因|您个人原因|您的原因导致|您自己造成|"
    r"您使用不当|您没有看清|您没看清|您没有仔细|您没仔细|(?<![难不别])怪您|您应该自己|您早该|您理解错了|您搞错了|"
    r"您弄错了|您的责任|责任在您|您不会用|谁让您|your fault|you should have",
    re.IGNORECASE,
)
_BLAME_NEGATED = re.compile(r"(?:不|并非|绝非|不在于)$")  # 这不是您的问题
_CLOSE = re.compile(
    r"感谢|谢谢|祝您|祝好|祝愉快|如有其他|如有疑问|如有任何|如还有|如仍有|随时联系|随时与我们|欢迎随时|随时为您|期待|"
    r"敬请谅解|再次致歉|再次向您|再次表示|竭诚|为您服务|thank|regards|feel free|best wishes|sincerely",
    re.IGNORECASE,
)
OPENING_CHARS = 40


def _opening(text: str) -> str:
    stripped = text.strip()
    match = _SALUTATION.match(stripped)
    rest = stripped[match.end():] if match else stripped
    return rest[:OPENING_CHARS]


def _closing(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[-4:]) + "\n" + text.strip()[-100:]


def check_tone(ctx: DraftContext, policy: Policy) -> CheckResult:
    text = to_simplified(ctx.draft_text or "")
    problems, failed = [], []
    if ctx.category == "complaint" and not _EMPATHY.search(_opening(text)):
        failed.append("opening")
        problems.append("投诉回复的开头没有先致歉或表达理解")
    blaming = text.replace("你", "您")
    blame = [m.group(0) for m in _BLAME.finditer(blaming)
             if not _BLAME_NEGATED.search(blaming[max(0, m.start() - 4): m.start()])]
    if blame:
        failed.append("blame")
        problems.append("有责怪客户的说法（" + "、".join(dict.fromkeys(blame)) + "）")
    if not _CLOSE.search(_closing(text)):
        failed.append("close")
        problems.append("结尾缺少礼貌的结束语（如感谢、祝福或欢迎随时联系）")
    details = {"failed_parts": failed, "blame_phrases": list(dict.fromkeys(blame))}
    if problems:
        return CheckResult("tone", False, "语气不合要求：" + "；".join(problems) + "。", details)
    return CheckResult("tone", True, "语气得体：开头、措辞和结束语都符合要求。", details)


# --- language -----------------------------------------------------------------

_LATIN = re.compile(r"[A-Za-z]")
_SCRIPT_LABEL = {"hant": "繁体中文", "hans": "简体中文", "other": "非中文"}


def check_language(ctx: DraftContext, policy: Policy) -> CheckResult:
    message, draft = ctx.message_text or "", ctx.draft_text or ""
    wanted, got = detect_script(message), detect_script(draft)
    details = {"message_script": wanted, "draft_script": got}
    if wanted == "hant":
        hant, hans = script_counts(draft)
        details["simplified_chars"] = hans
        # A draft made only of characters both scripts share is fine Traditional text.
        if got == "hant" or (has_cjk(draft) and hans == 0):
            return CheckResult("language", True, "客户用繁体中文，草稿也是繁体中文。", details)
        return CheckResult("language", False, f"客户用繁体中文写信，草稿却是{_SCRIPT_LABEL[got]}，请改为繁体。", details)
    if wanted == "hans":
        if got == "hans":
            return CheckResult("language", True, "客户用简体中文，草稿也是简体中文。", details)
        return CheckResult("language", False, f"客户用简体中文写信，草稿却是{_SCRIPT_LABEL[got]}，请改为简体。", details)
    letters = [ch for ch in message if ch.isalpha()]
    if not letters:
        return CheckResult("language", True, "客户消息没有文字（如只有表情或数字），不限定回复语言。", details)
    if not any(_LATIN.match(ch) for ch in letters):
        return CheckResult("language", False, "客户使用的语言既不是中文也不是英文，请人工确认回复语言。", details)
    latin = len(_LATIN.findall(draft))
    cjk = sum(1 for ch in draft if has_cjk(ch))
    details["draft_latin_share"] = round(latin / (latin + cjk), 2) if latin + cjk else 0.0
    if latin >= 20 and latin >= cjk:
        return CheckResult("language", True, "客户用英文写信，草稿以英文为主。", details)
    return CheckResult("language", False, "客户用英文写信，草稿却主要是中文，请用英文回复或请人工确认。", details)


# --- channel format -----------------------------------------------------------

SUBJECT_PREFIX = "【客户服务回复】"
SMS_SEGMENT_CHARS = 70
SMS_MAX_CHARS = 140


def check_channel_format(ctx: DraftContext, policy: Policy) -> CheckResult:
    info = policy.channels.get(ctx.channel)
    if info is None:
        return CheckResult("channel_format", False, f"未知的渠道“{ctx.channel}”，无法核对格式。", {"channel": ctx.channel})
    problems: list[str] = []
    details: dict = {"channel": ctx.channel}
    draft = (ctx.draft_text or "").strip()
    if not draft:
        problems.append("草稿正文为空")
    if info.email_subject:
        subject = to_simplified((ctx.subject or "").strip())
        if not subject:
            problems.append("邮件缺少标题")
        else:
            if not subject.startswith(SUBJECT_PREFIX):
                problems.append(f"邮件标题应以{SUBJECT_PREFIX}开头")
            order_id = extract(ctx.message_text or "").order_id
            if order_id and order_id.upper() not in subject.upper():
                problems.append("邮件标题缺少客户提到的订单号")
            label = policy.categories[ctx.category].label if ctx.category in policy.categories else None
            labels = [label] if label else [c.label for c in policy.categories.values()]
            if not any(lb in subject for lb in labels):
                problems.append(f"邮件标题缺少问题类型（{'/'.join(labels)}）")
    if info.short_reply:
        limit = policy.limits.short_reply_max_chars
        details.update(length=len(draft), max_chars=limit)
        if len(draft) > limit:
            problems.append(f"{info.label}渠道要求简短回复，草稿有{len(draft)}字，超过{limit}字")
    if info.sms_confirmation:
        sms = (ctx.sms_text or "").strip()
        if not sms:
            problems.append("电话渠道需要同步发送短信确认，但没有短信内容")
        else:
            segments = ceil(len(sms) / SMS_SEGMENT_CHARS)
            details.update(sms_length=len(sms), sms_segments=segments)
            if len(sms) > SMS_MAX_CHARS:
                problems.append(f"确认短信有{len(sms)}字，超过{SMS_MAX_CHARS}字")
            leaks = find_personal_data(sms, ctx)
            if leaks:
                details["sms_personal_data"] = leaks
                problems.append("确认短信含有客户个人信息（" + "、".join(f"{_KIND_LABEL[i['kind']]} {i['hint']}" for i in leaks) + "）")
    if problems:
        return CheckResult("channel_format", False, "渠道格式不合要求：" + "；".join(problems) + "。", details)
    return CheckResult("channel_format", True, f"符合{info.label}渠道的格式要求。", details)


# --- running them -------------------------------------------------------------

CHECKS: tuple[tuple[str, Check], ...] = (
    ("personal_data", check_personal_data),
    ("placeholders", check_placeholders),
    ("jargon", check_jargon),
    ("commitments", check_commitments),
    ("tone", check_tone),
    ("language", check_language),
    ("channel_format", check_channel_format),
)


def run_checks(ctx: DraftContext, policy: Policy, extra: Iterable[CheckResult] = ()) -> list[CheckResult]:
    """All checks in a fixed order, then `extra` (checks run elsewhere) in the order given."""
    results = []
    for name, check in CHECKS:
        try:
            results.append(check(ctx, policy))
        except Exception as exc:  # noqa: BLE001 - a broken check must flag the draft, not lose it
            log.exception("check %s raised", name)
            results.append(CheckResult(name, False, f"检查“{name}”运行出错，需人工复核。", {"error": type(exc).__name__}))
    results.extend(extra)
    return results
