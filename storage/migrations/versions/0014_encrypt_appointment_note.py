"""Staff's note on an appointment (what a field visit found) encrypted, as the case
file's notes are.

As 0011: run through ``tawasul db upgrade``, which knows ``privacy.key``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rewrite(change: Callable[[Any, str], str]) -> None:
    if context.is_offline_mode():
        return
    bind = op.get_bind()
    keyring = getattr(bind.dialect, "tawasul_keyring", None)
    rows = bind.execute(sa.text("SELECT id, note FROM appointment WHERE note IS NOT NULL")).all()
    if rows and keyring is None:
        raise RuntimeError(
            "personal data must be encrypted with privacy.key: run `tawasul db upgrade`"
        )
    update = sa.text("UPDATE appointment SET note = :value WHERE id = :id")
    for row_id, value in rows:
        bind.execute(update, {"value": change(keyring, str(value)), "id": row_id})


def upgrade() -> None:
    _rewrite(lambda keys, value: value if value.startswith("tw1:") else str(keys.encrypt(value)))


def downgrade() -> None:
    _rewrite(lambda keys, value: str(keys.decrypt(value)))
