"""The unanswered questions of the knowledge base encrypted (a question may tell someone's
circumstances), and counted by the keyed hash of their folded wording instead of the
wording itself.

As 0011: run through ``tawasul db upgrade``, which knows ``privacy.key``. A downgrade
gives back the wording, but not its folding (``flows.knowledge``, not for a migration):
each question becomes its own key until it is asked again.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SELECT = sa.text("SELECT id, question_key, question FROM knowledge_unanswered")
_UPDATE = sa.text(
    "UPDATE knowledge_unanswered SET question_key = :key, question = :question WHERE id = :id"
)


def upgrade() -> None:
    with op.batch_alter_table("knowledge_unanswered") as batch:
        batch.alter_column("question", type_=sa.Text(), existing_type=sa.String())
    if context.is_offline_mode():
        return
    bind = op.get_bind()
    keyring = getattr(bind.dialect, "tawasul_keyring", None)
    rows = bind.execute(_SELECT).all()
    if keyring is None:
        if rows:
            raise RuntimeError(
                "personal data must be encrypted with privacy.key: run `tawasul db upgrade`"
            )
        return
    for row_id, key, question in rows:
        if str(question).startswith("tw1:"):
            continue  # written by this version already
        # The stored key is the folded wording: its hash is what the repository looks up.
        values = {"key": keyring.lookup_hash(key), "question": keyring.encrypt(question)}
        bind.execute(_UPDATE, {**values, "id": row_id})


def downgrade() -> None:
    if not context.is_offline_mode():
        bind = op.get_bind()
        keyring = getattr(bind.dialect, "tawasul_keyring", None)
        for row_id, _key, question in bind.execute(_SELECT).all():
            plain = keyring.decrypt(question) if keyring is not None else question
            bind.execute(_UPDATE, {"key": plain, "question": plain, "id": row_id})
    with op.batch_alter_table("knowledge_unanswered") as batch:
        batch.alter_column("question", type_=sa.String(), existing_type=sa.Text())
