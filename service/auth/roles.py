"""The four roles. Each may do exactly its job (see README, "Access and roles")."""
from __future__ import annotations

AGENT = "agent"  # requests drafts, sends them, records outcomes; masked data only
SUPERVISOR = "supervisor"  # reviews flagged drafts; may read the raw message of a draft under review
EDITOR = "editor"  # manages knowledge (FAQ, templates); never sees customer messages
ADMIN = "admin"  # manages users, reads the audit trail; the manager's (second) approval

ROLES: tuple[str, ...] = (AGENT, SUPERVISOR, EDITOR, ADMIN)

# Who works with drafts (and therefore with masked customer messages).
DRAFT_ROLES: tuple[str, ...] = (AGENT, SUPERVISOR, ADMIN)
# Who reviews flagged drafts.
REVIEW_ROLES: tuple[str, ...] = (SUPERVISOR, ADMIN)
