"""Appointments: interviews with the social researcher and field visits.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "appointment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("branch", sa.String(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("place_no", sa.Integer(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("staff_username", sa.String(), nullable=True),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("language", sa.String(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "place_no IS NULL OR (place_no >= 0 AND place_no < capacity)",
            name=op.f("ck_appointment_place_within_capacity"),
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["channel_identity.id"],
            name=op.f("fk_appointment_identity_id_channel_identity"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["support_request.id"],
            name=op.f("fk_appointment_request_id_support_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment")),
        # A place of a slot is given once: the database refuses the second taker.
        sa.UniqueConstraint(
            "branch",
            "starts_at",
            "place_no",
            name=op.f("uq_appointment_branch_starts_at_place_no"),
        ),
        sa.UniqueConstraint("reference", name=op.f("uq_appointment_reference")),
    )
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appointment_starts_at"), ["starts_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_appointment_identity_id"), ["identity_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_appointment_request_id"), ["request_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appointment_request_id"))
        batch_op.drop_index(batch_op.f("ix_appointment_identity_id"))
        batch_op.drop_index(batch_op.f("ix_appointment_starts_at"))
    op.drop_table("appointment")
