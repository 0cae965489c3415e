"""Attachments encrypted: the lists of files a message or a feedback carries (file names
as the sender gave them, the place a beneficiary shared) and the documents' file names.
An empty list stays ``[]`` in clear (``storage.columns.EncryptedList``).

As 0011: run through ``tawasul db upgrade``, which knows ``privacy.key``.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

import json
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LISTS = (("message", "media"), ("feedback", "attachments"), ("feedback_event", "attachments"))


def _rewrite(table: str, column: str, change: Callable[[Any, str], str]) -> None:
    """Pass every value of ``column`` but NULL and ``[]`` through ``change``."""
    if context.is_offline_mode():
        return
    bind = op.get_bind()
    keyring = getattr(bind.dialect, "tawasul_keyring", None)
    query = sa.text(f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")
    rows = [(i, v if isinstance(v, str) else json.dumps(v)) for i, v in bind.execute(query)]
    rows = [(i, v) for i, v in rows if v.strip() != "[]"]
    if rows and keyring is None:
        raise RuntimeError(
            "personal data must be encrypted with privacy.key: run `tawasul db upgrade`"
        )
    update = sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id")
    for row_id, value in rows:
        bind.execute(update, {"value": change(keyring, value), "id": row_id})


def _encrypt(keys: Any, value: str) -> str:
    return value if value.startswith("tw1:") else str(keys.encrypt(value))


def upgrade() -> None:
    for table, column in _LISTS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column, type_=sa.Text(), existing_type=sa.JSON(), postgresql_using=f"{column}::text"
            )
        _rewrite(table, column, _encrypt)
    with op.batch_alter_table("document") as batch:
        batch.alter_column("filename", type_=sa.Text(), existing_type=sa.String())
    _rewrite("document", "filename", _encrypt)


def downgrade() -> None:
    _rewrite("document", "filename", lambda keys, value: str(keys.decrypt(value)))
    with op.batch_alter_table("document") as batch:
        batch.alter_column("filename", type_=sa.String(), existing_type=sa.Text())
    for table, column in _LISTS:
        _rewrite(table, column, lambda keys, value: str(keys.decrypt(value)))
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column, type_=sa.JSON(), existing_type=sa.Text(), postgresql_using=f"{column}::json"
            )
