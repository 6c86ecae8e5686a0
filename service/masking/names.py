"""Person names: from the customer record, from what the customer says about
themselves (我叫…, 收件人…, …先生), and jieba's person-name ('nr') words that pass
a conservative filter. Also the masked forms: mask_name and salutation.
"""
from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache
from typing import NamedTuple

from service.masking.base import CJK, Found

# Common single-character surnames; the ones that are nearly always function words
# (和, 在, 以) are left out so that prose is not read as names.
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔汤常温康"
    "施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕季裴霍涂苗谷盛"
    "曲翁冉骆蓝游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳穆农卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米"
    "柏宗瞿桂佟臧闵苟邬边卞姬仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩佘池查麻苑迟邝封谈匡鞠惠荆乐冀郁胥班储栗燕楚鄢"
    "劳谌奚皮粟冼蔺闻厉伊仝郜阚帅屠朴盖练廉禹漆巴丰卿狄晋芮扈晁阙戈伏鹿薄邸雍辜羊裘亓修邰赫杭况宿逯茹诸慕嵇湛"
    "宾戎茅揭檀衣昝智幸植衡富尧向时明全原单路"
)
# The surnames trusted without any cue (jieba's guesses): frequent ones, less the
# characters that are just as often a verb or adverb (谢谢, 戴眼镜, 于是, 白白).
_RELIABLE = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡杜叶苏魏吕丁沈姚卢姜崔钟谭陆汪范"
    "金石廖贾夏韦付傅方邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵钱严覃武莫孔汤"
)
_COMPOUND = frozenset((
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "令狐", "夏侯", "轩辕",
    "端木", "西门", "南宫", "独孤", "呼延", "澹台", "公冶", "宗政", "濮阳", "太史", "申屠", "钟离", "闻人", "赫连", "万俟",
    "拓跋", "百里", "东郭", "歐陽", "司馬", "諸葛", "東方", "長孫", "軒轅", "獨孤", "鍾離", "聞人", "赫連", "南宮", "公孫",
    "尉遲", "萬俟", "東郭", "濮陽",
))
# Characters that end a name rather than continue it: particles, pronouns, verbs of a request.
_STOP = set(
    "的了是在我你您他她它们們想要说說问問请請和跟与與及或把被让讓给給从從到对對向为為以已就都也还還又再很太吗嗎呢吧啊呀"
    "哦嗯么麼嘛啦呗唄不没沒这這那个個些买買用购購订訂退换換查询詢办辦能会會过過来來去下上"
)
# Words after a surname that make a title, not a name (王总, 李师傅, 张工).
_TITLES = frozenset((
    "总", "總", "工", "哥", "姐", "叔", "某", "氏", "家", "师", "師", "老师", "老師", "师傅", "師傅", "经理", "經理", "医生", "醫生",
    "先生", "女士", "小姐", "阿姨", "同学", "同學", "太太", "老板", "老闆", "主任", "主管", "总监", "總監", "律师", "律師",
    "客服", "专员", "專員", "店长", "店長", "大爷", "大爺", "大妈", "大媽", "妈妈", "媽媽", "爸爸", "女儿", "儿子",
))
# Words jieba tags as names that, in this business, are brands, products or ordinary words.
_NOT_NAMES = frozenset((
    "华为", "華為", "荣耀", "榮耀", "宋体", "宋體", "美的", "方太", "王老吉", "江小白", "万家乐", "萬家樂", "夏普",
    "史密斯", "林内", "苏泊尔", "蘇泊爾", "华帝", "華帝", "康佳", "海信", "长虹", "長虹", "格兰仕", "九阳", "小天鹅", "欧派",
    "李宁", "高露洁", "金龙鱼", "周大福", "周生生", "王者", "曹操", "孙悟空", "包公", "黄金", "白金", "钱包", "金卡", "余额",
    "高端", "高级", "方便", "安装", "查询", "申请", "修理", "沙发", "智能", "关于", "关闭", "常温", "温度", "程序", "任务",
    "钟点工", "周末", "周年", "周一", "周二", "周三", "周四", "周五", "周六", "周日", "马上", "华南", "华北", "华东", "江南", "苏宁",
    "卫生", "黎明", "夏天", "冬天", "秋天", "春天", "明天", "宁愿", "于是", "向日葵", "田野", "白雪", "高峰", "柏林", "路遥",
))
# A word ending in one of these is a place (张杨路, 徐汇区), not a person.
_PLACE_ENDINGS = frozenset("省市区區县縣镇鎮乡鄉村路街道巷弄号號州旗")
_CJK_CHAR = re.compile(f"[{CJK}]")
_COUNTERS = frozenset("这這那每哪一二两兩三四五六七八九十几幾某半整多")
_SEPARATORS = "·•・ "

