"""Personal data encrypted at rest: keyed hashes for lookups, existing rows encrypted.

The applicant's national ID, name and mobile, the requests' answers, the conversations'
state, message texts, staff notes and status notes become ciphertext under
``privacy.key`` (``storage.keyring``); the national ID and mobile get a keyed hash
beside them for lookups, and ``privacy_key`` keeps the check value of each key in use.

Encrypting needs the key: run through ``tawasul db upgrade`` (or any ``tawasul``
command), which knows it. Alembic's own command, without the key, upgrades a database
with no personal data in it yet and refuses one with some.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, primary key, columns): what is encrypted, as frozen history.
_ENCRYPTED = (
    ("beneficiary", "id", ("national_id", "full_name", "mobile")),
    ("support_request", "id", ("answers",)),
    ("conversation", "identity_id", ("data",)),
    ("message", "id", ("text",)),
    ("note", "id", ("text",)),
    ("status_change", "id", ("note",)),
)


def _keyring() -> Any:
    # The engine's keys (storage.columns.KEYRING_ATTRIBUTE), when run by tawasul.
    return getattr(op.get_bind().dialect, "tawasul_keyring", None)


def _rewrite(change: Callable[[Any, str], str], *, hashes: bool) -> None:
    """Pass every stored value of the encrypted columns through ``change``."""
    if context.is_offline_mode():
        return
    bind = op.get_bind()
    keyring = _keyring()
    for table, key, columns in _ENCRYPTED:
        selected = sa.text(f"SELECT {key}, {', '.join(columns)} FROM {table}")
        rows = bind.execute(selected).all()
        if not rows:
            continue
        if keyring is None:
            raise RuntimeError(
                "personal data must be encrypted with privacy.key: run `tawasul db upgrade`"
            )
        for row in rows:
            values = {
                column: None if row[n + 1] is None else change(keyring, str(row[n + 1]))
                for n, column in enumerate(columns)
            }
            if hashes and table == "beneficiary":
                for column in ("national_id", "mobile"):
                    plain = row[columns.index(column) + 1]
                    values[f"{column}_hash"] = keyring.lookup_hash(plain) if plain else None
            assignments = ", ".join(f"{column} = :{column}" for column in values)
            statement = sa.text(f"UPDATE {table} SET {assignments} WHERE {key} = :_key")
            bind.execute(statement, {**values, "_key": row[0]})


def upgrade() -> None:
    op.create_table(
        "privacy_key",
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("check_value", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_privacy_key"),
    )
    with op.batch_alter_table("beneficiary") as batch:
        batch.drop_constraint("uq_beneficiary_national_id", type_="unique")
        batch.add_column(sa.Column("national_id_hash", sa.String(), nullable=True))
        batch.add_column(sa.Column("mobile_hash", sa.String(), nullable=True))
        for column in ("national_id", "full_name", "mobile"):
            batch.alter_column(column, type_=sa.Text(), existing_type=sa.String())
        batch.create_unique_constraint("uq_beneficiary_national_id_hash", ["national_id_hash"])
        batch.create_index("ix_beneficiary_mobile_hash", ["mobile_hash"])
    for table, column in (("support_request", "answers"), ("conversation", "data")):
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column, type_=sa.Text(), existing_type=sa.JSON(), postgresql_using=f"{column}::text"
            )
    _rewrite(
        lambda keyring, value: value if value.startswith("tw1:") else keyring.encrypt(value),
        hashes=True,
    )


def downgrade() -> None:
    _rewrite(lambda keyring, value: keyring.decrypt(value), hashes=False)
    for table, column in (("support_request", "answers"), ("conversation", "data")):
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column, type_=sa.JSON(), existing_type=sa.Text(), postgresql_using=f"{column}::json"
            )
    with op.batch_alter_table("beneficiary") as batch:
        batch.drop_index("ix_beneficiary_mobile_hash")
        batch.drop_constraint("uq_beneficiary_national_id_hash", type_="unique")
        for column in ("national_id", "full_name", "mobile"):
            batch.alter_column(column, type_=sa.String(), existing_type=sa.Text())
        batch.drop_column("mobile_hash")
        batch.drop_column("national_id_hash")
        batch.create_unique_constraint("uq_beneficiary_national_id", ["national_id"])
    op.drop_table("privacy_key")
