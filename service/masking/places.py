"""E-mail addresses and street addresses."""
from __future__ import annotations

import re
from functools import lru_cache

from service.masking.base import CJK, Found
from service.masking.rules import Rules


@lru_cache(maxsize=8)
def _email(mask_char: str) -> re.Pattern[str]:
    # ASCII-only local part, so 邮箱abc@qq.com never takes 邮箱 with it; nothing glued
    # on either side (a@b@c is not an address, ***@qq.com is one already masked).
    return re.compile(
        rf"(?<![A-Za-z0-9._%+\-@{re.escape(mask_char)}])[A-Za-z0-9._%+\-]+@"
        r"(?P<domain>[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,})"
        r"(?![A-Za-z0-9\-@])"
    )


def find_emails(text: str, norm: str, rules: Rules) -> list[Found]:
    if not rules.enabled("email") or "@" not in norm:
        return []
    found = []
    for match in _email(rules.mask_char).finditer(norm):
        domain = text[match.start("domain"):match.end("domain")] if rules.get("email", "keep_domain") else "***"
        found.append(Found("email", match.start(), match.end(), rules.mask_char * 3 + "@" + domain))
    return found


# Characters that end a place name rather than belong to it (我住在…, 寄到…, 地址…).
_STOP = "我你您他她它们們的了是在有与與及或把被让讓给給从從到往对對为為以说說问問买買想要请請帮幫已又再很吗嗎呢吧啊呀哦嗯么麼嘛啦住寄送址搬改去就也还還"
_P = rf"(?:(?![{_STOP}])[{CJK}])"
_PROVINCES = (
    "北京|天津|上海|重庆|重慶|河北|山西|辽宁|遼寧|吉林|黑龙江|黑龍江|江苏|江蘇|浙江|安徽|福建|江西|山东|山東|河南|湖北|湖南|"
    "广东|廣東|海南|四川|贵州|貴州|云南|雲南|陕西|陝西|甘肃|甘肅|青海|台湾|臺灣|台灣|内蒙古|內蒙古|广西|廣西|西藏|宁夏|寧夏|"
    "新疆|香港|澳门|澳門"
)
# Large cities, so that 本人杭州市… starts the address at 杭州, not at 本人.
_CITIES = (
    "杭州|广州|廣州|深圳|南京|苏州|蘇州|武汉|武漢|成都|西安|郑州|鄭州|长沙|長沙|济南|濟南|青岛|青島|大连|大連|沈阳|瀋陽|哈尔滨|"
    "長春|长春|石家庄|太原|合肥|南昌|福州|厦门|廈門|昆明|贵阳|貴陽|南宁|南寧|海口|兰州|蘭州|西宁|西寧|银川|銀川|乌鲁木齐|"
    "呼和浩特|拉萨|宁波|寧波|无锡|無錫|东莞|東莞|佛山|珠海|温州|溫州|常州|徐州|烟台|煙台|泉州|惠州|中山|绍兴|紹興|嘉兴|"
    "金华|台州|南通|扬州|揚州|保定|唐山|洛阳|襄阳|宜昌|株洲|衡阳|柳州|桂林|三亚|汕头|江门|湛江|潍坊|临沂|淄博|威海|芜湖|"
    "绵阳|遵义|大理|丽江|台北|臺北|台中|臺中|高雄|新北|桃园|桃園|台南|臺南"
)
_KNOWN_PLACE = re.compile(f"{_PROVINCES}|{_CITIES}")
_REGION = (
    rf"(?P<province>(?:{_PROVINCES})(?:省|市|(?:壮族|回族|维吾尔|壯族|維吾爾)?自治[区區]|特[别別]行政[区區])?)?"
    rf"(?P<city>{_P}{{1,5}}?(?:市|州|盟|地[区區])(?![市州]))?"
    rf"(?P<district>{_P}{{1,6}}?(?:[区區县縣旗]|市)(?![区區县縣市]))?"
    rf"(?P<town>{_P}{{1,5}}?(?:[镇鎮乡鄉]|街道))?"
)
_STREET = (rf"(?:{_P}{{1,6}}?(?:大道|大街|[路街巷]|胡同)|{_P}{{2,6}}?里)"
           rf"(?:[东西南北中東一二三四五六七八九十0-9]{{1,3}}段|[东西南北中東](?=[0-9]))?")
