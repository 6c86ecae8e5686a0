"""Editing knowledge: FAQ entries and templates, validated, versioned, audited and live at once.

Every change is a new KnowledgeEntry version (service/kb.py) with its author and time;
the newest non-deleted version is live. After the commit the change goes into the running
retriever (upsert/delete of one entry) and the pipeline's in-memory knowledge, so the
next draft request sees it. (Another server process sees it after its next restart or
`Runtime.reload_knowledge()`.)

Validation, beyond the shapes in service/kb.py:
- a template must render with its declared placeholders, and its body must not use jargon
  or hold personal data;
- an FAQ answer must pass the jargon check and hold no personal data; questions and
  similar questions must hold no personal data either.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service import kb
from service.audit.service import record as audit
from service.auth.identity import Actor, actor_fields
from service.db.models import KnowledgeEntry
from service.jsonl import JsonlError, json_objects
from service.errors import Conflict, Invalid, NotFound
from service.guard.checks import find_jargon
from service.masking import Masker
from service.policy import Policy

log = logging.getLogger("draftdesk.knowledge")

FAQ = "faq"
TEMPLATE = "template"
KINDS = (FAQ, TEMPLATE)
COLLECTION = {FAQ: "faq", TEMPLATE: "templates"}  # retriever collections
LABEL = {FAQ: "FAQ entry", TEMPLATE: "template"}
MAX_SIMILAR_QUESTION_CHARS = 200

_LIVE_LOCK = threading.Lock()  # one in-memory knowledge update at a time (copy-on-write below)

_PII_LABEL = {"mobile": "手机号", "landline": "电话号码", "id_card": "身份证号", "bank_card": "银行卡号",
              "email": "邮箱", "address": "地址", "name": "姓名"}


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise Invalid(f"unknown knowledge kind {kind!r}; use faq or template")
    return kind


# --- validation ------------------------------------------------------------------

def _own_numbers(policy: Policy, masker: Masker) -> set[str]:
    """The company's own contact numbers, which a reply may quote."""
    digits = set()
    for value in (policy.agent.hotline, policy.agent.default_contact):
        for span in masker.find(value or ""):
            digits.add("".join(ch for ch in span.original if ch.isdigit()))
    return digits


def personal_data_in(text: str, policy: Policy, masker: Masker) -> list[str]:
    """Kinds of personal data in `text` (the company's own numbers excepted), described without the values."""
    own = _own_numbers(policy, masker)
    found = []
    for span in masker.find(text or ""):
        if "".join(ch for ch in span.original if ch.isdigit()) in own and span.kind in ("mobile", "landline"):
            continue
        found.append(f"{_PII_LABEL.get(span.kind, span.kind)}（{span.replacement}）")
    return found


def jargon_in(text: str, policy: Policy) -> list[str]:
    return [f"“{item['term']}”应改为“{item['replacement']}”" for item in find_jargon(text or "", policy)]


def validate(kind: str, data: dict[str, Any], policy: Policy, masker: Masker) -> dict[str, Any]:
    """The entry as it will be stored, or Invalid (422) naming the entry and the problem."""
    check_kind(kind)
    if not isinstance(data, dict):
        raise Invalid(f"a {LABEL[kind]} must be a JSON object")
    try:
        if kind == FAQ:
            entry = kb.parse_faq(data)
            entry.similar_questions = [q.strip() for q in entry.similar_questions if q.strip()]
            _check_faq(entry, policy, masker)
        else:
            entry = kb.parse_template(data)
            _check_template(entry, policy, masker)
    except kb.KnowledgeError as exc:
        raise Invalid(str(exc)) from exc
    return entry.model_dump()


