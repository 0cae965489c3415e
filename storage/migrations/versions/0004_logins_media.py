"""Login attempt counters that survive a restart, and a record of every kept attachment.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_counter",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_counter")),
    )
    op.create_table(
        "stored_media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(), nullable=False),
        sa.Column("content_type", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["channel_identity.id"],
            name=op.f("fk_stored_media_identity_id_channel_identity"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_media")),
        sa.UniqueConstraint("reference", name=op.f("uq_stored_media_reference")),
    )
    with op.batch_alter_table("stored_media", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stored_media_identity_id_created_at", ["identity_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("stored_media", schema=None) as batch_op:
        batch_op.drop_index("ix_stored_media_identity_id_created_at")
    op.drop_table("stored_media")
    op.drop_table("login_counter")
