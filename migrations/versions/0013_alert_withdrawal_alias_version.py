"""alert withdrawal and re-routing; a version on remembered spellings

* ``encompass_alert``: ``withdrawn_at_utc`` / ``withdrawn_why`` (status "withdrawn": a later extract moved the child
  to another setting after the first was shown the alert, or no longer lists the child) and ``replaces_id`` (the
  new setting's alert names the withdrawn one, so the coordinator can tell the setting that saw it).
* ``school_alias.version``: re-pointing or forgetting a remembered spelling is checked against the version the
  coordinator saw, so a colleague's change made meanwhile is never silently overwritten or deleted.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23 03:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('encompass_alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column('withdrawn_at_utc', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('withdrawn_why', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('replaces_id', sa.Integer(), nullable=True))
    with op.batch_alter_table('school_alias', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))


def downgrade() -> None:
    with op.batch_alter_table('school_alias', schema=None) as batch_op:
        batch_op.drop_column('version')
    with op.batch_alter_table('encompass_alert', schema=None) as batch_op:
        batch_op.drop_column('replaces_id')
        batch_op.drop_column('withdrawn_why')
        batch_op.drop_column('withdrawn_at_utc')
