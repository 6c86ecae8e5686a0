"""Who may do what: users, bearer tokens (hashed at rest) and the role check for the API."""
