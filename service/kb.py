"""Knowledge: FAQ entries, reply templates and labeled examples.

Files in knowledge/ seed the database; the database holds every version and
the newest non-deleted version of each entry is live.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.models import KnowledgeEntry
from service.jsonl import JsonlError, json_objects
from service.policy import CATEGORIES, CHANNELS, PRIORITIES

# The variables a drafter supplies; a template may use no others.
TEMPLATE_VARIABLES = frozenset({
    "customer_title", "order_ref", "product_ref", "issue_summary", "faq_answer", "deadline",
    "resolution_deadline", "followup", "compensation", "agent_contact", "team_name", "personal_note",
})

_jinja = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


class KnowledgeError(ValueError):
    """Invalid knowledge content; the message says which entry and why."""


class FaqEntry(BaseModel):
    id: str = Field(min_length=1, max_length=64)
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    category: str
    tags: list[str] = []
    similar_questions: list[str] = []

    @field_validator("category")
    @classmethod
    def _category(cls, value: str) -> str:
        if value not in CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(CATEGORIES)}")
        return value

    @field_validator("question", "answer")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class Template(BaseModel):
    id: str = Field(min_length=1, max_length=64)
    name: str
    category: str
    priorities: list[str]
    channels: list[str]
    description: str = ""
    placeholders: list[str]
    body: str = Field(min_length=1)

    @field_validator("category")
    @classmethod
    def _category(cls, value: str) -> str:
        if value not in CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(CATEGORIES)}")
        return value

    @field_validator("priorities")
    @classmethod
    def _priorities(cls, value: list[str]) -> list[str]:
        bad = [p for p in value if p not in PRIORITIES]
        if bad or not value:
            raise ValueError(f"priorities must be a non-empty subset of {', '.join(PRIORITIES)}; got {bad or value}")
        return value

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if c not in CHANNELS]
        if bad or not value:
            raise ValueError(f"channels must be a non-empty subset of {', '.join(CHANNELS)}; got {bad or value}")
        return value

    def variables(self) -> set[str]:
        return set(jinja2.meta.find_undeclared_variables(_jinja.parse(self.body)))

    def check_placeholders(self) -> None:
        used = self.variables()
        unknown = used - TEMPLATE_VARIABLES
        if unknown:
            raise KnowledgeError(f"template {self.id}: unknown variables {sorted(unknown)}")
        if used != set(self.placeholders):
            raise KnowledgeError(
                f"template {self.id}: placeholders {sorted(self.placeholders)} do not match the body's variables {sorted(used)}"
            )

    def render(self, values: dict[str, str]) -> str:
        """Render with StrictUndefined: a missing variable raises, and an empty value is refused."""
        empty = [name for name in self.placeholders if not str(values.get(name, "")).strip()]
        if empty:
            raise KnowledgeError(f"template {self.id}: empty value for {', '.join(sorted(empty))}")
        try:
            return _jinja.from_string(self.body).render(**values).strip()
        except jinja2.UndefinedError as exc:
            raise KnowledgeError(f"template {self.id}: {exc.message}") from exc


def parse_faq(data: dict[str, Any]) -> FaqEntry:
    try:
        return FaqEntry.model_validate(data)
    except ValidationError as exc:
        raise KnowledgeError(f"FAQ entry {data.get('id', '?')}: {_first_error(exc)}") from exc


def parse_template(data: dict[str, Any]) -> Template:
    try:
        template = Template.model_validate(data)
    except ValidationError as exc:
        raise KnowledgeError(f"template {data.get('id', '?')}: {_first_error(exc)}") from exc
    try:
        template.check_placeholders()
    except jinja2.TemplateSyntaxError as exc:
        raise KnowledgeError(f"template {template.id}: Jinja2 syntax error: {exc.message}") from exc
    return template


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "entry"
    return f"{where}: {err['msg']}"


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read JSON Lines, naming the file and line of any malformed row."""
    path = Path(path)
    if not path.exists():
        raise KnowledgeError(f"file not found: {path}")
    with path.open(encoding="utf-8") as handle:
        try:
            return [row for _, row in json_objects(handle)]
        except JsonlError as exc:
            raise KnowledgeError(f"{path}:{exc.line}: {exc.problem}") from exc


def load_faq_file(path: str | Path) -> list[FaqEntry]:
    entries = [parse_faq(row) for row in read_jsonl(path)]
    _unique(entries, path)
    return entries


