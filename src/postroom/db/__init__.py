"""Records: SQLAlchemy Core tables, the engine for SQLite and PostgreSQL, and migrations."""
