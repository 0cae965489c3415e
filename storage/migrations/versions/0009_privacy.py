"""Privacy: the consent to the privacy notice kept with each request.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("support_request") as batch:
        batch.add_column(sa.Column("consent", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("support_request") as batch:
        batch.drop_column("consent")
