"""Intake stage: persist the message before anything else touches it."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.db.models import Draft, Message
from service.review import states
from service.schemas import DraftRequest

# Drafts not yet sent, discarded or rejected: a newer message in the conversation makes them stale.
UNSENT_STATES = (states.READY, states.FLAGGED, states.APPROVED, states.EDITED)


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
        session.flush()
        mark_conversation_stale(session, message)
        session.commit()
    except IntegrityError:
        # Two requests with one client_message_id raced; the first insert won.
        session.rollback()
        earlier = _earlier(session, request.client_message_id or "")
        if earlier is None:
            raise
        return earlier
    return Intake(message=message)


def mark_conversation_stale(session: Session, message: Message) -> int:
    """A new message makes the unsent drafts of earlier messages in its conversation stale.

    Their version goes up too, so a send that loaded one of them before cannot slip
    through (optimistic lock). The caller commits. Returns how many drafts turned stale.
    """
    if not message.conversation_id:
        return 0
    earlier = select(Message.id).where(Message.conversation_id == message.conversation_id, Message.id != message.id)
    drafts = Draft.__table__
    result = session.execute(
        update(drafts)
        .where(drafts.c.message_id.in_(earlier), drafts.c.status.in_(UNSENT_STATES), drafts.c.stale.is_(False))
        .values(stale=True, version=drafts.c.version + 1)
    )
    return result.rowcount or 0


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
