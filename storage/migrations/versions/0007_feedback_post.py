"""Feedback posts: the staff group's posts about a feedback, so a reply to one answers it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback_post",
        sa.Column("platform_message_id", sa.String(), nullable=False),
        sa.Column("feedback_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["feedback_id"], ["feedback.id"], name=op.f("fk_feedback_post_feedback_id_feedback")
        ),
        sa.PrimaryKeyConstraint("platform_message_id", name=op.f("pk_feedback_post")),
    )
    with op.batch_alter_table("feedback_post", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_feedback_post_feedback_id"), ["feedback_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("feedback_post", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_post_feedback_id"))
    op.drop_table("feedback_post")
