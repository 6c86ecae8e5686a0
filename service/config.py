"""Settings from environment variables prefixed DRAFTDESK_ (see README)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.auth.roles import ROLES

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRAFTDESK_", env_file=".env", extra="ignore")

    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'draftdesk.db'}"
    knowledge_dir: Path = PROJECT_ROOT / "knowledge"
    prompts_dir: Path = PROJECT_ROOT / "prompts"
    index_dir: Path = PROJECT_ROOT / "var" / "index"

    # Providers, chosen by name.
    embedder: str = "e5"  # e5 | sentence-transformers | openai | hashing (tests only)
    embedder_model: str = ""  # model name or directory for sentence-transformers / openai
    embedder_device: str = "cpu"
    embedder_batch_size: int = 32
    retrieval_mode: str = "hybrid"  # dense | lexical | hybrid
    approximate_index_above: int = 50_000  # flat inner product up to this many vectors
    # The openai embedder's endpoint when it is not the LLM's (e.g. a chat model without
    # an embeddings API); empty means use llm_base_url / llm_api_key.
    embedder_base_url: str = ""
    embedder_api_key: str = ""

    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: str = ""
    llm_timeout_seconds: float = 8.0
    llm_max_retries: int = 2
    # One extra LLM call per draft to reorder the top FAQ hits (needs an LLM configured).
    llm_rerank: bool = False

    host: str = "127.0.0.1"
    port: int = 8000

    # Requests without a bearer token act as this role ("" = refused with 401). For a local
    # quick start only (`make run` sets it to agent); never set it on a shared server.
    anonymous_role: str = ""

    @field_validator("anonymous_role")
    @classmethod
    def _anonymous_role(cls, value: str) -> str:
        value = value.strip()
        if value and value not in ROLES:
            raise ValueError(f"DRAFTDESK_ANONYMOUS_ROLE must be empty or one of {', '.join(ROLES)}; got {value!r}")
        return value

    @property
    def policy_path(self) -> Path:
        return self.knowledge_dir / "policy.yaml"

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
