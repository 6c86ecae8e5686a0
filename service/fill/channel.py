"""Channel formatting after either drafter: email subject, SMS confirmation, script."""
from __future__ import annotations

from dataclasses import dataclass

from service.language import detect_script, to_traditional
from service.policy import Policy


@dataclass(frozen=True)
class Formatted:
    text: str
    subject: str | None
    sms_text: str | None


def format_for_channel(text: str, *, channel: str, category: str, order_id: str | None,
                       template_name: str | None, message_text: str, policy: Policy) -> Formatted:
    info = policy.channels[channel]
    subject = None
    if info.email_subject:
        # SOP: 【客户服务回复】+订单号+问题类型
        issue_type = policy.categories[category].label + (f"-{template_name}" if template_name else "")
        subject = "【客户服务回复】" + (f"{order_id} " if order_id else "") + issue_type
    sms_text = None
    if info.sms_confirmation:
        sms_text = (f"【{policy.agent.team_name}】您好，刚刚已通过电话为您处理"
                    f"{'订单' + order_id + '的' if order_id else ''}问题，详情以本短信为准，"
                    f"如有疑问请致电{policy.agent.hotline}。")
    if detect_script(message_text) == "hant":
        text = to_traditional(text)
        subject = to_traditional(subject) if subject else None
        sms_text = to_traditional(sms_text) if sms_text else None
    return Formatted(text=text, subject=subject, sms_text=sms_text)
