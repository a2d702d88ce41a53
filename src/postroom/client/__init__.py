"""`postroom upload`: a client of Postroom's own public REST API (an edge, like any integration)."""
