"""The append-only audit trail: every review action, knowledge change, raw-data read and user change."""