def _check_faq(entry: kb.FaqEntry, policy: Policy, masker: Masker) -> None:
    jargon = jargon_in(entry.answer, policy)
    if jargon:
        raise kb.KnowledgeError(f"FAQ entry {entry.id}: the answer uses jargon customers may not understand: "
                                + "、".join(jargon))
    for where, text in [("answer", entry.answer), ("question", entry.question),
                        *(("similar_questions", q) for q in entry.similar_questions)]:
        leaks = personal_data_in(text, policy, masker)
        if leaks:
            raise kb.KnowledgeError(f"FAQ entry {entry.id}: the {where} holds personal data: {'、'.join(leaks)}")
    too_long = [q for q in entry.similar_questions if len(q) > MAX_SIMILAR_QUESTION_CHARS]
    if too_long:
        raise kb.KnowledgeError(f"FAQ entry {entry.id}: similar questions are at most "
                                f"{MAX_SIMILAR_QUESTION_CHARS} characters")


def _check_template(template: kb.Template, policy: Policy, masker: Masker) -> None:
    sample = {name: f"〈{name}〉" for name in template.placeholders}
    try:
        template.render(sample)
    except kb.KnowledgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - any render failure (filters, tests) is the template's fault
        raise kb.KnowledgeError(f"template {template.id}: does not render with its placeholders: {exc}") from exc
    jargon = jargon_in(template.body, policy)
    if jargon:
        raise kb.KnowledgeError(f"template {template.id}: the body uses jargon customers may not understand: "
                                + "、".join(jargon))
    leaks = personal_data_in(template.body, policy, masker)
    if leaks:
        raise kb.KnowledgeError(f"template {template.id}: the body holds personal data: {'、'.join(leaks)}")


# --- reading ---------------------------------------------------------------------

def newest(session: Session, kind: str, entry_id: str) -> KnowledgeEntry | None:
    return session.scalar(select(KnowledgeEntry).where(KnowledgeEntry.kind == kind, KnowledgeEntry.entry_id == entry_id)
                          .order_by(KnowledgeEntry.version.desc()).limit(1))


def live(session: Session, kind: str, entry_id: str) -> KnowledgeEntry:
    row = newest(session, kind, entry_id)
    if row is None or row.deleted:
        raise NotFound(f"no {LABEL[kind]} with id {entry_id}" + (" (it was deleted)" if row is not None else ""))
    return row


def history(session: Session, kind: str, entry_id: str) -> list[KnowledgeEntry]:
    rows = session.scalars(select(KnowledgeEntry).where(KnowledgeEntry.kind == kind, KnowledgeEntry.entry_id == entry_id)
                           .order_by(KnowledgeEntry.version)).all()
    if not rows:
        raise NotFound(f"no {LABEL[kind]} with id {entry_id}")
    return list(rows)


def version_dict(row: KnowledgeEntry) -> dict[str, Any]:
    return {"kind": row.kind, "id": row.entry_id, "version": row.version, "deleted": row.deleted,
            "author": row.author, "created_at": row.created_at, "data": row.data}


# --- changing ----------------------------------------------------------------------

def _check_expected(row: KnowledgeEntry | None, expected_version: int | None, kind: str, entry_id: str) -> None:
    if expected_version is not None and (row is None or row.version != expected_version):
        current = row.version if row is not None else None
        raise Conflict(f"{LABEL[kind]} {entry_id} is at version {current}, not {expected_version}: someone changed "
                       "it after you loaded it; reload it and try again", version=current)


def _add_version(session: Session, kind: str, entry_id: str, data: dict, actor: Actor, deleted: bool,
                 previous: KnowledgeEntry | None) -> KnowledgeEntry:
    row = KnowledgeEntry(kind=kind, entry_id=entry_id, version=(previous.version if previous else 0) + 1,
                         data=data, deleted=deleted, author=actor_fields(actor)[0])
    session.add(row)
    return row


def _commit(session: Session, kind: str, entry_id: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"{LABEL[kind]} {entry_id} was changed by someone else at the same time; reload it and "
                       "try again") from None


