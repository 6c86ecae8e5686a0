"""Policy endpoints (admins): read, replace, history, revert."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from service.api.common import expected_version, runtime_of
from service.auth.identity import CurrentUser
from service.auth.roles import ADMIN
from service.auth.views import require_roles
from service.policy_admin import service as policies

router = APIRouter(prefix="/v1/policy", tags=["policy"])
admin = require_roles(ADMIN)


class PolicyOut(BaseModel):
    version: int = Field(description="0 while knowledge/policy.yaml is the policy")
    source: str = Field(description="database | file")
    policy: dict[str, Any]


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: dict[str, Any] = Field(description="the whole policy, in policy.yaml's structure")
    expected_version: int | None = Field(None, ge=0, description="the version you edited (or If-Match)")


class RevertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="the version whose content becomes the policy again")
    expected_version: int | None = Field(None, ge=0)


class PolicyVersion(BaseModel):
    version: int
    author: str
    created_at: datetime
    changed: list[str] = Field(description="top-level keys changed against the version before (version 1: the file)")


def _out(version: int, document: dict[str, Any], response: Response) -> PolicyOut:
    response.headers["ETag"] = f'"{version}"'
    return PolicyOut(version=version, source="database" if version else "file", policy=document)


@router.get("", response_model=PolicyOut, summary="The business policy in force (admins)")
def get_policy(request: Request, response: Response, user: CurrentUser = Depends(admin)) -> PolicyOut:
    runtime = runtime_of(request)
    with runtime.sessions() as session:
        version, document = policies.current(runtime, session)
    return _out(version, document, response)


@router.put("", response_model=PolicyOut,
            summary="Replace the policy: validated, a new version, live for the next request (If-Match: the version "
                    "you edited)")
def put_policy(body: PolicyIn, request: Request, response: Response, user: CurrentUser = Depends(admin)) -> PolicyOut:
    runtime = runtime_of(request)
    with runtime.sessions() as session:
        version, document, _ = policies.update(runtime, session, body.policy, user,
                                               expected_version(request, body.expected_version))
    return _out(version, document, response)


@router.get("/history", response_model=list[PolicyVersion], summary="Every policy version, oldest first (admins)")
def policy_history(request: Request, user: CurrentUser = Depends(admin)) -> list[PolicyVersion]:
    runtime = runtime_of(request)
    with runtime.sessions() as session:
        return [PolicyVersion(**item) for item in policies.history(runtime, session)]


@router.post("/revert", response_model=PolicyOut, summary="Make an earlier version's content the policy again")
def revert_policy(body: RevertIn, request: Request, response: Response,
                  user: CurrentUser = Depends(admin)) -> PolicyOut:
    runtime = runtime_of(request)
    with runtime.sessions() as session:
        version, document = policies.revert(runtime, session, body.version, user,
                                            expected_version(request, body.expected_version))
    return _out(version, document, response)
