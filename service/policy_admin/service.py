"""Changing the business policy: validated, versioned, audited and live for the next request.

Versions are rows of `knowledge_entries` with kind "policy" (one entry, id "policy"); the
newest is the policy. Until the first change there is none and the running policy is
knowledge/policy.yaml, shown as version 0. A change is built into the pipeline's parts
before it is committed, so a policy the service cannot run is refused and changes nothing.
(Another server process picks up a change at its next start.)
"""
from __future__ import annotations

import threading
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.audit.service import record as audit
from service.auth.identity import Actor, actor_fields
from service.db.models import KnowledgeEntry
from service.errors import Conflict, Invalid, NotFound
from service.guard.calendar import BusinessCalendar
from service.policy import CHANNELS, BusinessHours, Policy, PolicyError, load_policy

POLICY = "policy"  # the kind and the entry id of every policy version

_CHANGE_LOCK = threading.Lock()  # one change at a time: versions are built, committed and swapped in order


# --- reading -----------------------------------------------------------------------

def _newest(session: Session) -> KnowledgeEntry | None:
    return session.scalar(select(KnowledgeEntry).where(KnowledgeEntry.kind == POLICY, KnowledgeEntry.entry_id == POLICY)
                          .order_by(KnowledgeEntry.version.desc()).limit(1))


def stored_policy(session: Session) -> Policy | None:
    """The newest stored policy version, or None while the file is the policy."""
    row = _newest(session)
    if row is None:
        return None
    try:
        return Policy.model_validate(row.data)
    except ValidationError as exc:
        raise PolicyError(f"stored policy version {row.version} is invalid: {exc}") from exc


def as_document(policy: Policy) -> dict[str, Any]:
    """The policy as JSON, in policy.yaml's structure (defaults filled in)."""
    return policy.model_dump(mode="json")


def current(runtime, session: Session) -> tuple[int, dict[str, Any]]:
    """(version, document); version 0 is the file, as the runtime loaded it."""
    row = _newest(session)
    if row is None:
        return 0, as_document(runtime.policy)
    return row.version, row.data


def changed_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def history(runtime, session: Session) -> list[dict[str, Any]]:
    """Every version, oldest first, with the top-level keys it changed (version 1: against the file)."""
    rows = session.scalars(select(KnowledgeEntry).where(KnowledgeEntry.kind == POLICY, KnowledgeEntry.entry_id == POLICY)
                           .order_by(KnowledgeEntry.version)).all()
    previous = as_document(load_policy(runtime.settings.policy_path)) if rows else {}
    items = []
    for row in rows:
        items.append({"version": row.version, "author": row.author, "created_at": row.created_at,
                      "changed": changed_keys(previous, row.data)})
        previous = row.data
    return items


# --- validation ----------------------------------------------------------------------

def parse(document: dict[str, Any]) -> Policy:
    """The policy, or Invalid (422) naming every field at fault: the file's parser, then what it leaves open."""
    try:
        policy = Policy.model_validate(document)
    except ValidationError as exc:
        _refuse([{"field": ".".join(str(p) for p in err["loc"]) or "policy",
                  "error": str(err["msg"]).removeprefix("Value error, ")} for err in exc.errors()])
    _refuse(_inconsistencies(policy))
    return policy


def _refuse(problems: list[dict[str, str]]) -> None:
    if problems:
        summary = "; ".join(f"{p['field']}: {p['error']}" for p in problems)
        raise Invalid(f"invalid policy: {summary}", problems=problems)


def _inconsistencies(policy: Policy) -> list[dict[str, str]]:
    """What the model accepts but the running service would fail on (the taxonomy is checked by the model)."""
    problems = []
    missing = [c for c in CHANNELS if c not in policy.channels]
    if missing:  # drafts are formatted for every channel the API accepts
        problems.append({"field": "channels", "error": f"missing {missing}"})
    try:
        ZoneInfo(policy.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append({"field": "timezone", "error": f"unknown time zone {policy.timezone!r}"})
    if not isinstance(policy.business_hours.get("default"), BusinessHours):
        problems.append({"field": "business_hours.default", "error": "required (the SLA engine's calendar)"})
    for name, hours in policy.business_hours.items():
        if not isinstance(hours, BusinessHours):
            continue
        if not hours.weekdays:
            problems.append({"field": f"business_hours.{name}.weekdays", "error": "at least one working day"})
        try:
            BusinessCalendar(hours, "UTC", use_china_holidays=False)
        except ValueError as exc:
            problems.append({"field": f"business_hours.{name}.periods", "error": str(exc)})
    limits = policy.compensation
    if not limits.agent_limit <= limits.supervisor_limit <= limits.manager_limit:
        problems.append({"field": "compensation", "error": "limits must rise: agent_limit <= supervisor_limit "
                                                           "<= manager_limit"})
    return problems


# --- changing ------------------------------------------------------------------------

def update(runtime, session: Session, document: dict[str, Any], actor: Actor, expected_version: int | None = None,
           action: str = "policy.update", details: dict[str, Any] | None = None) -> tuple[int, dict[str, Any], bool]:
    """(the live version, its document, whether it changed). An identical document adds no version."""
    with _CHANGE_LOCK:
        version, before = current(runtime, session)
        if expected_version is not None and expected_version != version:
            raise Conflict(f"the policy is at version {version}, not {expected_version}: someone changed it after "
                           "you loaded it; reload it and try again", version=version)
        policy = parse(document)
        after = as_document(policy)
        if after == before:
            return version, before, False
        try:
            parts = runtime.prepare_policy(policy)
        except Exception as exc:  # noqa: BLE001 - whatever fails to build would fail every draft
            _refuse([{"field": "policy", "error": f"the service cannot run this policy: {type(exc).__name__}: {exc}"}])
        changed = changed_keys(before, after)
        session.add(KnowledgeEntry(kind=POLICY, entry_id=POLICY, version=version + 1, data=after,
                                   author=actor_fields(actor)[0]))
        audit(session, actor, action, POLICY, POLICY, before={"version": version},
              after={"version": version + 1, "changed": changed}, details=details)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raise Conflict("the policy was changed by someone else at the same time; reload it and try again") from None
        runtime.apply_policy(policy, parts)
        return version + 1, after, True


def revert(runtime, session: Session, version: int, actor: Actor,
           expected_version: int | None = None) -> tuple[int, dict[str, Any]]:
    """A new version whose content is that of `version` (validated again)."""
    target = session.scalar(select(KnowledgeEntry).where(KnowledgeEntry.kind == POLICY, KnowledgeEntry.entry_id == POLICY,
                                                         KnowledgeEntry.version == version))
    if target is None:
        raise NotFound(f"the policy has no version {version}")
    live_version, document, changed = update(runtime, session, dict(target.data), actor, expected_version,
                                             action="policy.revert", details={"reverted_to": version})
    if not changed:
        raise Conflict(f"the policy already has the content of version {version} (it is version {live_version})",
                       version=live_version)
    return live_version, document