def _entry_data(kind: str, entry_id: str, body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Invalid(f"a {LABEL[kind]} must be a JSON object")
    if "id" in body and body["id"] != entry_id:
        raise Invalid(f"the body's id {body['id']!r} differs from the id in the path {entry_id!r}")
    return {**body, "id": entry_id}


def create(runtime, session: Session, kind: str, entry_id: str, body: dict[str, Any], actor: Actor) -> KnowledgeEntry:
    check_kind(kind)
    data = validate(kind, _entry_data(kind, entry_id, body), runtime.policy, runtime.pipeline.masker)
    previous = newest(session, kind, entry_id)
    if previous is not None and not previous.deleted:
        raise Conflict(f"{LABEL[kind]} {entry_id} exists already (version {previous.version}); use PUT to change it",
                       version=previous.version)
    row = _add_version(session, kind, entry_id, data, actor, False, previous)
    audit(session, actor, "knowledge.create", kind, entry_id, before=None, after=data,
          details={"version": row.version, "restored_after_delete": previous is not None})
    _commit(session, kind, entry_id)
    apply_live(runtime, kind, entry_id)
    return row


def update(runtime, session: Session, kind: str, entry_id: str, body: dict[str, Any], actor: Actor,
           expected_version: int | None = None, action: str = "knowledge.update",
           details: dict[str, Any] | None = None) -> tuple[KnowledgeEntry, bool]:
    """(the live version, whether it changed). An identical body adds no version."""
    check_kind(kind)
    current = live(session, kind, entry_id)
    _check_expected(current, expected_version, kind, entry_id)
    data = validate(kind, _entry_data(kind, entry_id, body), runtime.policy, runtime.pipeline.masker)
    if data == current.data:
        return current, False
    row = _add_version(session, kind, entry_id, data, actor, False, current)
    audit(session, actor, action, kind, entry_id, before=current.data, after=data,
          details={"version": row.version, "previous_version": current.version, **(details or {})})
    _commit(session, kind, entry_id)
    apply_live(runtime, kind, entry_id)
    return row, True


def delete(runtime, session: Session, kind: str, entry_id: str, actor: Actor,
           expected_version: int | None = None) -> KnowledgeEntry:
    check_kind(kind)
    current = live(session, kind, entry_id)
    _check_expected(current, expected_version, kind, entry_id)
    if kind == TEMPLATE:
        category = current.data.get("category")
        others = [t for t in kb.live_entries(session, TEMPLATE) if t.get("category") == category and t["id"] != entry_id]
        if not others:
            raise Conflict(f"template {entry_id} is the last {category} template; the drafter needs at least one "
                           "template per category: add another first")
    row = _add_version(session, kind, entry_id, current.data, actor, True, current)
    audit(session, actor, "knowledge.delete", kind, entry_id, before=current.data, after=None,
          details={"version": row.version, "previous_version": current.version})
    _commit(session, kind, entry_id)
    apply_live(runtime, kind, entry_id)
    return row


def revert(runtime, session: Session, kind: str, entry_id: str, version: int, actor: Actor,
           expected_version: int | None = None) -> KnowledgeEntry:
    """A new version whose content is that of `version` (validated again against today's policy)."""
    check_kind(kind)
    target = session.scalar(select(KnowledgeEntry).where(KnowledgeEntry.kind == kind, KnowledgeEntry.entry_id == entry_id,
                                                         KnowledgeEntry.version == version))
    if target is None:
        raise NotFound(f"{LABEL[kind]} {entry_id} has no version {version}")
    if target.deleted:
        raise Invalid(f"version {version} of {LABEL[kind]} {entry_id} is a deletion; revert to a version with content")
    current = newest(session, kind, entry_id)
    _check_expected(current, expected_version, kind, entry_id)
    data = validate(kind, dict(target.data), runtime.policy, runtime.pipeline.masker)
    if current is not None and not current.deleted and current.data == data:
        raise Conflict(f"{LABEL[kind]} {entry_id} already has the content of version {version} "
                       f"(it is version {current.version})", version=current.version)
    row = _add_version(session, kind, entry_id, data, actor, False, current)
    audit(session, actor, "knowledge.revert", kind, entry_id,
          before=None if current is None or current.deleted else current.data, after=data,
          details={"version": row.version, "reverted_to": version})
    _commit(session, kind, entry_id)
    apply_live(runtime, kind, entry_id)
    return row


def apply_live(runtime, kind: str, entry_id: str) -> None:
    """Make the entry's newest committed version live in the running retriever and the pipeline's knowledge.

    Read back from the database under a lock, so two editors committing one after the
    other leave the newer version live whatever order their requests finish in.
    """
    pipeline = runtime.pipeline
    with _LIVE_LOCK:
        with runtime.sessions() as session:
            row = newest(session, kind, entry_id)
            data = None if row is None or row.deleted else dict(row.data)
        try:
            if data is None:
                pipeline.retriever.delete(COLLECTION[kind], entry_id)
            else:
                pipeline.retriever.upsert(COLLECTION[kind], data)
        except Exception:  # noqa: BLE001 - fall back to a full rebuild rather than serve a stale index
            log.exception("live update of %s %s failed; rebuilding the index from the database", kind, entry_id)
            runtime.reload_knowledge()
            return
        # Copy-on-write: a request in flight keeps the dict it started with.
        _replace_in_memory(pipeline.knowledge, kind, entry_id, data)


def _replace_in_memory(knowledge: kb.KnowledgeBase, kind: str, entry_id: str, data: dict[str, Any] | None) -> None:
    if kind == FAQ:
        faq = dict(knowledge.faq)
        if data is None:
            faq.pop(entry_id, None)
        else:
            faq[entry_id] = kb.parse_faq(data)
        knowledge.faq = faq
    else:
        templates = dict(knowledge.templates)
        if data is None:
            templates.pop(entry_id, None)
        else:
            templates[entry_id] = kb.parse_template(data)
        knowledge.templates = templates


# --- import / export -----------------------------------------------------------------

@dataclass
class ImportResult:
    report: kb.ImportReport
    dry_run: bool
    kind: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "dry_run": self.dry_run, **self.report.as_dict(),
                "unchanged_ids": self.report.unchanged}


