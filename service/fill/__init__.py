"""Fill stage: choose a template and fill its placeholders (offline drafter or LLM)."""