def load_templates_file(path: str | Path) -> list[Template]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KnowledgeError(f"file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, list):
        raise KnowledgeError(f"{path}: expected a list of templates")
    templates = [parse_template(row) for row in data]
    _unique(templates, path)
    return templates


def _unique(entries: Iterable[FaqEntry | Template], path: str | Path) -> None:
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise KnowledgeError(f"{path}: duplicate id {entry.id}")
        seen.add(entry.id)


@dataclass
class KnowledgeBase:
    """The live knowledge, in memory, as the pipeline uses it."""

    faq: dict[str, FaqEntry] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def faq_dicts(self) -> list[dict[str, Any]]:
        return [entry.model_dump() for entry in self.faq.values()]

    def template_dicts(self) -> list[dict[str, Any]]:
        return [template.model_dump() for template in self.templates.values()]


def load_files(knowledge_dir: Path, faq_path: Path | None = None) -> KnowledgeBase:
    faq = load_faq_file(faq_path or knowledge_dir / "faq.jsonl")
    templates = load_templates_file(knowledge_dir / "templates.yaml")
    examples = read_jsonl(knowledge_dir / "examples.jsonl")
    return KnowledgeBase(
        faq={e.id: e for e in faq}, templates={t.id: t for t in templates}, examples=examples
    )


# --- database store -------------------------------------------------------

def live_entries(session: Session, kind: str) -> list[dict[str, Any]]:
    """Newest version of every entry of a kind, deleted ones left out."""
    newest = (
        select(KnowledgeEntry.entry_id, func.max(KnowledgeEntry.version).label("version"))
        .where(KnowledgeEntry.kind == kind)
        .group_by(KnowledgeEntry.entry_id)
        .subquery()
    )
    rows = session.scalars(
        select(KnowledgeEntry).join(
            newest,
            (KnowledgeEntry.entry_id == newest.c.entry_id) & (KnowledgeEntry.version == newest.c.version),
        ).where(KnowledgeEntry.kind == kind).order_by(KnowledgeEntry.entry_id)
    ).all()
    return [row.data for row in rows if not row.deleted]


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"added": len(self.added), "changed": len(self.changed), "unchanged": len(self.unchanged),
                "added_ids": self.added, "changed_ids": self.changed}


def import_entries(session: Session, kind: str, entries: list[dict[str, Any]], author: str = "system",
                   dry_run: bool = False) -> ImportReport:
    """Add a new version for each new or changed entry; all or nothing."""
    current = {row["id"]: row for row in live_entries(session, kind)}
    versions = dict(session.execute(
        select(KnowledgeEntry.entry_id, func.max(KnowledgeEntry.version))
        .where(KnowledgeEntry.kind == kind).group_by(KnowledgeEntry.entry_id)
    ).all())
    report = ImportReport()
    for data in entries:
        entry_id = data["id"]
        if current.get(entry_id) == data:
            report.unchanged.append(entry_id)
            continue
        (report.changed if entry_id in current else report.added).append(entry_id)
        if not dry_run:
            session.add(KnowledgeEntry(kind=kind, entry_id=entry_id, version=versions.get(entry_id, 0) + 1,
                                       data=data, author=author))
    if not dry_run:
        session.commit()
    return report


def seed_if_empty(session: Session, knowledge_dir: Path) -> bool:
    """First start: copy knowledge/ files into the database."""
    # Other kinds (the policy's versions) share the table but are not knowledge.
    has_any = session.scalar(select(func.count()).select_from(KnowledgeEntry)
                             .where(KnowledgeEntry.kind.in_(("faq", "template"))))
    if has_any:
        return False
    files = load_files(knowledge_dir)
    import_entries(session, "faq", [e.model_dump() for e in files.faq.values()])
    import_entries(session, "template", [t.model_dump() for t in files.templates.values()])
    return True


def load_from_db(session: Session, knowledge_dir: Path) -> KnowledgeBase:
    faq = [parse_faq(row) for row in live_entries(session, "faq")]
    templates = [parse_template(row) for row in live_entries(session, "template")]
    examples = read_jsonl(knowledge_dir / "examples.jsonl")
    return KnowledgeBase(faq={e.id: e for e in faq}, templates={t.id: t for t in templates}, examples=examples)
