"""Script detection and conversion (service/language.py)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.language import detect_script, has_cjk, script_counts, to_simplified, to_traditional

SIMPLIFIED = [
    "我的订单DD20240315001三天了还没发货，麻烦尽快处理",
    "洗衣机显示E3故障代码，怎么办？",
    "客服态度太差了，我要投诉！",
    "建议APP增加夜间模式",
    "你们的会员积分怎么兑换优惠券",
    "空调外机有焦味，吓死我了",
]
TRADITIONAL = [
    "我的訂單DD20240315001三天了還沒發貨，麻煩盡快處理",
    "洗衣機顯示E3故障代碼，怎麼辦？",
    "客服態度太差了，我要投訴！",
    "建議APP增加夜間模式",
    "你們的會員積分怎麼兌換優惠券",
    "請問冷氣機保固多久？發票遺失還能維修嗎",
]


@pytest.mark.parametrize("text", SIMPLIFIED)
def test_simplified_text_is_hans(text):
    assert detect_script(text) == "hans"


@pytest.mark.parametrize("text", TRADITIONAL)
def test_traditional_text_is_hant(text):
    assert detect_script(text) == "hant"


@pytest.mark.parametrize("text", [
    "", "   ", "hello, my order has not arrived", "Order DD20240315001 ???", "😡😡😡", "13812345678", "！！！？",
    "안녕하세요 주문이 안 왔어요",
])
def test_text_without_cjk_is_other(text):
    assert detect_script(text) == "other"


@pytest.mark.parametrize("text, expected", [
    ("您好", "hans"),                                   # shared characters only: Simplified by default
    ("我的訂單还没发货呢，请尽快处理", "hans"),           # mixed, mostly Simplified
    ("我的訂單還沒發货", "hant"),                         # mixed, mostly Traditional
    ("My order 還沒到，請幫忙查一下", "hant"),             # English with Traditional Chinese
    ("My order 还没到，请帮忙查一下", "hans"),
    ("裡面的零件壞了", "hant"),                            # Taiwan form 裡 counts as Traditional
])
def test_mixed_and_edge_texts(text, expected):
    assert detect_script(text) == expected


@pytest.mark.parametrize("simplified", SIMPLIFIED)
def test_round_trip_through_traditional(simplified):
    traditional = to_traditional(simplified)
    assert detect_script(traditional) == "hant"
    assert to_simplified(traditional) == simplified


def test_conversion_keeps_non_chinese_untouched():
    assert to_traditional("Order DD20240315001, 400-820-1234") == "Order DD20240315001, 400-820-1234"
    assert to_simplified("") == "" and to_traditional("") == ""


def test_known_conversions():
    assert to_traditional("客户服务回复") == "客戶服務回覆"
    assert to_simplified("您的訂單已發貨") == "您的订单已发货"


def test_script_counts_counts_differing_characters():
    assert script_counts("订单发货") == (0, 4)
    assert script_counts("訂單發貨") == (4, 0)
    assert script_counts("hello") == (0, 0)
    assert has_cjk("a訂b") and not has_cjk("abc 123")


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40))
def test_detect_script_is_total(text):
    result = detect_script(text)
    assert result in {"hant", "hans", "other"}
    assert (result == "other") == (not has_cjk(text))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(SIMPLIFIED), min_size=1, max_size=3), st.text(alphabet="ABC123 ,.!?", max_size=10))
def test_converted_text_is_detected_as_its_script(parts, noise):
    text = noise.join(parts)
    assert detect_script(text) == "hans"
    assert detect_script(to_traditional(text)) == "hant"
