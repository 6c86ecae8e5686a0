"""Masking rules: the policy `masking:` section merged over the SOP defaults.

SOP: 客户姓名用“*”代替，联系方式仅保留后4位. Every key is optional; a policy
only lists what it changes.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("draftdesk.masking")

KINDS: tuple[str, ...] = ("mobile", "landline", "id_card", "bank_card", "email", "address", "name")

DEFAULTS: dict[str, Any] = {
    "mask_char": "*",
    "mobile": {"enabled": True, "keep_first": 3, "keep_last": 4, "other_formats": True},
    "landline": {"enabled": True, "keep_area_code": True, "keep_last": 4},
    "id_card": {"enabled": True, "keep_last": 4, "legacy_15": True, "trust_label": True},
    "bank_card": {"enabled": True, "keep_last": 4, "style": "short", "trust_label": True},
    "email": {"enabled": True, "keep_domain": True},
    "address": {"enabled": True, "keep": "district"},
    "name": {"enabled": True, "style": "surname", "from_jieba": True, "not_names": []},
    # A digit run right after one of these labels is an order/waybill number, never a bank card.
    "not_card_after": ["订单号", "订单编号", "单号", "运单号", "快递单号", "物流单号", "工单号", "訂單號", "單號"],
}

_CHOICES = {
    ("bank_card", "style"): ("short", "full"),
    ("address", "keep"): ("province", "city", "district"),
    ("name", "style"): ("surname", "all"),
}
# Upper bounds so a mask always hides most of the number.
_MAX_KEEP = {("mobile", "keep_first"): 3, ("mobile", "keep_last"): 4, ("landline", "keep_last"): 4,
             ("id_card", "keep_last"): 4, ("bank_card", "keep_last"): 4}


@dataclass(frozen=True)
class Rules:
    raw: dict[str, Any]

    @property
    def mask_char(self) -> str:
        return self.raw["mask_char"]

    def enabled(self, kind: str) -> bool:
        return bool(self.raw[kind]["enabled"])

    def get(self, kind: str, key: str) -> Any:
        return self.raw[kind][key]

    @property
    def not_card_after(self) -> tuple[str, ...]:
        return tuple(self.raw["not_card_after"])


def load_rules(rules: dict | None) -> Rules:
    """Merge `rules` over DEFAULTS and validate; raises ValueError on a bad value."""
    merged = copy.deepcopy(DEFAULTS)
    for key, value in (rules or {}).items():
        if key in KINDS:
            if isinstance(value, bool):  # `email: false` switches a recognizer off
                merged[key]["enabled"] = value
                continue
            if not isinstance(value, dict):
                raise ValueError(f"policy.masking.{key} must be a mapping or true/false")
            for sub, sub_value in value.items():
                if sub not in merged[key]:
                    log.warning("policy.masking.%s.%s is not a known setting; ignored", key, sub)
                    continue
                merged[key][sub] = sub_value
        elif key in merged:
            merged[key] = value
        else:
            log.warning("policy.masking.%s is not a known setting; ignored", key)
    _validate(merged)
    return Rules(merged)


def _validate(merged: dict[str, Any]) -> None:
    char = merged["mask_char"]
    # The mask must never read as a digit, letter or CJK character, or masking would not be idempotent.
    if not isinstance(char, str) or len(char) != 1 or char.isalnum() or char.isspace():
        raise ValueError("policy.masking.mask_char must be one symbol character such as '*'")
    for (kind, key), choices in _CHOICES.items():
        if merged[kind][key] not in choices:
            raise ValueError(f"policy.masking.{kind}.{key} must be one of {', '.join(choices)}")
    for (kind, key), limit in _MAX_KEEP.items():
        value = merged[kind][key]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
            raise ValueError(f"policy.masking.{kind}.{key} must be an integer from 0 to {limit}")
    for kind in KINDS:
        for key, value in merged[kind].items():
            if isinstance(DEFAULTS[kind][key], bool) and not isinstance(value, bool):
                raise ValueError(f"policy.masking.{kind}.{key} must be true or false")
    for key in ("not_card_after",):
        if not isinstance(merged[key], list) or not all(isinstance(v, str) and v for v in merged[key]):
            raise ValueError(f"policy.masking.{key} must be a list of strings")
    names = merged["name"]["not_names"]
    if not isinstance(names, list) or not all(isinstance(v, str) for v in names):
        raise ValueError("policy.masking.name.not_names must be a list of strings")
