"""indexes on foreign keys that deletes check

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 19:22:30.268766
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('encompass_alert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_encompass_alert_child_link_id'), ['child_link_id'], unique=False)

    with op.batch_alter_table('field_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_field_change_batch_id'), ['batch_id'], unique=False)

    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_first_batch', ['first_batch_id'], unique=False)
        batch_op.create_index('ix_notification_last_batch', ['last_batch_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_last_batch')
        batch_op.drop_index('ix_notification_first_batch')

    with op.batch_alter_table('field_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_field_change_batch_id'))

    with op.batch_alter_table('encompass_alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_encompass_alert_child_link_id'))

