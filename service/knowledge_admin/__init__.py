"""Knowledge editing: FAQ entries and templates (validated, versioned, audited, live at once),
JSONL import/export, and similar-question (相似问) proposals."""
