"""Values a draft can name, pulled from the (masked) message text."""
from __future__ import annotations

import re
from dataclasses import dataclass

# Order numbers: the shop's own formats first, then anything labelled 订单号.
_ORDER = re.compile(r"(?<![A-Za-z0-9])((?:DD|YJ)\d{8,18})(?![0-9])", re.IGNORECASE)
_LABELLED_ORDER = re.compile(r"(?:订单号?|單號|订单编号)\s*[:：是为]?\s*([A-Za-z]{0,4}\d{6,22})(?!\d)")
# Product models such as XQG100-B14, KFR-35GW, EC6002-JA1.
_MODEL = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2,5}-?\d{2,5}[A-Z]{0,3}(?:[-/][A-Z0-9]{1,6})*)(?![A-Za-z0-9])")
_FAULT = re.compile(r"(?<![A-Za-z0-9])(E\d{1,2}|F\d{1,2}|P\d{1,2}|H\d{1,2}|UE|FE|LE)(?![A-Za-z0-9])")


@dataclass(frozen=True)
class Extracted:
    order_id: str | None
    product_model: str | None
    fault_code: str | None


def extract(text: str, order_id: str | None = None) -> Extracted:
    found_order = order_id
    if not found_order:
        match = _ORDER.search(text) or _LABELLED_ORDER.search(text)
        found_order = match.group(1).upper() if match else None
    model = None
    for match in _MODEL.finditer(text):
        candidate = match.group(1)
        if found_order and candidate in found_order:
            continue
        if _FAULT.fullmatch(candidate):
            continue
        model = candidate
        break
    fault = _FAULT.search(text)
    return Extracted(order_id=found_order, product_model=model, fault_code=fault.group(1) if fault else None)
