"""Personal data as a whole: which columns are encrypted, and re-encrypting them all."""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import delete, select, text
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import SQLModel, col

from storage.db import Database
from storage.models import (
    Beneficiary,
    Conversation,
    Message,
    Note,
    PrivacyKey,
    StatusChange,
    SupportRequest,
)

# Every encrypted column, by table (storage.columns.EncryptedText / EncryptedJSON).
ENCRYPTED: Final[tuple[tuple[type[SQLModel], tuple[str, ...]], ...]] = (
    (Beneficiary, ("national_id", "full_name", "mobile")),
    (SupportRequest, ("answers",)),
    (Conversation, ("data",)),
    (Message, ("text",)),
    (Note, ("text",)),
    (StatusChange, ("note",)),
)


def _key_column(model: type[SQLModel]) -> Any:
    return next(iter(model.__table__.primary_key.columns))  # type: ignore[attr-defined]


async def reencrypt(database: Database, *, batch: int = 500) -> int:
    """Write every encrypted value not yet under the current key again under it (the
    lookup hashes follow), in short transactions, so a running server goes on; then
    forget the other keys' check values. Returns how many rows were rewritten."""
    keyring = database.keyring
    current = f"tw1:{keyring.current_id}:%"
    rewritten = 0
    for model, columns in ENCRYPTED:
        table = model.__tablename__
        key = _key_column(model)
        stale = " OR ".join(f"({c} IS NOT NULL AND {c} NOT LIKE :current)" for c in columns)
        async with database.session() as session:
            found = await session.execute(
                text(f"SELECT {key.name} FROM {table} WHERE {stale}"),
                {"current": current},
            )
            ids = [row[0] for row in found]
        for start in range(0, len(ids), batch):
            async with database.session() as session, session.begin():
                rows = await session.scalars(
                    select(model).where(key.in_(ids[start : start + batch]))
                )
                for row in rows:
                    for column in columns:
                        flag_modified(row, column)
                    rewritten += 1
    async with database.session() as session, session.begin():
        await session.execute(
            delete(PrivacyKey).where(col(PrivacyKey.key_id) != keyring.current_id)
        )
    return rewritten
