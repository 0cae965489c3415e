"""Staff: staff members, who claimed and closed a handoff, and the staff group's posts.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The partial index that keeps one open handoff per identity. SQLite rebuilds the
# handoff table to add foreign keys, and a rebuild may not carry an index's WHERE
# clause over: it is dropped before and created again after, the same on both backends.
_ONE_OPEN = "ix_handoff_one_open_per_identity"


def _create_one_open_index() -> None:
    op.create_index(
        _ONE_OPEN,
        "handoff",
        ["identity_id"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=True),
        sa.Column("password_hash", sa.String(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        # op.f: the name is final; without it the naming convention prefixes it again.
        sa.CheckConstraint(
            "role IN ('agent', 'researcher', 'manager', 'admin')", name=op.f("ck_staff_role")
        ),
        sa.PrimaryKeyConstraint("id", name="pk_staff"),
        sa.UniqueConstraint("telegram_id", name="uq_staff_telegram_id"),
        sa.UniqueConstraint("username", name="uq_staff_username"),
    )

    op.drop_index(_ONE_OPEN, table_name="handoff")
    with op.batch_alter_table("handoff") as batch:
        batch.add_column(sa.Column("claimed_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("closed_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("request_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_handoff_claimed_by_staff", "staff", ["claimed_by"], ["id"])
        batch.create_foreign_key("fk_handoff_closed_by_staff", "staff", ["closed_by"], ["id"])
        batch.create_foreign_key(
            "fk_handoff_request_id_support_request", "support_request", ["request_id"], ["id"]
        )
    _create_one_open_index()

    op.create_table(
        "staff_post",
        sa.Column("platform_message_id", sa.String(), nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["handoff_id"], ["handoff.id"], name="fk_staff_post_handoff_id_handoff"
        ),
        sa.PrimaryKeyConstraint("platform_message_id", name="pk_staff_post"),
    )
    op.create_index("ix_staff_post_handoff_id", "staff_post", ["handoff_id"], unique=False)


def downgrade() -> None:
    op.drop_table("staff_post")
    op.drop_index(_ONE_OPEN, table_name="handoff")
    with op.batch_alter_table("handoff") as batch:
        batch.drop_constraint("fk_handoff_request_id_support_request", type_="foreignkey")
        batch.drop_constraint("fk_handoff_closed_by_staff", type_="foreignkey")
        batch.drop_constraint("fk_handoff_claimed_by_staff", type_="foreignkey")
        batch.drop_column("request_id")
        batch.drop_column("closed_by")
        batch.drop_column("claimed_at")
        batch.drop_column("claimed_by")
    _create_one_open_index()
    op.drop_table("staff")