_SELF_CUES = r"我是|我叫|我名叫|我的名字是|我的名字叫|我名字叫|名字叫|名字是|本人是|本人|全名是|全名|我姓(?P<said>[{cjk}])[，,、\s]*(?=(?P=said))"
_LABEL_CUES = (
    r"姓名|客户姓名|客戶姓名|真实姓名|真實姓名|联系人|聯繫人|聯絡人|收件人|收货人|收貨人|寄件人|发件人|發件人|提货人|提貨人|取件人|"
    r"签收人|簽收人|持卡人|开户人|開戶人|开户名|開戶名|户名|戶名|经办人|經辦人|留言人|机主|機主|买家|買家|业主|業主|顾客|顧客|"
    r"会员|會員|负责人|負責人|申请人|申請人|投诉人|投訴人|报修人|報修人"
)
_KIN = r"我[，,、\s]+|(?:我的?)?(?:妈妈|爸爸|母亲|父亲|老公|老婆|爱人|丈夫|妻子|儿子|女儿|哥哥|姐姐|弟弟|妹妹|朋友|同事|婆婆|公公|岳父|岳母|媽媽|母親|父親|愛人|兒子|女兒)"
_CUE = re.compile(
    rf"(?:{_SELF_CUES.format(cjk=CJK)}|{_LABEL_CUES})\s*(?:[:：]|是|为|為)?\s*(?:{_KIN}\s*)?(?:[A-Z][a-z]+\s+)?"
)
_HONORIFIC = re.compile(r"先生|女士|小姐")
# What may directly follow a complete name.
_AFTER_NAME = re.compile(
    rf"$|[^{CJK}]|[{''.join(sorted(_STOP))}]|先生|女士|小姐|电话|電話|手机|手機|联系|聯繫|聯絡|号码|號碼|身份证|身份證|"
    r"地址|邮箱|郵箱|微信|订单|訂單|悦享|會員|会员"
)
_LATIN_NAME = r"[A-Z][a-z]+(?:[ \-][A-Z][a-z]+){0,2}"
_SIGN_OFF_WORDS = r"Thanks|Thank you|Best|Regards|Best regards|Kind regards|Cheers|Sincerely|Yours"
_SIGN_OFF = re.compile(
    rf"(?:{_SIGN_OFF_WORDS})[!,.]?\s+(?!(?:{_SIGN_OFF_WORDS})\b)(?P<name>{_LATIN_NAME})(?![A-Za-z])"
    rf"|(?i:my name is)\s+(?P<name2>{_LATIN_NAME})(?![A-Za-z])"
)
_GENDER_SELF = re.compile(r"(?:我|本人)(?:是)?(?:一[个個位名])?(?P<g>[男女])(?:士|性|生|的|(?=[，,。.\s]|$))")


