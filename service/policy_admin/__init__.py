"""Policy editing (admins): the business policy as versions in the database, validated, audited, live at once."""
