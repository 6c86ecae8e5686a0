"""Knowledge endpoints (editors): FAQ entries and templates, history, revert, JSONL import/export, proposals."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from service import kb
from service.api.common import expected_version, runtime_of
from service.auth.identity import CurrentUser
from service.auth.roles import EDITOR
from service.auth.views import require_roles
from service.errors import Invalid
from service.knowledge_admin import proposals
from service.knowledge_admin import service as knowledge

router = APIRouter(prefix="/v1/knowledge", tags=["knowledge"])
editor = require_roles(EDITOR)

PATHS = {"faq": knowledge.FAQ, "templates": knowledge.TEMPLATE}  # URL segment -> kind


class EntryVersion(BaseModel):
    kind: str
    id: str
    version: int
    deleted: bool
    author: str
    created_at: datetime
    data: dict[str, Any]


class RevertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="the version whose content becomes live again")


class ImportOut(BaseModel):
    kind: str
    dry_run: bool
    added: int
    changed: int
    unchanged: int
    added_ids: list[str]
    changed_ids: list[str]
    unchanged_ids: list[str]


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str | None = Field(None, max_length=200, description="the editor's wording (default: as proposed)")


class DismissIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=2000)


def _version(row, response: Response | None = None) -> EntryVersion:
    if response is not None:
        response.headers["ETag"] = f'"{row.version}"'
    return EntryVersion(**knowledge.version_dict(row))


def _register(segment: str, kind: str) -> None:
    label = knowledge.LABEL[kind]

    def list_live(request: Request, user: CurrentUser = Depends(editor)) -> list[dict[str, Any]]:
        with runtime_of(request).sessions() as session:
            return kb.live_entries(session, kind)

    def get_one(entry_id: str, request: Request, response: Response,
                user: CurrentUser = Depends(editor)) -> EntryVersion:
        with runtime_of(request).sessions() as session:
            return _version(knowledge.live(session, kind, entry_id), response)

    def create(entry_id: str, request: Request, response: Response, body: dict[str, Any] = Body(...),
               user: CurrentUser = Depends(editor)) -> EntryVersion:
        runtime = runtime_of(request)
        with runtime.sessions() as session:
            return _version(knowledge.create(runtime, session, kind, entry_id, body, user), response)

    def replace(entry_id: str, request: Request, response: Response, body: dict[str, Any] = Body(...),
                expected: int | None = Query(None, alias="expected_version"),
                user: CurrentUser = Depends(editor)) -> EntryVersion:
        runtime = runtime_of(request)
        with runtime.sessions() as session:
            row, _ = knowledge.update(runtime, session, kind, entry_id, body, user,
                                      expected_version(request, expected))
            return _version(row, response)

    def remove(entry_id: str, request: Request, response: Response,
               expected: int | None = Query(None, alias="expected_version"),
               user: CurrentUser = Depends(editor)) -> EntryVersion:
        runtime = runtime_of(request)
        with runtime.sessions() as session:
            return _version(knowledge.delete(runtime, session, kind, entry_id, user, expected_version(request, expected)),
                            response)

    def history(entry_id: str, request: Request, user: CurrentUser = Depends(editor)) -> list[EntryVersion]:
        with runtime_of(request).sessions() as session:
            return [_version(row) for row in knowledge.history(session, kind, entry_id)]

    def revert(entry_id: str, body: RevertIn, request: Request, response: Response,
               expected: int | None = Query(None, alias="expected_version"),
               user: CurrentUser = Depends(editor)) -> EntryVersion:
        runtime = runtime_of(request)
        with runtime.sessions() as session:
            return _version(knowledge.revert(runtime, session, kind, entry_id, body.version, user,
                                             expected_version(request, expected)), response)

    base = f"/{segment}"
    item = f"/{segment}/{{entry_id}}"
    name = segment.rstrip("s")
    router.add_api_route(base, list_live, methods=["GET"], name=f"list_{segment}",
                         summary=f"Live {label} entries (editors)")
    router.add_api_route(item, get_one, methods=["GET"], response_model=EntryVersion, name=f"get_{name}",
                         summary=f"One live {label}")
    router.add_api_route(item, create, methods=["POST"], response_model=EntryVersion, status_code=201,
                         name=f"create_{name}", summary=f"Create a {label} (validated, versioned, live at once)")
    router.add_api_route(item, replace, methods=["PUT"], response_model=EntryVersion, name=f"update_{name}",
                         summary=f"Replace a {label}: a new version (If-Match: the version you edited)")
    router.add_api_route(item, remove, methods=["DELETE"], response_model=EntryVersion, name=f"delete_{name}",
                         summary=f"Delete a {label} (kept in its history; revert restores it)")
    router.add_api_route(f"{item}/history", history, methods=["GET"], response_model=list[EntryVersion],
                         name=f"history_{name}", summary=f"Every version of a {label}, oldest first")
    router.add_api_route(f"{item}/revert", revert, methods=["POST"], response_model=EntryVersion,
                         name=f"revert_{name}", summary=f"Make an earlier version's content live again")


# --- import / export ----------------------------------------------------------------------

def _kind(value: str) -> str:
    kinds = {"faq": knowledge.FAQ, "template": knowledge.TEMPLATE, "templates": knowledge.TEMPLATE}
    if value not in kinds:
        raise Invalid("kind must be faq or template")
    return kinds[value]


@router.get("/export", summary="Live entries as JSON Lines (editors)",
            responses={200: {"content": {"application/x-ndjson": {}}}})
def export(request: Request, kind: str = Query("faq", description="faq | template"),
           user: CurrentUser = Depends(editor)) -> Response:
    kind = _kind(kind)
    with runtime_of(request).sessions() as session:
        body = knowledge.export_jsonl(session, kind)
    return Response(content=body, media_type="application/x-ndjson; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{kind}.jsonl"'})


@router.post("/import", response_model=ImportOut,
             summary="Import JSON Lines; dry_run=true reports what would change and changes nothing (editors)")
async def import_jsonl(request: Request, kind: str = Query("faq", description="faq | template"),
                       dry_run: bool = Query(False), user: CurrentUser = Depends(editor)) -> ImportOut:
    kind = _kind(kind)
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("the body must be UTF-8 JSON Lines") from None
    runtime = runtime_of(request)

    def run() -> ImportOut:
        with runtime.sessions() as session:
            return ImportOut(**knowledge.import_live(runtime, session, kind, text, user, dry_run).as_dict())

    return await run_in_threadpool(run)


# --- similar-question proposals ----------------------------------------------------------

@router.get("/proposals", summary="Similar-question proposals (editors)")
def list_proposals(request: Request, status: str = Query("open", description="open | accepted | dismissed | all"),
                   faq_id: str | None = None, limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0),
                   user: CurrentUser = Depends(editor)) -> list[dict[str, Any]]:
    if status not in ("open", "accepted", "dismissed", "all"):
        raise Invalid("status must be open, accepted, dismissed or all")
    with runtime_of(request).sessions() as session:
        rows = proposals.list_proposals(session, None if status == "all" else status, faq_id, limit, offset)
        return [proposals.proposal_dict(r) for r in rows]


@router.post("/proposals/{proposal_id}/accept",
             summary="Accept: the question joins the FAQ entry's similar questions (a new version, live at once)")
def accept_proposal(proposal_id: int, request: Request, body: AcceptIn | None = None,
                    user: CurrentUser = Depends(editor)) -> dict[str, Any]:
    runtime = runtime_of(request)
    with runtime.sessions() as session:
        row, version = proposals.accept(runtime, session, proposal_id, user, body.question if body else None)
        return {"proposal": proposals.proposal_dict(row), "faq": knowledge.version_dict(version)}


@router.post("/proposals/{proposal_id}/dismiss", summary="Dismiss a similar-question proposal")
def dismiss_proposal(proposal_id: int, request: Request, body: DismissIn | None = None,
                     user: CurrentUser = Depends(editor)) -> dict[str, Any]:
    with runtime_of(request).sessions() as session:
        return proposals.proposal_dict(proposals.dismiss(session, proposal_id, user, body.reason if body else None))


for _segment, _kind_name in PATHS.items():
    _register(_segment, _kind_name)
