"""indexes for the dashboard

The Dashboard for a year with 500,000 notifications, 1,000,000 actions and 300,000 alerts
(bench/dashboard_bench.py); each is a covering index for one range-by-date aggregate, so a year's rows are read
from the index alone instead of the whole table (or the table in another index's order):

* ``ix_action_created``: actions agreed in the range, per agency, by status, on time (due and completed times)
  and the median days to complete. Without it SQLite read all 1,000,000 actions through another index, in
  random order, three times (5.4 s under load).
* ``ix_alert_incident``: alerts by incident time with their deadline, notification, acknowledgement and
  resolution (a full scan of the alerts otherwise).
* ``ix_notification_dashboard``: notifications by incident time with stream, risk, victim, force and postcode:
  the per-day facts and the force / district counts without a table look-up per notification.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 22:20:00
"""
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('action', schema=None) as batch_op:
        batch_op.create_index('ix_action_created', ['created_at_utc', 'agency_id', 'status', 'due_at',
                                                    'completed_at_utc'], unique=False)
    with op.batch_alter_table('encompass_alert', schema=None) as batch_op:
        batch_op.create_index('ix_alert_incident', ['incident_at', 'due_at', 'notified_at_utc', 'acknowledged_at_utc',
                                                    'resolution'], unique=False)
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_dashboard', ['incident_at', 'stream', 'risk', 'victim_id', 'force',
                                                            'postcode'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_dashboard')
    with op.batch_alter_table('encompass_alert', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_incident')
    with op.batch_alter_table('action', schema=None) as batch_op:
        batch_op.drop_index('ix_action_created')
