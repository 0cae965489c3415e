"""Storage: SQLModel tables, repositories and Alembic migrations."""
