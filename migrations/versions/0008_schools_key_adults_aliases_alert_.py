"""schools key adults aliases alert resolution

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 21:17:57.148554
"""
import datetime

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('school',
    sa.Column('urn', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('name_key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('la_name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('type_name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('is_open', sa.Boolean(), nullable=False),
    sa.Column('phase', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
    sa.Column('low_age', sa.Integer(), nullable=True),
    sa.Column('high_age', sa.Integer(), nullable=True),
    sa.Column('postcode', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=True),
    sa.Column('town', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('updated_at_utc', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('urn')
    )
    with op.batch_alter_table('school', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_school_la_name'), ['la_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_school_name_key'), ['name_key'], unique=False)

    op.create_table('key_adult',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('school_urn', sa.String(length=12), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('review_date', sa.Date(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at_utc', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['school_urn'], ['school.urn'], name='fk_key_adult_school'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('key_adult', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_key_adult_school_urn'), ['school_urn'], unique=False)

    op.create_table('school_alias',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name_key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('school_urn', sa.String(length=12), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at_utc', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['school_urn'], ['school.urn'], name='fk_school_alias_school'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name_key')
    )
    # The council's elective home education officer: alerts for home-educated children are routed to this setting.
    school = sa.table('school', sa.column('urn', sa.String), sa.column('name', sa.String),
                      sa.column('name_key', sa.String), sa.column('type_name', sa.String),
                      sa.column('status', sa.String), sa.column('is_open', sa.Boolean),
                      sa.column('updated_at_utc', sa.DateTime))
    op.bulk_insert(school, [{'urn': 'EHE', 'name': 'Elective home education officer',
                             'name_key': 'elective home education', 'type_name': 'Elective home education',
                             'status': 'Open', 'is_open': True, 'updated_at_utc': datetime.datetime(2026, 11, 22)}])
    with op.batch_alter_table('encompass_alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column('school_typed', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
        batch_op.add_column(sa.Column('resolution', sa.String(length=20), nullable=False, server_default='resolved'))
        batch_op.add_column(sa.Column('candidates', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('incident_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('escalated_at_utc', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_alert_resolution', ['resolution'], unique=False)
        batch_op.create_index('ix_alert_status_due', ['status', 'due_at'], unique=False)
        batch_op.create_unique_constraint('uq_alert_child_link', ['child_link_id'])



def downgrade() -> None:
    with op.batch_alter_table('encompass_alert', schema=None) as batch_op:
        batch_op.drop_constraint('uq_alert_child_link', type_='unique')
        batch_op.drop_index('ix_alert_status_due')
        batch_op.drop_index('ix_alert_resolution')
        batch_op.drop_column('escalated_at_utc')
        batch_op.drop_column('incident_at')
        batch_op.drop_column('candidates')
        batch_op.drop_column('resolution')
        batch_op.drop_column('school_typed')

    op.drop_table('school_alias')
    with op.batch_alter_table('key_adult', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_key_adult_school_urn'))

    op.drop_table('key_adult')
    with op.batch_alter_table('school', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_school_name_key'))
        batch_op.drop_index(batch_op.f('ix_school_la_name'))

    op.drop_table('school')
