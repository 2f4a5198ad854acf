"""meeting record attendance decisions action history

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 20:45:47.621432
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('meeting_amendment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('entity', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('by_id', sa.Integer(), nullable=True),
    sa.Column('at_utc', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], name='fk_amendment_meeting', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('meeting_amendment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meeting_amendment_meeting_id'), ['meeting_id'], unique=False)

    op.create_table('meeting_attendee',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('attendance', sa.String(length=20), nullable=False),
    sa.Column('confidentiality_accepted', sa.Boolean(), nullable=False),
    sa.Column('accepted_at_utc', sa.DateTime(), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at_utc', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agency.id'], ),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], name='fk_attendee_meeting', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('meeting_attendee', schema=None) as batch_op:
        batch_op.create_index('ix_meeting_attendee_meeting', ['meeting_id', 'agency_id'], unique=False)

    op.create_table('case_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('agenda_item_id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('police_risk', sa.String(length=20), nullable=False),
    sa.Column('confirmed_risk', sa.String(length=20), nullable=True),
    sa.Column('risk_rationale', sa.Text(), nullable=True),
    sa.Column('seconds_spent', sa.Integer(), nullable=False),
    sa.Column('discussed', sa.Boolean(), nullable=False),
    sa.Column('amended', sa.Boolean(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at_utc', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['agenda_item_id'], ['agenda_item.id'], name='fk_case_record_item', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], name='fk_case_record_meeting', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['notification_id'], ['notification.id'], name='fk_case_record_notification', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('agenda_item_id', name='uq_case_record_item')
    )
    with op.batch_alter_table('case_record', schema=None) as batch_op:
        batch_op.create_index('ix_case_record_meeting', ['meeting_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_record_notification_id'), ['notification_id'], unique=False)

    op.create_table('agency_share',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at_utc', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agency.id'], ),
    sa.ForeignKeyConstraint(['case_id'], ['case_record.id'], name='fk_agency_share_case', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'agency_id', name='uq_agency_share')
    )
    op.create_table('case_decision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('decision', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case_record.id'], name='fk_case_decision_case', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'decision', name='uq_case_decision')
    )
    with op.batch_alter_table('case_decision', schema=None) as batch_op:
        batch_op.create_index('ix_case_decision_decision', ['decision'], unique=False)

    op.create_table('action_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('action_id', sa.Integer(), nullable=False),
    sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('old_value', sa.Text(), nullable=True),
    sa.Column('new_value', sa.Text(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_at_utc', sa.DateTime(), nullable=False),
    sa.Column('amendment', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['action_id'], ['action.id'], name='fk_action_change_action', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['changed_by_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('action_change', schema=None) as batch_op:
        batch_op.create_index('ix_action_change_action', ['action_id', 'id'], unique=False)

    with op.batch_alter_table('action', schema=None) as batch_op:
        batch_op.add_column(sa.Column('meeting_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('case_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('amendment', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f('ix_action_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_action_meeting_id'), ['meeting_id'], unique=False)
        batch_op.create_foreign_key('fk_action_case', 'case_record', ['case_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key('fk_action_meeting', 'meeting', ['meeting_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chair', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('opened_at_utc', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('opened_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('closed_at_utc', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('closed_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('current_item_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('current_since_utc', sa.DateTime(), nullable=True))
        batch_op.create_foreign_key('fk_meeting_closed_by', 'user', ['closed_by_id'], ['id'])
        batch_op.create_foreign_key('fk_meeting_opened_by', 'user', ['opened_by_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.drop_constraint('fk_meeting_opened_by', type_='foreignkey')
        batch_op.drop_constraint('fk_meeting_closed_by', type_='foreignkey')
        batch_op.drop_column('current_since_utc')
        batch_op.drop_column('current_item_id')
        batch_op.drop_column('closed_by_id')
        batch_op.drop_column('closed_at_utc')
        batch_op.drop_column('opened_by_id')
        batch_op.drop_column('opened_at_utc')
        batch_op.drop_column('chair')

    with op.batch_alter_table('action', schema=None) as batch_op:
        batch_op.drop_constraint('fk_action_meeting', type_='foreignkey')
        batch_op.drop_constraint('fk_action_case', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_action_meeting_id'))
        batch_op.drop_index(batch_op.f('ix_action_case_id'))
        batch_op.drop_column('amendment')
        batch_op.drop_column('case_id')
        batch_op.drop_column('meeting_id')

    with op.batch_alter_table('action_change', schema=None) as batch_op:
        batch_op.drop_index('ix_action_change_action')

    op.drop_table('action_change')
    with op.batch_alter_table('case_decision', schema=None) as batch_op:
        batch_op.drop_index('ix_case_decision_decision')

    op.drop_table('case_decision')
    op.drop_table('agency_share')
    with op.batch_alter_table('case_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_record_notification_id'))
        batch_op.drop_index('ix_case_record_meeting')

    op.drop_table('case_record')
    with op.batch_alter_table('meeting_attendee', schema=None) as batch_op:
        batch_op.drop_index('ix_meeting_attendee_meeting')

    op.drop_table('meeting_attendee')
    with op.batch_alter_table('meeting_amendment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meeting_amendment_meeting_id'))

    op.drop_table('meeting_amendment')
