"""indexes for an agency's action lists

An agency representative's My actions page, with 1,000,000 actions (bench/actions_bench.py):

* ``ix_action_agency_case``: the scope filter of the case context (``case_id IN (SELECT case_id FROM action WHERE
  agency_id = ?)``) is materialised by SQLite as a list of the agency's case ids; without this index it reads every
  one of the agency's action rows (0.28 s per query at 188,000 actions, three queries when an action is chosen);
  with it, an index-only scan (0.035 s).
* ``ix_action_agency_completed``: the completed actions, most recently completed first, are read in index order
  and stop at the page's limit, instead of sorting all of the agency's closed actions (SQLite 0.59 s, PostgreSQL
  0.24 s with an external sort at 186,000 closed actions; growing every year).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 21:45:00
"""
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('action', schema=None) as batch_op:
        batch_op.create_index('ix_action_agency_case', ['agency_id', 'case_id'], unique=False)
        batch_op.create_index('ix_action_agency_completed', ['agency_id', 'completed_at_utc', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('action', schema=None) as batch_op:
        batch_op.drop_index('ix_action_agency_completed')
        batch_op.drop_index('ix_action_agency_case')