@lru_cache(maxsize=8)
def _contact_patterns(mask_char: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Names beside an e-mail address or phone number, which may already be masked (***@qq.com)."""
    m = re.escape(mask_char)
    email = rf"[A-Za-z0-9._%+\-{m}]+@"
    phone = rf"\+?[0-9{m}][0-9 \-{m}]{{5,}}[0-9]"
    latin = re.compile(rf"(?<![A-Za-z])(?P<name>[A-Z][a-z]+(?:[ \-][A-Z][a-z]+){{1,2}})\s*[/,，]?\s*(?={email})")
    # A signature: a short name right before an e-mail or phone number, or right after a phone number.
    cjk = re.compile(
        rf"(?<![{CJK}])(?P<name>[{CJK}]{{2,4}})[\s，,/、()（）]*(?={email}|{phone})"
        rf"|(?<=[0-9])\s+(?P<after>[{CJK}]{{2,4}})(?![{CJK}])"
    )
    return latin, cjk


# --- surname helpers --------------------------------------------------------


@lru_cache(maxsize=1)
def _surname_set() -> frozenset[str]:
    from service.language import to_simplified, to_traditional

    chars = set(_SURNAMES)
    for ch in _SURNAMES:  # Traditional forms (陳, 張, 劉 …)
        chars.update(to_traditional(ch))
    chars.update(to_simplified(ch) for ch in list(chars))
    return frozenset(c for c in chars if _CJK_CHAR.match(c))


def is_surname(ch: str) -> bool:
    return ch in _surname_set()


def surname_of(name: str) -> str:
    name = name.strip()
    if len(name) >= 3 and name[:2] in _COMPOUND:
        return name[:2]
    return name[:1]


def _surname_length(text: str, at: int) -> int:
    if text[at:at + 2] in _COMPOUND:
        return 2
    return 1 if at < len(text) and is_surname(text[at]) else 0


# --- public masks -------------------------------------------------------------


def mask_name(name: str, style: str = "surname", mask_char: str = "*") -> str:
    """'张伟' → '张*'; '欧阳娜娜' → '欧阳**'; 'Amy Li' → 'A** **'. style 'all' hides every character."""
    name = name.strip()
    if not name:
        return name
    if _CJK_CHAR.match(name[0]):
        keep = 0 if style == "all" else len(surname_of(name))
        if len(name) == 1 and style != "all":
            return name  # a surname alone names nobody
    else:
        keep = 0 if style == "all" else 1
    return name[:keep] + "".join(ch if ch in _SEPARATORS or ch == "-" else mask_char for ch in name[keep:])


def salutation(name: str | None, text: str = "") -> str:
    """'张先生' / '张女士' when the name or the message says which, '张先生/女士' otherwise;
    '尊敬的客户' without a usable Chinese name."""
    name = (name or "").strip()
    title = None
    for honorific, gender in (("先生", "m"), ("女士", "f"), ("小姐", "f")):
        if name.endswith(honorific):
            name, title = name[:-len(honorific)].strip(), gender
            break
    if not name or not _CJK_CHAR.match(name[0]):
        return "尊敬的客户"
    surname = surname_of(name)
    if title is None:
        title = _gender_from_text(surname, text or "")
    return surname + {"m": "先生", "f": "女士"}.get(title or "", "先生/女士")


def _gender_from_text(surname: str, text: str) -> str | None:
    from service.language import to_simplified, to_traditional

    variants = {surname, to_simplified(surname), to_traditional(surname)}
    pattern = re.compile(f"(?:{'|'.join(map(re.escape, variants))})(先生|女士|小姐)")
    found = {"m" if m.group(1) == "先生" else "f" for m in pattern.finditer(text)}
    found |= {"m" if m.group("g") == "男" else "f" for m in _GENDER_SELF.finditer(text)}
    return found.pop() if len(found) == 1 else None


# --- jieba --------------------------------------------------------------------

_jieba_lock = threading.Lock()
_jieba = None


def _load_jieba():
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba
                import jieba.posseg

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


class Token(NamedTuple):
    start: int
    end: int
    word: str
    flag: str


def _is_cjk_char(word: str) -> bool:
    return len(word) == 1 and ("\u4e00" <= word <= "\u9fff" or "\u3400" <= word <= "\u4dbf")


def tokens(text: str) -> list[Token]:
    """jieba's words with offsets and part-of-speech tags.

    The dictionary pass runs over the whole text; the slow HMM pass (which is
    what finds unknown names such as 张伟) runs only where a name can be: a
    stretch of single characters, cut at particles, that holds a surname.
    """
    jieba = _load_jieba()
    tags = jieba.posseg.dt.word_tag_tab
    surnames = _surname_set()
    plain: list[tuple[int, str]] = []
    at = 0
    for word in jieba.dt.cut(text, HMM=False):
        plain.append((at, word))
        at += len(word)
    plain.append((at, ""))
    result: list[Token] = []
    i, size = 0, len(plain) - 1
    while i < size:
        j = i
        while j < size and _is_cjk_char(plain[j][1]) and plain[j][1] not in _STOP:
            j += 1
        if j - i >= 2 and any(plain[k][1] in surnames for k in range(i, j - 1)):
            at = plain[i][0]
            for word, flag in _hmm(text[at:plain[j][0]]):
                result.append(Token(at, at + len(word), word, flag))
                at += len(word)
            i = j
        else:
            for k in range(i, max(j, i + 1)):
                start, word = plain[k]
                result.append(Token(start, start + len(word), word, tags.get(word, "x")))
            i = max(j, i + 1)
    return result


@lru_cache(maxsize=4096)
def _hmm(stretch: str) -> tuple[tuple[str, str], ...]:
    return tuple((pair.word, pair.flag) for pair in _load_jieba().posseg.cut(stretch))


def _dictionary_tag(word: str) -> str | None:
    """jieba's tag for a dictionary word, None when the word is not in the dictionary."""
    jieba = _load_jieba()
    if not jieba.dt.FREQ.get(word):
        return None
    return jieba.posseg.dt.word_tag_tab.get(word, "x")


# --- recognizer ---------------------------------------------------------------


class NameFinder:
    def __init__(self, style: str, mask_char: str, from_jieba: bool, not_names: list[str]):
        self.style = style
        self.mask_char = mask_char
        self.from_jieba = from_jieba
        self.not_names = _NOT_NAMES | frozenset(not_names)

    def mask(self, name: str) -> str:
        return mask_name(name, self.style, self.mask_char)

    def find(self, text: str, record_names: list[str]) -> list[Found]:
        names = set(record_names)
        if _CJK_CHAR.search(text):
            toks = tokens(text)
            names.update(self._from_cues(text, toks))
            names.update(self._from_honorifics(text, toks))
            names.update(self._from_signatures(text))
            if self.from_jieba:
                names.update(self._from_jieba(toks))
        for match in _SIGN_OFF.finditer(text):
            names.add(match.group("name") or match.group("name2"))
        for match in _contact_patterns(self.mask_char)[0].finditer(text):
            names.add(match.group("name"))
        return self._occurrences(text, names)

    # Every occurrence of every name found anywhere, so a name said twice is masked twice.
    def _occurrences(self, text: str, names: set[str]) -> list[Found]:
        found = []
        for name in sorted(n for n in names if len(n.strip()) >= 2):
            if _CJK_CHAR.match(name):
                body = r"\s?".join(re.escape(ch) for ch in name if not ch.isspace())
                pattern = re.compile(body)
            else:
                pattern = re.compile(rf"(?<![A-Za-z]){re.escape(name)}(?![A-Za-z])", re.IGNORECASE)
            for match in pattern.finditer(text):
                found.append(self.span(text, match.start(), match.end()))
        return found

    def span(self, text: str, start: int, end: int) -> Found:
        replacement = self.mask(text[start:end])
        kept = 0
        while kept < len(replacement) and replacement[kept] == text[start + kept] and replacement[kept] != self.mask_char:
            kept += 1  # the surname stays readable
        return Found("name", start, end, replacement, kept)

    def _plausible(self, word: str, strict: bool = False, guess: bool = False) -> bool:
        """Surname + one or two given characters that are not particles, titles or known words.

        strict: no cue says a name is coming (a signature, jieba's guess), so the
        surname must be a frequent one and the word must not be a dictionary word.
        guess: jieba's guess; also refuse a given name that is itself a word (全中文).
        """
        from service.language import to_simplified

        size = len(word)
        surname = 2 if word[:2] in _COMPOUND and size >= 3 else (1 if is_surname(word[0]) else 0)
        given = word[surname:]
        if not surname or not 1 <= len(given) <= 2 or len(set(word)) == 1:
            return False
        if any(ch in _STOP or not _CJK_CHAR.match(ch) for ch in given):
            return False
        simple = to_simplified(word)
        if given in _TITLES or word in self.not_names or simple in self.not_names or given[-1] in _PLACE_ENDINGS:
            return False
        tag = _dictionary_tag(simple)
        if tag is not None and not tag.startswith("nr"):
            return False
        if strict:
            if surname == 1 and to_simplified(word[0]) not in _RELIABLE:
                return False
            if tag is not None and size == 2:
                return False  # 谢谢, 麻利, 盖子: two-character dictionary words tagged nr are mostly words
        if guess and tag is None and len(given) == 2:
            given_tag = _dictionary_tag(simple[surname:])
            if given_tag is not None and not given_tag.startswith("nr"):
                return False  # 全中文, 戴眼镜
        return True

    def _name_at(self, text: str, at: int, toks_by_start: dict[int, Token]) -> str | None:
        surname = _surname_length(text, at)
        if not surname:
            return None
        token = toks_by_start.get(at)
        if token and token.flag.startswith("nr") and self._plausible(token.word):
            return token.word
        for size in (surname + 2, surname + 1):
            word = text[at:at + size]
            if len(word) == size and self._plausible(word) and _AFTER_NAME.match(text, at + size):
                return word
        return None

    def _from_cues(self, text: str, toks: list[Token]) -> set[str]:
        by_start = {t.start: t for t in toks}
        found = set()
        for cue in _CUE.finditer(text):
            name = self._name_at(text, cue.end(), by_start)
            if name:
                found.add(name)
        return found

    def _from_honorifics(self, text: str, toks: list[Token]) -> set[str]:
        by_start = {t.start: t for t in toks}
        found = set()
        for match in _HONORIFIC.finditer(text):
            end = match.start()
            for begin in range(max(0, end - 4), end - 1):  # longest first
                word = text[begin:end]
                first = by_start.get(begin)
                starts_cleanly = first is not None or begin == 0 or not _CJK_CHAR.match(text[begin - 1])
                # 顾客冯女士: the candidate may not open with an ordinary word.
                if first is not None and 2 <= len(first.word) < len(word) and \
                        not self._plausible(first.word, strict=True):
                    continue
                if starts_cleanly and self._plausible(word):
                    found.add(word)
                    break
        return found

    def _from_signatures(self, text: str) -> set[str]:
        found = set()
        for match in _contact_patterns(self.mask_char)[1].finditer(text):
            word = match.group("name") or match.group("after")
            if self._plausible(word, strict=True):
                found.add(word)
        return found

    def _from_jieba(self, toks: list[Token]) -> set[str]:
        # 徐汇 in 徐汇区 is a district: a name is never followed by a place ending.
        place_starts = {t.start for t in toks if t.word[0] in _PLACE_ENDINGS}
        found = set()
        previous = ""
        for token in toks:
            # 那张卡, 这封信: after a number or a demonstrative the "surname" is a measure word.
            if token.flag in ("nr", "nrfg") and previous[-1:] not in _COUNTERS and \
                    token.end not in place_starts and self._plausible(token.word, strict=True, guess=True):
                found.add(token.word)
            previous = token.word
        return found
