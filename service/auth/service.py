"""Users and their bearer tokens.

A token is `dd_` + `secrets.token_urlsafe(32)`, shown once when the user is created.
The database keeps its sha256 (to find the user) and a short prefix (to tell tokens
apart in listings) — never the token itself.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.audit.service import record as audit
from service.auth.identity import Actor, actor_fields
from service.auth.roles import ADMIN, ROLES
from service.db.models import User, utcnow

TOKEN_PREFIX = "dd_"
PREFIX_CHARS = 10  # "dd_" and 7 characters of the secret
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@\-]{0,63}")


class UserError(ValueError):
    """Bad user input (name, role); the message says which."""


class UserConflict(UserError):
    """The request clashes with the users as they are (name taken, already revoked, last admin)."""


@dataclass(frozen=True)
class NewUser:
    user: User
    token: str  # shown once


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    return role


def add_user(session: Session, name: str, role: str, actor: Actor = "cli") -> NewUser:
    """Create a user with a fresh token; committed and audited."""
    name = (name or "").strip()
    if not _NAME.fullmatch(name):
        raise UserError(f"invalid user name {name!r}: 1–64 letters, digits, '.', '_', '-' or '@', "
                        "starting with a letter or digit")
    check_role(role)
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise UserConflict(f"user {name!r} already exists")
    token = new_token()
    user = User(name=name, role=role, token_hash=hash_token(token), token_prefix=token[:PREFIX_CHARS],
                active=True, created_by=actor_fields(actor)[0])
    session.add(user)
    session.flush()
    audit(session, actor, "user.add", "user", name, after=user_summary(user))
    session.commit()
    return NewUser(user=user, token=token)


def revoke_user(session: Session, name: str, actor: Actor = "cli",
                keep_an_admin: bool = False) -> User:
    """Deactivate a user: their token stops working at once. Committed and audited."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise LookupError(f"no user named {name!r}")
    if not user.active:
        raise UserConflict(f"user {name!r} is already revoked")
    if keep_an_admin and user.role == ADMIN:
        admins = session.scalar(select(func.count()).select_from(User)
                                .where(User.role == ADMIN, User.active.is_(True))) or 0
        if admins <= 1:
            raise UserConflict(f"{name!r} is the last active admin; add another admin before revoking this one")
    before = user_summary(user)
    user.active = False
    user.revoked_at = utcnow()
    audit(session, actor, "user.revoke", "user", name, before=before, after=user_summary(user))
    session.commit()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)).all())


def authenticate(session: Session, token: str) -> User | None:
    """The active user holding `token`, else None."""
    if not token:
        return None
    user = session.scalar(select(User).where(User.token_hash == hash_token(token)))
    if user is None or not user.active:
        return None
    return user


def user_summary(user: User) -> dict:
    return {"name": user.name, "role": user.role, "token_prefix": user.token_prefix, "active": user.active,
            "created_at": user.created_at.isoformat() if user.created_at else None,
            "created_by": user.created_by,
            "revoked_at": user.revoked_at.isoformat() if user.revoked_at else None}
