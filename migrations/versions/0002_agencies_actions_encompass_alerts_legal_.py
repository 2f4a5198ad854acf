"""agencies, actions, encompass alerts, legal hold

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 18:48:36.898072
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agency',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('action',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at_utc', sa.DateTime(), nullable=False),
    sa.Column('updated_at_utc', sa.DateTime(), nullable=False),
    sa.Column('completed_at_utc', sa.DateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agency.id'], ),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['notification_id'], ['notification.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('action', schema=None) as batch_op:
        batch_op.create_index('ix_action_agency_status_due', ['agency_id', 'status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_action_notification_id'), ['notification_id'], unique=False)

    op.create_table('encompass_alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('child_link_id', sa.Integer(), nullable=True),
    sa.Column('school_urn', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=True),
    sa.Column('due_at', sa.DateTime(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('disclosed', sa.Text(), nullable=True),
    sa.Column('notified_at_utc', sa.DateTime(), nullable=True),
    sa.Column('acknowledged_at_utc', sa.DateTime(), nullable=True),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at_utc', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['acknowledged_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['child_link_id'], ['notification_person.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['notification_id'], ['notification.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('encompass_alert', schema=None) as batch_op:
        batch_op.create_index('ix_alert_school_status', ['school_urn', 'status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_encompass_alert_notification_id'), ['notification_id'], unique=False)

    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('legal_hold', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agency_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_user_agency_id_agency', 'agency', ['agency_id'], ['id'])
        batch_op.drop_column('agency')

    # The partner agencies of a typical daily meeting; coordinators rename or add to them.
    agency = sa.table("agency", sa.column("name", sa.String), sa.column("kind", sa.String), sa.column("active", sa.Boolean))
    op.bulk_insert(agency, [
        {"name": name, "kind": kind, "active": True} for name, kind in [
            ("Police", "police"), ("Children's Social Care", "csc"), ("Adult Social Care", "asc"),
            ("Health", "health"), ("Education", "education"), ("Probation", "probation"), ("Housing", "housing"),
            ("IDVA", "idva")]
    ])


def downgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agency', sa.VARCHAR(length=80), nullable=True))
        batch_op.drop_constraint('fk_user_agency_id_agency', type_='foreignkey')
        batch_op.drop_column('agency_id')

    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_column('legal_hold')

    with op.batch_alter_table('encompass_alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_encompass_alert_notification_id'))
        batch_op.drop_index('ix_alert_school_status')

    op.drop_table('encompass_alert')
    with op.batch_alter_table('action', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_action_notification_id'))
        batch_op.drop_index('ix_action_agency_status_due')

    op.drop_table('action')
    op.drop_table('agency')