def parse_jsonl(text: str, kind: str) -> list[dict[str, Any]]:
    """Rows of a JSON Lines document, naming the line of any malformed or duplicate row."""
    rows, seen = [], set()
    try:
        for number, row in json_objects(text.splitlines()):
            entry_id = row.get("id")
            if entry_id in seen:
                raise Invalid(f"line {number}: duplicate id {entry_id}")
            seen.add(entry_id)
            rows.append((number, row))
    except JsonlError as exc:
        raise Invalid(str(exc)) from exc
    if not rows:
        raise Invalid(f"no {LABEL[kind]} entries in the document")
    return rows


def import_entries(session: Session, kind: str, rows: list[tuple[int | None, dict[str, Any]]], actor: Actor,
                   policy: Policy, masker: Masker, dry_run: bool = False) -> ImportResult:
    """Validate every row (all or nothing), then add a version for each new or changed entry, audited."""
    check_kind(kind)
    entries = []
    for number, row in rows:
        try:
            entries.append(validate(kind, row, policy, masker))
        except Invalid as exc:
            where = f"line {number}: " if number is not None else ""
            raise Invalid(where + exc.message) from None
    preview = kb.import_entries(session, kind, entries, dry_run=True)
    if dry_run:
        return ImportResult(preview, True, kind)
    current = {row["id"]: row for row in kb.live_entries(session, kind)}
    by_id = {entry["id"]: entry for entry in entries}
    for entry_id in preview.added + preview.changed:
        audit(session, actor, "knowledge.import", kind, entry_id, before=current.get(entry_id), after=by_id[entry_id])
    report = kb.import_entries(session, kind, entries, author=actor_fields(actor)[0], dry_run=False)
    return ImportResult(report, False, kind)


def import_live(runtime, session: Session, kind: str, text: str, actor: Actor, dry_run: bool) -> ImportResult:
    """The API's import: JSON Lines in, every change live afterwards."""
    result = import_entries(session, kind, parse_jsonl(text, kind), actor, runtime.policy, runtime.pipeline.masker,
                            dry_run=dry_run)
    if not dry_run:
        changed = result.report.added + result.report.changed
        if len(changed) > 20:
            runtime.reload_knowledge()
        else:
            for entry_id in changed:
                apply_live(runtime, kind, entry_id)
    return result


def export_jsonl(session: Session, kind: str) -> str:
    check_kind(kind)
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in kb.live_entries(session, kind))

