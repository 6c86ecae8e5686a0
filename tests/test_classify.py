"""The offline classifier: a model trained on the examples, with the SOP's rules as floors."""
from __future__ import annotations

import numpy as np
import pytest

from service.classify import OfflineClassifier, base_priority


def classify(runtime, text: str, tier: str = "regular"):
    pipeline = runtime.pipeline
    masked = pipeline.masker.mask(text).text
    return pipeline.classifier.classify(masked, pipeline.retriever.query_vector(masked), tier)


@pytest.mark.parametrize("text, category", [
    ("请问你们家的洗碗机有没有烘干功能？大概多少钱", "inquiry"),
    ("我买的电视屏幕出现一条竖线，麻烦安排师傅上门维修，订单DD20241102001", "after_sales"),
    ("你们的客服态度太恶劣了，问三次都不耐烦，我要投诉", "complaint"),
    ("建议你们app增加一个夜间模式，晚上看着不刺眼", "suggestion"),
])
def test_clear_messages_get_their_category(shared_runtime, text, category):
    result = classify(shared_runtime, text)
    assert result.category == category
    assert result.category_source.startswith(("model:", "rule:"))
    assert 0.0 < result.category_confidence <= 1.0


def test_urgent_cue_makes_it_urgent_whatever_the_model_says(shared_runtime):
    result = classify(shared_runtime, "热水器插头那里冒烟了，有焦味")
    assert result.priority == "urgent"
    assert "urgent_cue" in result.priority_source or result.priority_source.startswith("model:")


def test_complaint_is_at_least_high_and_vip_is_raised(shared_runtime):
    regular = classify(shared_runtime, "送货师傅把我家地板划坏了还不承认，我要投诉")
    assert regular.category == "complaint" and regular.priority in ("high", "urgent")
    suggestion = classify(shared_runtime, "建议包装再结实一点，不急")
    vip = classify(shared_runtime, "建议包装再结实一点，不急", tier="vip")
    assert suggestion.priority == "low"
    assert vip.priority == "medium" and vip.priority_source.endswith("+rule:vip_raise")


def test_strong_complaint_cue_overrules_the_model(shared_runtime):
    result = classify(shared_runtime, "这个冰箱多少钱？再不回复我就打12315")
    assert result.category == "complaint" and result.category_source == "rule:complaint_cue:12315"


def test_same_input_same_answer(shared_runtime):
    text = "洗衣机显示E3，转不起来了怎么办"
    assert classify(shared_runtime, text) == classify(shared_runtime, text)


def test_base_priority_undoes_the_vip_raise():
    row = {"gold": {"priority": "high"}, "customer": {"tier": "vip"}}
    assert base_priority(row) == "medium"
    assert base_priority({"gold": {"priority": "urgent"}, "customer": {"tier": "vip"}}) == "urgent"
    assert base_priority({"gold": {"priority": "low"}, "customer": {"tier": "vip"}}) == "low"
    assert base_priority({"gold": {"priority": "high"}}) == "high"


def test_needs_examples_and_matching_lengths(shared_runtime):
    policy = shared_runtime.policy
    with pytest.raises(ValueError, match="labeled examples"):
        OfflineClassifier(policy, [], [], np.zeros((0, 4), dtype=np.float32))
    row = {"gold": {"category": "inquiry", "priority": "medium"}}
    with pytest.raises(ValueError, match="one text, one row and one vector"):
        OfflineClassifier(policy, ["a", "b"], [row], np.zeros((2, 4), dtype=np.float32))


def test_category_probabilities_back_the_models_category(shared_runtime):
    pipeline = shared_runtime.pipeline
    masked = pipeline.masker.mask("洗碗机有没有烘干功能？大概多少钱").text
    vector = pipeline.retriever.query_vector(masked)
    probabilities = pipeline.classifier.category_probabilities(masked, vector)
    assert set(probabilities) == {"inquiry", "after_sales", "complaint", "suggestion"}
    assert sum(probabilities.values()) == pytest.approx(1.0)
    result = pipeline.classifier.classify(masked, vector)
    assert max(probabilities, key=probabilities.get) == result.category
    assert probabilities[result.category] == pytest.approx(result.category_confidence, abs=1e-4)

    # The pipeline hands classify the probabilities its retrieve stage already asked for.
    assert pipeline.classifier.classify(masked, vector, category_probabilities=probabilities) == result
    given = pipeline.classifier.classify(masked, vector, category_probabilities={"suggestion": 0.7, "inquiry": 0.3})
    assert (given.category, given.category_confidence) == ("suggestion", 0.7)
