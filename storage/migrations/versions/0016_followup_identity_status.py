"""A follow-up found by its identity and status together: cancelling one person's
pending prompts (a rating) went through every pending follow-up by the status index.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_followup_identity_id_status", "followup", ["identity_id", "status"])
    op.drop_index("ix_followup_identity_id", table_name="followup")


def downgrade() -> None:
    op.create_index("ix_followup_identity_id", "followup", ["identity_id"])
    op.drop_index("ix_followup_identity_id_status", table_name="followup")