_NUMBER = r"(?:[0-9]{1,5}[弄巷]\s?)?[0-9]{1,5}(?:[-—之][0-9]{1,4})?\s?[号號](?:院|[楼樓])?"
_ESTATE = (rf"{_P}{{2,8}}?(?:小[区區]|花[园園]|公寓|大[厦廈]|家[园園]|新村|社[区區]|苑|公[馆館]|大[楼樓]|[广廣]场|[广廣]場|村)")
_UNIT = (r"(?:[0-9A-Za-z]{1,5}(?:[-—][0-9A-Za-z]{1,5}){0,2}|[一二三四五六七八九十]{1,3})\s?"
         r"(?:[号號][楼樓]|[栋棟幢座]|[单單]元|[楼樓层層室号號户戶组組])")
_ROOM = r"(?:[0-9]{1,5}(?:[-—][0-9]{1,5}){0,2}(?:室|房)?(?![0-9]))"
_ADDRESS = re.compile(
    rf"{_REGION}(?:{_STREET}{_NUMBER}(?:{_ESTATE})?(?:{_UNIT}){{0,6}}{_ROOM}?|{_ESTATE}(?:{_UNIT}){{1,6}}{_ROOM}?)"
)
_REGION_ONLY = re.compile(_REGION)
# Cheap test before the full pattern: an address always has a numbered part.
_ANCHOR = re.compile(r"[0-9A-Za-z一二三四五六七八九十]\s?(?:[号號栋棟幢座室楼樓层層户戶组組]|[单單]元)")

_LABEL = re.compile(
    r"(?:收[货貨]地址|送[货貨]地址|配送地址|[邮郵]寄地址|家庭住址|家庭地址|[详詳]细地址|[详詳]細地址|住址|地址)"
    r"\s*(?:改[为為成]|是|[为為])?\s*[:：]?\s*"
)
# A labelled address runs to the next punctuation or space, and stops before other contact details.
_LABEL_BODY = re.compile(
    r"(?:(?!电话|電話|手机|手機|联系|聯繫|聯絡|收件人|收[货貨]人|姓名|[邮郵]箱|微信|[0-9]{7})"
    rf"[^\s，。,；;！!？?、（）()【】“”\"'‘’「」『』{_STOP}])+"
)
_ADDRESS_WORD = re.compile(r"[0-9]|[路街巷弄号號栋棟幢楼樓室村镇鎮乡鄉]|小[区區]|花[园園]|公寓|大[厦廈]|[单單]元")


def _kept(match: re.Match[str], start: int, keep: str) -> int:
    """End of the part of the address that stays readable (province, city, district)."""
    end = start
    for level in ("province", "city", "district"):
        if match.group(level):
            end = match.end(level)
        if level == keep:
            break
    return end


def _from_known_place(match: re.Match[str], norm: str) -> re.Match[str]:
    """The regex starts an address as early as it can; when its region does not open
    with a province or large city but holds one further in, start there instead."""
    region_end = max((match.end(g) for g in ("province", "city", "district", "town") if match.group(g)),
                     default=match.start())
    if region_end == match.start() or _KNOWN_PLACE.match(norm, match.start()):
        return match
    place = _KNOWN_PLACE.search(norm, match.start() + 1, region_end)
    if place:
        again = _ADDRESS.match(norm, place.start())
        if again:
            return again
    return match


def find_addresses(text: str, norm: str, rules: Rules) -> list[Found]:
    if not rules.enabled("address"):
        return []
    keep, mask = rules.get("address", "keep"), rules.mask_char * 4
    found = []
    if _ANCHOR.search(norm):
        for match in _ADDRESS.finditer(norm):
            match = _from_known_place(match, norm)
            kept = _kept(match, match.start(), keep)
            found.append(Found("address", match.start(), match.end(), text[match.start():kept] + mask,
                               kept - match.start()))
    for label in _LABEL.finditer(norm):
        body = _LABEL_BODY.match(norm, label.end())
        if not body or body.end() - body.start() < 4 or not _ADDRESS_WORD.search(body.group()):
            continue
        region = _REGION_ONLY.match(norm, body.start(), body.end())
        if not re.search("[0-9]", body.group()) and not (region and region.group()):
            continue  # 地址没写门牌号: words about an address, not an address
        kept = _kept(region, body.start(), keep) if region else body.start()
        tail = norm[region.end() if region else body.start():body.end()]
        if not tail or rules.mask_char in tail:
            continue  # only a region, or already masked
        found.append(Found("address", body.start(), body.end(), text[body.start():kept] + mask, kept - body.start()))
    return found
