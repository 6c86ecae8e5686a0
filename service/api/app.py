"""HTTP API (OpenAPI at /docs) and the agent console at /."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select
from starlette.exceptions import HTTPException as StarletteHTTPException

from service import __version__
from service.audit.views import router as audit_router
from service.auth.identity import CurrentUser
from service.auth.roles import DRAFT_ROLES
from service.auth.views import require_roles
from service.auth.views import router as users_router
from service.config import Settings, get_settings
from service.db.models import Draft
from service.db.session import ping
from service.errors import ServiceError
from service.intake import MessageInFlight
from service.knowledge_admin.views import router as knowledge_router
from service.policy import CATEGORIES, CHANNELS, PRIORITIES
from service.policy_admin.views import router as policy_router
from service.records import draft_record
from service.review.views import router as review_router
from service.runtime import Runtime, build_runtime
from service.schemas import MAX_TEXT_CHARS, DraftPage, DraftRecord, DraftRequest

log = logging.getLogger("draftdesk.api")
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.runtime = runtime or build_runtime(settings)
        yield
        app.state.runtime.engine.dispose()

    app = FastAPI(title="draftdesk", version=__version__, lifespan=lifespan,
                  description="AI-assisted reply drafts for customer-service teams: "
                              "intake → mask → retrieve → classify → fill → guard → route. "
                              "Every /v1 endpoint needs `Authorization: Bearer <token>` (see README, "
                              "\"Access and roles\").")
    app.state.settings = settings
    drafts_user = require_roles(*DRAFT_ROLES)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        body = dict(exc.detail) if isinstance(exc.detail, dict) else {"error": str(exc.detail)}
        return JSONResponse(status_code=exc.status_code, content=body, headers=getattr(exc, "headers", None))

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError):
        return JSONResponse(status_code=exc.status_code, content=jsonable_encoder(exc.body()))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            problems.append({"field": where, "error": message})
        summary = "; ".join(f"{p['field']}: {p['error']}" for p in problems)
        return JSONResponse(status_code=422, content={"error": f"invalid request: {summary}", "problems": problems})

    def rt(request: Request) -> Runtime:
        return request.app.state.runtime

    @app.post("/v1/drafts", response_model=DraftRecord, status_code=201,
              summary="Draft a reply to a customer message")
    async def create_draft(body: DraftRequest, request: Request,
                           user: CurrentUser = Depends(drafts_user)) -> DraftRecord:
        runtime = rt(request)
        if len(body.text) > runtime.policy.limits.message_max_chars:
            raise HTTPException(422, f"text is {len(body.text)} characters; the limit is "
                                     f"{runtime.policy.limits.message_max_chars}")
        try:
            return await runtime.pipeline.draft(body)
        except MessageInFlight as exc:
            raise HTTPException(409, str(exc)) from exc

    @app.get("/v1/drafts/{draft_id}", response_model=DraftRecord)
    def get_draft(draft_id: str, request: Request, response: Response,
                  user: CurrentUser = Depends(drafts_user)) -> DraftRecord:
        with rt(request).sessions() as session:
            draft = session.get(Draft, draft_id)
            if draft is None:
                raise HTTPException(404, f"no draft with id {draft_id}")
            response.headers["ETag"] = f'"{draft.version}"'
            return draft_record(draft)

    @app.get("/v1/drafts", response_model=DraftPage)
    def list_drafts(request: Request, status: str | None = None,
                    category: str | None = Query(None, description=" | ".join(CATEGORIES)),
                    priority: str | None = Query(None, description=" | ".join(PRIORITIES)),
                    limit: int = Query(20, ge=1, le=200), offset: int = Query(0, ge=0),
                    user: CurrentUser = Depends(drafts_user)) -> DraftPage:
        if category and category not in CATEGORIES:
            raise HTTPException(422, f"unknown category {category!r}; use one of {', '.join(CATEGORIES)}")
        if priority and priority not in PRIORITIES:
            raise HTTPException(422, f"unknown priority {priority!r}; use one of {', '.join(PRIORITIES)}")
        query = select(Draft)
        if status:
            query = query.where(Draft.status == status)
        if category:
            query = query.where(Draft.category == category)
        if priority:
            query = query.where(Draft.priority == priority)
        with rt(request).sessions() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(query.order_by(Draft.created_at.desc(), Draft.id).limit(limit).offset(offset)).all()
            return DraftPage(items=[draft_record(d) for d in rows], total=total, limit=limit, offset=offset)

    app.include_router(review_router)
    app.include_router(knowledge_router)
    app.include_router(policy_router)
    app.include_router(audit_router)
    app.include_router(users_router)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz")
    def readyz(request: Request):
        runtime = getattr(request.app.state, "runtime", None)
        database = bool(runtime) and ping(runtime.engine)
        index = bool(runtime) and runtime.pipeline.retriever.ready
        body = {"database": database, "index": index, "status": "ready" if database and index else "not ready"}
        return JSONResponse(status_code=200 if database and index else 503, content=body)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def console(request: Request):
        return templates.TemplateResponse(request, "console.html", {
            "channels": CHANNELS, "max_chars": MAX_TEXT_CHARS, "version": __version__})

    return app
