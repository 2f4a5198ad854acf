"""alert child key

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 21:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('encompass_alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column('child_key', sa.String(length=255), nullable=True))
        batch_op.create_index('ix_alert_notification_child', ['notification_id', 'child_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('encompass_alert', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_notification_child')
        batch_op.drop_column('child_key')
