"""Supervisor review queue, the draft state machine, outcomes, follow-ups and draft statistics."""
