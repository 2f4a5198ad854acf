"""indexes for possible matches

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 19:48:39.102362
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notification_person', schema=None) as batch_op:
        batch_op.create_index('ix_np_address', ['address'], unique=False)

    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.create_index('ix_person_dob', ['dob', 'surname', 'forename'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_index('ix_person_dob')

    with op.batch_alter_table('notification_person', schema=None) as batch_op:
        batch_op.drop_index('ix_np_address')

