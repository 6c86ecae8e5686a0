"""Shared fixtures: a built runtime on a private SQLite database, and PostgreSQL when reachable."""
from __future__ import annotations

import os
import shutil
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from service.config import PROJECT_ROOT, Settings

POSTGRES_URL = os.environ.get("DRAFTDESK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_problem() -> str | None:
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {type(exc).__name__}"


@pytest.fixture(scope="session")
def index_cache(tmp_path_factory) -> Path:
    """One index/embedding cache for the session, so each runtime build after the first is quick.

    DRAFTDESK_TEST_INDEX_SEED=var/index starts it from a copy of a built index (and its embedding
    cache) to skip the first embedding pass; saved indexes are checked against the knowledge anyway.
    """
    path = tmp_path_factory.mktemp("index")
    seed = os.environ.get("DRAFTDESK_TEST_INDEX_SEED")
    if seed and Path(seed).is_dir():
        shutil.copytree(seed, path, dirs_exist_ok=True)
    return path


@pytest.fixture(scope="session")
def postgres_available() -> None:
    problem = _postgres_problem()
    if problem:
        pytest.skip(problem)


@contextmanager
def postgres_schema():
    """A throwaway schema in the test database, dropped afterwards; yields its URL."""
    schema = f"dd_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def postgres_schema_url(postgres_available):
    """A throwaway schema in the test database for one test, dropped afterwards."""
    with postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'draftdesk.db'}"
    return request.getfixturevalue("postgres_schema_url")


def module_database_url(request, stack: ExitStack, tmp_path_factory, name: str) -> str:
    """The database of a module-scoped fixture parametrized by backend ("sqlite" or "postgresql"):
    a new SQLite file, or a throwaway PostgreSQL schema dropped when `stack` closes (skipped when
    PostgreSQL is not reachable)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp(name) / f'{name}.db'}"
    request.getfixturevalue("postgres_available")
    return stack.enter_context(postgres_schema())


def make_settings(database_url: str, index_dir: Path, **overrides) -> Settings:
    return Settings(database_url=database_url, index_dir=index_dir, knowledge_dir=PROJECT_ROOT / "knowledge",
                    llm_base_url="", llm_model="", **overrides)


@pytest.fixture(scope="session")
def shared_runtime(tmp_path_factory, index_cache):
    """A runtime on the real offline providers (e5, FAISS), built once for the read-mostly tests."""
    from service.runtime import build_runtime

    db = tmp_path_factory.mktemp("db") / "draftdesk.db"
    runtime = build_runtime(make_settings(f"sqlite:///{db}", index_cache))
    yield runtime
    runtime.engine.dispose()


# --- users and tokens ---------------------------------------------------------------

def add_role_users(runtime, prefix: str = "t") -> dict[str, str]:
    """One new user per role in the runtime's database: {role: bearer token}."""
    from service.auth.roles import ROLES
    from service.auth.service import add_user

    tokens = {}
    with runtime.sessions() as session:
        for role in ROLES:
            tokens[role] = add_user(session, f"{prefix}-{role}-{uuid.uuid4().hex[:8]}", role, actor="tests").token
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def shared_tokens(shared_runtime) -> dict[str, str]:
    """{role: token} of users in the shared runtime's database."""
    return add_role_users(shared_runtime, "shared")


def private_index_dir(shared_runtime, index_cache: Path, target: Path) -> Path:
    """A copy of the session's built index, for a runtime that changes knowledge (and saves its index)."""
    assert shared_runtime.pipeline.retriever.ready  # the cache holds a complete index by now
    shutil.copytree(index_cache, target, dirs_exist_ok=True)
    return target
