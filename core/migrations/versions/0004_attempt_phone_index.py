"""index attempts by phone number (contact history across campaigns)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every hopper pass and every preview/next looks up recent contacts of the number; without this
    # index each lookup scanned the whole dial ledger (bench/api_load.py).
    with op.batch_alter_table("attempt", schema=None) as batch_op:
        batch_op.create_index("ix_attempt_phone", ["phone_e164", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("attempt", schema=None) as batch_op:
        batch_op.drop_index("ix_attempt_phone")
