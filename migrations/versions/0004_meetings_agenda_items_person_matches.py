"""meetings, agenda items, person matches

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 19:23:22.306567
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('meeting',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_date', sa.Date(), nullable=False),
    sa.Column('window_start', sa.DateTime(), nullable=False),
    sa.Column('window_end', sa.DateTime(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('published_at_utc', sa.DateTime(), nullable=True),
    sa.Column('published_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at_utc', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['published_by_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('meeting_date')
    )
    op.create_table('person_match',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_a_id', sa.Integer(), nullable=False),
    sa.Column('person_b_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('why', sa.Text(), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at_utc', sa.DateTime(), nullable=True),
    sa.Column('created_at_utc', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['person_a_id'], ['person.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_b_id'], ['person.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('person_a_id', 'person_b_id', name='uq_person_match_pair')
    )
    with op.batch_alter_table('person_match', schema=None) as batch_op:
        batch_op.create_index('ix_person_match_b', ['person_b_id'], unique=False)

    op.create_table('agenda_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('section', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('reasons', sa.Text(), nullable=True),
    sa.Column('marac_flags', sa.Text(), nullable=True),
    sa.Column('prior_incidents_12m', sa.Integer(), nullable=False),
    sa.Column('added_by_id', sa.Integer(), nullable=True),
    sa.Column('added_reason', sa.Text(), nullable=True),
    sa.Column('removed', sa.Boolean(), nullable=False),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.Column('late_addition', sa.Boolean(), nullable=False),
    sa.Column('created_at_utc', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['added_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['notification_id'], ['notification.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('meeting_id', 'notification_id', name='uq_agenda_item')
    )
    with op.batch_alter_table('agenda_item', schema=None) as batch_op:
        batch_op.create_index('ix_agenda_item_meeting_position', ['meeting_id', 'section', 'position'], unique=False)
        batch_op.create_index(batch_op.f('ix_agenda_item_notification_id'), ['notification_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('agenda_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agenda_item_notification_id'))
        batch_op.drop_index('ix_agenda_item_meeting_position')

    op.drop_table('agenda_item')
    with op.batch_alter_table('person_match', schema=None) as batch_op:
        batch_op.drop_index('ix_person_match_b')

    op.drop_table('person_match')
    op.drop_table('meeting')
