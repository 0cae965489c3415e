"""Beneficiaries' free text beyond messages encrypted too: feedback (suggestions,
complaints, thanks) and its replies, rating comments.

As 0011: run through ``tawasul db upgrade``, which knows ``privacy.key``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENCRYPTED = (("feedback", "text"), ("feedback_event", "text"), ("rating", "comment"))


def _rewrite(change: Callable[[Any, str], str]) -> None:
    if context.is_offline_mode():
        return
    bind = op.get_bind()
    keyring = getattr(bind.dialect, "tawasul_keyring", None)
    for table, column in _ENCRYPTED:
        query = sa.text(f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")
        rows = bind.execute(query).all()
        if rows and keyring is None:
            raise RuntimeError(
                "personal data must be encrypted with privacy.key: run `tawasul db upgrade`"
            )
        update = sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id")
        for row_id, value in rows:
            bind.execute(update, {"value": change(keyring, str(value)), "id": row_id})


def upgrade() -> None:
    _rewrite(lambda keys, value: value if value.startswith("tw1:") else str(keys.encrypt(value)))


def downgrade() -> None:
    _rewrite(lambda keys, value: str(keys.decrypt(value)))
