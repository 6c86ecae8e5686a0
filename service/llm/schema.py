"""What the model may answer, as a pydantic model, and the checks against the request.

The model only classifies, picks a candidate template and writes the few
free-text slots below. Every other template variable (salutation, order,
deadlines, follow-up, compensation, contact, sender) comes from
`standard_values`, so personal data, time promises and offers are never
model-written.
"""
from __future__ import annotations

import copy
import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from service.fill.offline import FillRequest
from service.kb import Template
from service.policy import Category, Priority

# The only template variables the model may fill, with their length limits.
LLM_SLOTS: dict[str, int] = {"issue_summary": 40, "personal_note": 80, "faq_answer": 300}
REASON_MAX = 120
SCHEMA_NAME = "reply_draft"


class OutputRejected(ValueError):
    """The model answered, but the answer cannot be used; the message is a plain reason."""


class DraftValues(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issue_summary: str | None = Field(
        max_length=LLM_SLOTS["issue_summary"],
        description="一个短语，概括客户的问题；所选模板没有这个空位时为 null",
    )
    personal_note: str | None = Field(
        max_length=LLM_SLOTS["personal_note"],
        description="一句针对这条消息的关怀话语；所选模板没有这个空位时为 null",
    )
    faq_answer: str | None = Field(
        max_length=LLM_SLOTS["faq_answer"],
        description="用通俗的话转述知识库答案；没有知识库答案或模板没有这个空位时为 null",
    )

    @field_validator("issue_summary", "personal_note", "faq_answer")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("must not be empty (use null for a slot the template does not have)")
        return value.strip()


class DraftOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Category
    priority: Priority
    confidence: float = Field(ge=0, le=1, description="对类别判断的把握，0 到 1")
    reason: str = Field(min_length=1, max_length=REASON_MAX, description="一句话说明分类依据")
    template_id: str = Field(min_length=1, description="候选模板之一的 id")
    values: DraftValues


def strict_json_schema(model: type[BaseModel] = DraftOutput) -> dict[str, Any]:
    """The model's JSON schema in the strict form structured outputs require:
    no $ref, every property required, no extra properties, no defaults."""
    raw = model.model_json_schema()
    defs = raw.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
            extra = {k: v for k, v in node.items() if k != "$ref"}
            return walk({**target, **extra})
        out = {k: walk(v) for k, v in node.items() if k not in ("default", "title", "properties")}
        if "properties" in node:  # property names are data, not keywords: keep them all
            out["properties"] = {name: walk(sub) for name, sub in node["properties"].items()}
        if out.get("type") == "object":
            out["additionalProperties"] = False
            out["required"] = list(out.get("properties", {}))
        return out

    return walk(raw)


_BASE_SCHEMA = strict_json_schema()


def response_format(candidates: list[Template]) -> dict[str, Any]:
    """The strict schema, narrowed so template_id can only name a candidate."""
    schema = copy.deepcopy(_BASE_SCHEMA)
    template_id = schema["properties"]["template_id"]
    template_id.pop("minLength", None)
    template_id["enum"] = [t.id for t in candidates]
    return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": schema}}


def slots_for(template: Template, request: FillRequest) -> list[str]:
    """The model-written slots a template needs; faq_answer only when there is an answer to reword."""
    return [name for name in template.placeholders
            if name in LLM_SLOTS and (name != "faq_answer" or request.faq is not None)]


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_output(content: str | None, request: FillRequest) -> tuple[DraftOutput, Template, dict[str, str]]:
    """Validate the model's answer against the schema and the request.

    Returns the output, the chosen template and the model-written slot values.
    Raises OutputRejected with a plain reason.
    """
    if not content or not content.strip():
        raise OutputRejected("模型返回了空内容")
    fenced = _FENCE.match(content)  # some compatible servers wrap JSON in a code fence
    text = fenced.group(1) if fenced else content
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OutputRejected(f"模型返回的不是有效 JSON（{exc.msg}）") from exc
    try:
        output = DraftOutput.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"]) or "根对象"
        raise OutputRejected(f"模型输出不符合格式：{where} {err['msg']}") from exc

    by_id = {t.id: t for t in request.candidates}
    template = by_id.get(output.template_id)
    if template is None:
        raise OutputRejected(f"模型选择的模板 {output.template_id} 不在候选模板中")

    given = {name: value for name, value in output.values.model_dump().items() if value is not None}
    allowed = set(slots_for(template, request))
    extra = sorted(set(given) - allowed)
    if extra:
        if "faq_answer" in extra and request.faq is None and "faq_answer" in template.placeholders:
            raise OutputRejected("没有知识库答案，模型却写了 faq_answer")
        raise OutputRejected(f"模型填写了模板 {template.id} 没有的空位：{', '.join(extra)}")
    missing = sorted(allowed - set(given))
    if missing:
        raise OutputRejected(f"模型没有填写模板 {template.id} 需要的空位：{', '.join(missing)}")
    return output, template, given
