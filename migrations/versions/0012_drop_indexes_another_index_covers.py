"""drop indexes that another index already covers

Each of these repeats the leading column(s) of another index, so every query that used it can use the other, and
each costs every import an index entry per row (bench/import_bench.py, 25,000 rows: about 70,000 entries):

* ``ix_notification_incident`` (incident_at): ``ix_notification_dashboard`` starts with incident_at.
* ``ix_encompass_alert_notification_id`` (notification_id): ``ix_alert_notification_child`` starts with it.
* ``ix_encompass_alert_child_link_id`` (child_link_id): the unique constraint ``uq_alert_child_link`` is an index
  on that same column.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 02:00:00
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_incident')
    with op.batch_alter_table('encompass_alert', schema=None) as batch_op:
        batch_op.drop_index('ix_encompass_alert_notification_id')
        batch_op.drop_index('ix_encompass_alert_child_link_id')


def downgrade() -> None:
    with op.batch_alter_table('encompass_alert', schema=None) as batch_op:
        batch_op.create_index('ix_encompass_alert_child_link_id', ['child_link_id'], unique=False)
        batch_op.create_index('ix_encompass_alert_notification_id', ['notification_id'], unique=False)
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_incident', ['incident_at'], unique=False)
