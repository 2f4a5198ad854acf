"""index for overdue actions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 20:29:52.283194
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('action', schema=None) as batch_op:
        batch_op.create_index('ix_action_status_due', ['status', 'due_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('action', schema=None) as batch_op:
        batch_op.drop_index('ix_action_status_due')

