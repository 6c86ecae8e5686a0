"""LLM drafter: one structured chat.completions call per draft, with the offline drafter as fallback."""
