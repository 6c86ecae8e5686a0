"""Intake stage: persist the message before anything else touches it."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.db.models import Draft, Message
from service.schemas import DraftRequest


class MessageInFlight(RuntimeError):
    """The same client_message_id is being drafted right now."""


@dataclass
class Intake:
    message: Message
    existing_draft: Draft | None = None


def receive(session: Session, request: DraftRequest) -> Intake:
    """Commit the raw message (or find the earlier one with the same client_message_id)."""
    if request.client_message_id:
        earlier = _earlier(session, request.client_message_id)
        if earlier is not None:
            return earlier
    customer = request.customer.model_dump() if request.customer else None
    message = Message(
        client_message_id=request.client_message_id,
        conversation_id=request.conversation_id,
        channel=request.channel,
        raw_text=request.text,
        raw_customer=customer,
        customer_tier=(request.customer.tier if request.customer else "regular"),
        order_id=request.order_id,
        status="received",
    )
    session.add(message)
    try:
        session.commit()
    except IntegrityError:
        # Two requests with one client_message_id raced; the first insert won.
        session.rollback()
        earlier = _earlier(session, request.client_message_id or "")
        if earlier is None:
            raise
        return earlier
    return Intake(message=message)


def _earlier(session: Session, client_message_id: str) -> Intake | None:
    message = session.scalar(select(Message).where(Message.client_message_id == client_message_id))
    if message is None:
        return None
    draft = message.drafts[-1] if message.drafts else None
    if draft is None and message.status == "received":
        raise MessageInFlight(f"message {client_message_id!r} is still being drafted; retry shortly")
    return Intake(message=message, existing_draft=draft)


def store_masked(session: Session, message: Message, masked_text: str) -> None:
    message.masked_text = masked_text
    session.commit()


def mark_failed(session: Session, message: Message, error: str) -> None:
    session.rollback()
    message.status = "failed"
    message.error = error[:2000]
    session.commit()
