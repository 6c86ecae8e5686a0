"""Build the chat messages from the Jinja2 files in prompts/."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2

from service.fill.offline import FillRequest
from service.llm.schema import LLM_SLOTS, slots_for
from service.policy import Policy

# Runs of angle-like brackets could forge the fence markers around the customer's
# message (<<<客户消息>>> … <<<结束>>>); one bracket cannot.
_OPEN_RUN = re.compile(r"[<＜《〈‹«]{2,}")
_CLOSE_RUN = re.compile(r"[>＞》〉›»]{2,}")


def neutralise(text: str) -> str:
    """Customer text with anything that could pass for a fence marker defused."""
    return _CLOSE_RUN.sub("〉", _OPEN_RUN.sub("〈", text))


class PromptBuilder:
    def __init__(self, prompts_dir: Path, policy: Policy):
        self.policy = policy
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(prompts_dir)), undefined=jinja2.StrictUndefined,
            autoescape=False, trim_blocks=True, lstrip_blocks=True,
        )
        self._user = self.env.get_template("user.j2")
        # The system prompt depends on the policy only: render it once, at start-up,
        # so a broken prompt file fails the start and not every draft.
        self.system = self.env.get_template("system.j2").render(
            policy=policy, slots=LLM_SLOTS, team_name=policy.agent.team_name,
        ).strip()

    def user(self, request: FillRequest, examples: list[dict[str, Any]] | None = None) -> str:
        channel = self.policy.channels.get(request.channel)
        candidates = [
            {"id": t.id, "name": t.name, "category": t.category, "priorities": t.priorities,
             "placeholders": t.placeholders, "slots": slots_for(t, request), "body": t.body.strip()}
            for t in request.candidates
        ]
        shots = [
            {"text": neutralise(row["text"]), "channel": row.get("channel", ""),
             "tier": (row.get("customer") or {}).get("tier", "regular"),
             "category": row["gold"]["category"], "priority": row["gold"].get("priority")}
            for row in examples or [] if row.get("text") and (row.get("gold") or {}).get("category")
        ]
        return self._user.render(
            message=neutralise(request.masked_text), channel=request.channel,
            channel_label=channel.label if channel else request.channel,
            short_reply=bool(channel and channel.short_reply), tier=request.tier,
            category=request.category, priority=request.priority,
            candidates=candidates, faq=request.faq, examples=shots, policy=self.policy,
        ).strip()

    def messages(self, request: FillRequest, examples: list[dict[str, Any]] | None = None) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.user(request, examples)}]
