"""Police domestic abuse notifications: models, import, streams, people (and, later, Operation Encompass)."""
