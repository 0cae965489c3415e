"""The knowledge base: entries, its revision counter and the questions it could not answer.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "knowledge_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("question", sa.String(), nullable=False),
        sa.Column("question_key", sa.String(), nullable=False),
        sa.Column("answer", sa.String(), nullable=False),
        sa.Column("alternatives", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(), nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_entry")),
        sa.UniqueConstraint("question_key", name=op.f("uq_knowledge_entry_question_key")),
    )
    op.create_table(
        "knowledge_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_revision")),
    )
    op.create_table(
        "knowledge_unanswered",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("question_key", sa.String(), nullable=False),
        sa.Column("question", sa.String(), nullable=False),
        sa.Column("language", sa.String(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_unanswered")),
        sa.UniqueConstraint("question_key", name=op.f("uq_knowledge_unanswered_question_key")),
    )
    with op.batch_alter_table("knowledge_unanswered", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_knowledge_unanswered_last_asked_at"), ["last_asked_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("knowledge_unanswered", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_knowledge_unanswered_last_asked_at"))
    op.drop_table("knowledge_unanswered")
    op.drop_table("knowledge_revision")
    op.drop_table("knowledge_entry")
