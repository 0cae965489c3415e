"""The initial schema: beneficiaries, identities, conversations, messages, requests.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "beneficiary",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("national_id", sa.String(), nullable=True),
        sa.Column("full_name", sa.String(), nullable=False),
        sa.Column("mobile", sa.String(), nullable=False),
        sa.Column("city", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_beneficiary"),
        sa.UniqueConstraint("national_id", name="uq_beneficiary_national_id"),
    )
    op.create_table(
        "channel_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("beneficiary_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("unreachable", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiary.id"],
            name="fk_channel_identity_beneficiary_id_beneficiary",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_channel_identity"),
        sa.UniqueConstraint("channel", "user_id", name="uq_channel_identity_channel_user_id"),
    )
    op.create_index(
        "ix_channel_identity_beneficiary_id", "channel_identity", ["beneficiary_id"], unique=False
    )

    op.create_table(
        "conversation",
        sa.Column("identity_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("flow", sa.String(), nullable=False),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["channel_identity.id"],
            name="fk_conversation_identity_id_channel_identity",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("identity_id", name="pk_conversation"),
    )
    op.create_table(
        "handoff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["channel_identity.id"], name="fk_handoff_identity_id_channel_identity"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_handoff"),
    )
    op.create_index("ix_handoff_identity_id", "handoff", ["identity_id"], unique=False)
    op.create_index(
        "ix_handoff_one_open_per_identity",
        "handoff",
        ["identity_id"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )

    op.create_table(
        "support_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(), nullable=True),
        sa.Column("beneficiary_id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("need", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("decision_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_channel", sa.String(), nullable=False),
        sa.Column("signed_message_id", sa.String(), nullable=True),
        sa.Column("linked_existing", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiary.id"],
            name="fk_support_request_beneficiary_id_beneficiary",
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["channel_identity.id"],
            name="fk_support_request_identity_id_channel_identity",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_support_request"),
        sa.UniqueConstraint("reference", name="uq_support_request_reference"),
    )
    op.create_index(
        "ix_support_request_beneficiary_id", "support_request", ["beneficiary_id"], unique=False
    )
    op.create_index(
        "ix_support_request_identity_id", "support_request", ["identity_id"], unique=False
    )
    op.create_index(
        "ix_support_request_status_decision_due_at",
        "support_request",
        ["status", "decision_due_at"],
        unique=False,
    )

    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("direction", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("platform_message_id", sa.String(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("payload", sa.String(), nullable=True),
        sa.Column("media", sa.JSON(), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("inline", sa.Boolean(), nullable=False),
        sa.Column("template", sa.JSON(), nullable=True),
        sa.Column("language", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["channel_identity.id"], name="fk_message_identity_id_channel_identity"
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["support_request.id"], name="fk_message_request_id_support_request"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_message"),
        sa.UniqueConstraint(
            "channel", "platform_message_id", name="uq_message_channel_platform_message_id"
        ),
    )
    op.create_index("ix_message_identity_id_id", "message", ["identity_id", "id"], unique=False)
    op.create_index("ix_message_request_id", "message", ["request_id"], unique=False)
    op.create_index("ix_message_status_id", "message", ["status", "id"], unique=False)

    op.create_table(
        "note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"], ["support_request.id"], name="fk_note_request_id_support_request"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_note"),
    )
    op.create_index("ix_note_request_id", "note", ["request_id"], unique=False)

    op.create_table(
        "rating",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("beneficiary_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("context", sa.String(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("score >= 1 AND score <= 5", name="ck_rating_score_range"),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"], ["beneficiary.id"], name="fk_rating_beneficiary_id_beneficiary"
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["channel_identity.id"], name="fk_rating_identity_id_channel_identity"
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["support_request.id"], name="fk_rating_request_id_support_request"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_rating"),
    )
    op.create_index("ix_rating_identity_id", "rating", ["identity_id"], unique=False)
    op.create_index("ix_rating_request_id", "rating", ["request_id"], unique=False)

    op.create_table(
        "status_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(), nullable=True),
        sa.Column("to_status", sa.String(), nullable=False),
        sa.Column("by", sa.String(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["support_request.id"],
            name="fk_status_change_request_id_support_request",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_status_change"),
    )
    op.create_index("ix_status_change_request_id", "status_change", ["request_id"], unique=False)

    op.create_table(
        "document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(), nullable=False),
        sa.Column("filename", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name="fk_document_message_id_message"
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["support_request.id"], name="fk_document_request_id_support_request"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_document"),
    )
    op.create_index("ix_document_request_id", "document", ["request_id"], unique=False)


def downgrade() -> None:
    op.drop_table("document")
    op.drop_table("status_change")
    op.drop_table("rating")
    op.drop_table("note")
    op.drop_table("message")
    op.drop_table("support_request")
    op.drop_table("handoff")
    op.drop_table("conversation")
    op.drop_table("channel_identity")
    op.drop_table("beneficiary")
