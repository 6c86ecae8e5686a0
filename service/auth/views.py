"""Bearer-token authentication, the role check, and the admins' user endpoints."""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from service.auth import service as users
from service.auth.identity import CurrentUser
from service.auth.roles import ADMIN, ROLES

ANONYMOUS = "anonymous"
# Declares the scheme in the OpenAPI document (the "Authorize" button in /docs); the header is read below.
_scheme = HTTPBearer(auto_error=False, description="a token from `draftdesk users add NAME --role ROLE`")


def _unauthorized(reason: str, invalid: bool = False) -> HTTPException:
    header = 'Bearer error="invalid_token"' if invalid else "Bearer"
    return HTTPException(401, reason, headers={"WWW-Authenticate": header})


def current_user(request: Request) -> CurrentUser:
    """The caller, from `Authorization: Bearer <token>` (or the anonymous role when configured)."""
    cached = getattr(request.state, "user", None)
    if cached is not None:
        return cached
    header = request.headers.get("authorization")
    if not header:
        role = request.app.state.settings.anonymous_role
        if not role:
            raise _unauthorized("authentication required: send 'Authorization: Bearer <token>' "
                                "(an admin creates one with `draftdesk users add NAME --role ROLE`)")
        user = CurrentUser(id=None, name=ANONYMOUS, role=role)
    else:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("the Authorization header must be 'Bearer <token>'", invalid=True)
        with request.app.state.runtime.sessions() as session:
            found = users.authenticate(session, token.strip())
            if found is None:
                raise _unauthorized("invalid or revoked token", invalid=True)
            user = CurrentUser(id=found.id, name=found.name, role=found.role)
    request.state.user = user
    return user


def require_roles(*roles: str):
    """A dependency that returns the current user when their role is one of `roles`, else 401/403."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"require_roles needs roles from {ROLES}; got {roles}")
    allowed = tuple(roles)

    def dependency(request: Request,
                   _credentials: HTTPAuthorizationCredentials | None = Security(_scheme)) -> CurrentUser:
        user = current_user(request)
        if user.role not in allowed:
            route = request.scope.get("route")
            what = f"{request.method} {getattr(route, 'path', request.url.path)}"
            raise HTTPException(403, f"role {user.role!r} may not use {what}; allowed roles: {', '.join(allowed)}")
        return user

    return dependency


# --- users (admins) -----------------------------------------------------------

router = APIRouter(prefix="/v1/users", tags=["users"])


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    role: str = Field(description=" | ".join(ROLES))


class UserOut(BaseModel):
    name: str
    role: str
    token_prefix: str
    active: bool
    created_at: str | None
    created_by: str
    revoked_at: str | None


class NewUserOut(UserOut):
    token: str = Field(description="shown once: store it now, only its hash is kept")


@router.get("", response_model=list[UserOut], summary="List users (admin)")
def list_users(request: Request, user: CurrentUser = Depends(require_roles(ADMIN))) -> list[UserOut]:
    with request.app.state.runtime.sessions() as session:
        return [UserOut(**users.user_summary(u)) for u in users.list_users(session)]


@router.post("", response_model=NewUserOut, status_code=201, summary="Add a user; the token is shown once (admin)")
def add_user(body: UserIn, request: Request, user: CurrentUser = Depends(require_roles(ADMIN))) -> NewUserOut:
    with request.app.state.runtime.sessions() as session:
        try:
            created = users.add_user(session, body.name, body.role, actor=user)
        except users.UserError as exc:
            raise HTTPException(409 if isinstance(exc, users.UserConflict) else 422, str(exc)) from exc
        return NewUserOut(**users.user_summary(created.user), token=created.token)


@router.post("/{name}/revoke", response_model=UserOut, summary="Revoke a user's token (admin)")
def revoke_user(name: str, request: Request, user: CurrentUser = Depends(require_roles(ADMIN))) -> UserOut:
    with request.app.state.runtime.sessions() as session:
        try:
            revoked = users.revoke_user(session, name, actor=user, keep_an_admin=True)
        except LookupError as exc:
            raise HTTPException(404, str(exc.args[0])) from exc
        except users.UserError as exc:
            raise HTTPException(409, str(exc)) from exc
        return UserOut(**users.user_summary(revoked))
