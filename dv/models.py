"""Notifications, people and imports: the data every later part of DA Daily (agenda, meeting, actions,
Encompass) hangs off.

Police times (incident, reported) are naive Europe/London wall-clock, stored as given; system times end in
``_utc``. See ``core.timeutil``.
"""
from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Optional

from sqlalchemy import Column, Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.timeutil import utcnow
from core.types import EnumText


# Enums are stored as plain strings (not database enum types) so adding a value never needs a type migration.
class Stream(str, Enum):
    crime = "crime"
    non_crime = "non_crime"


class Risk(str, Enum):
    high = "high"
    medium = "medium"
    standard = "standard"
    not_assessed = "not_assessed"


class PersonRole(str, Enum):
    victim = "victim"
    perpetrator = "perpetrator"
    child = "child"
    other = "other"


class ImportBatch(SQLModel, table=True):
    __tablename__ = "import_batch"

    id: Optional[int] = Field(default=None, primary_key=True)
    file_name: str = Field(max_length=255)
    sha256: str = Field(max_length=64, index=True)
    profile_name: str = Field(max_length=200)
    force: str = Field(max_length=120)
    encoding: Optional[str] = Field(default=None, max_length=20)  # csv: utf-8-sig / cp1252; xlsx: None
    imported_by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    imported_by: Optional[str] = Field(default=None, max_length=120)  # username, or "cli:<os user>"
    started_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
    finished_at_utc: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates_in_file: int = 0
    rejected: int = 0
    crime: int = 0
    non_crime: int = 0
    children: int = 0
    warnings: int = 0


class RowError(SQLModel, table=True):
    """A row that could not be imported (severity "error") or was imported with a caveat ("warning")."""

    __tablename__ = "row_error"

    id: Optional[int] = Field(default=None, primary_key=True)
    batch_id: int = Field(sa_column=Column(Integer, ForeignKey("import_batch.id", ondelete="CASCADE"), index=True))
    row: Optional[int] = None  # the spreadsheet row number as Excel shows it (1-based, header rows counted)
    column: Optional[str] = Field(default=None, max_length=200)  # the file's header
    police_ref: Optional[str] = Field(default=None, max_length=64)
    severity: str = Field(default="error", max_length=10)
    message: str = Field(sa_column=Column(Text, nullable=False))


class Person(SQLModel, table=True):
    """One real person as far as DA Daily knows. Linked by police person id where the force gives one,
    otherwise by ``match_key`` (normalised surname + forename + date of birth)."""

    id: Optional[int] = Field(default=None, primary_key=True)
    force: str = Field(max_length=120)
    police_person_id: Optional[str] = Field(default=None, max_length=64)
    surname: Optional[str] = Field(default=None, max_length=120)
    forename: Optional[str] = Field(default=None, max_length=120)
    dob: Optional[dt.date] = Field(default=None, sa_type=Date)
    gender: Optional[str] = Field(default=None, max_length=30)
    match_key: Optional[str] = Field(default=None, max_length=300)
    created_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)

    __table_args__ = (
        Index("ix_person_match_key", "force", "match_key"),
        Index("ix_person_police_id", "force", "police_person_id"),
        Index("ix_person_dob", "dob", "surname", "forename"),  # possible matches: same date of birth, any spelling
    )


class Notification(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("force", "police_ref", name="uq_notification_force_ref"),
        Index("ix_notification_victim_incident", "victim_id", "incident_at"),
        Index("ix_notification_stream_incident", "stream", "incident_at"),
        # foreign keys that deletes (retention) check: without these, each deleted batch scans the table
        Index("ix_notification_first_batch", "first_batch_id"),
        Index("ix_notification_last_batch", "last_batch_id"),
        # the dashboard: notifications by incident time, covering what it groups and filters by (and every other
        # look-up by incident time: it starts with incident_at, so a narrower index on it alone is not kept)
        Index("ix_notification_dashboard", "incident_at", "stream", "risk", "victim_id", "force", "postcode"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    force: str = Field(max_length=120)
    police_ref: str = Field(max_length=64)
    crime_ref: Optional[str] = Field(default=None, max_length=64)
    classification: Optional[str] = Field(default=None, max_length=120)  # as given in the extract
    offence: Optional[str] = Field(default=None, max_length=255)
    ho_code: Optional[str] = Field(default=None, max_length=20)  # Home Office offence code, e.g. 8N
    incident_at: dt.datetime = Field(sa_type=DateTime)  # Europe/London wall-clock, as given
    reported_at: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)  # Europe/London wall-clock
    location: Optional[str] = Field(default=None, max_length=500)
    postcode: Optional[str] = Field(default=None, max_length=10)
    risk: Risk = Field(default=Risk.not_assessed, sa_type=EnumText(Risk))
    dash_score: Optional[int] = None
    flag_pregnancy: Optional[bool] = None
    flag_strangulation: Optional[bool] = None
    flag_weapons: Optional[bool] = None
    flags_other: Optional[str] = Field(default=None, max_length=500)
    officer: Optional[str] = Field(default=None, max_length=200)
    circumstances: Optional[str] = Field(default=None, sa_column=Column(Text))
    relationship: Optional[str] = Field(default=None, max_length=200)
    stream: Stream = Field(sa_type=EnumText(Stream))
    stream_reason: str = Field(max_length=300)
    victim_id: Optional[int] = Field(default=None, foreign_key="person.id")
    people_signature: Optional[str] = Field(default=None, sa_column=Column(Text))  # the people as last imported
    # hash of the source row(s) and the profile as last imported: an identical row on re-import is skipped unread
    source_hash: Optional[str] = Field(default=None, max_length=40)
    legal_hold: bool = False  # never deleted by the retention job while set
    first_batch_id: Optional[int] = Field(default=None, foreign_key="import_batch.id")
    last_batch_id: Optional[int] = Field(default=None, foreign_key="import_batch.id")
    created_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
    updated_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
    version: int = 1


class NotificationPerson(SQLModel, table=True):
    """A person's part in one notification, with the details exactly as that extract gave them."""

    __tablename__ = "notification_person"
    __table_args__ = (Index("ix_np_person", "person_id", "role"),
                      Index("ix_np_address", "address"))  # possible matches: the same address typed again

    id: Optional[int] = Field(default=None, primary_key=True)
    notification_id: int = Field(
        sa_column=Column(Integer, ForeignKey("notification.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    person_id: int = Field(foreign_key="person.id")
    role: PersonRole = Field(sa_type=EnumText(PersonRole))
    position: int = 0  # children in the order the extract lists them
    surname: Optional[str] = Field(default=None, max_length=120)
    forename: Optional[str] = Field(default=None, max_length=120)
    dob: Optional[dt.date] = Field(default=None, sa_type=Date)
    gender: Optional[str] = Field(default=None, max_length=30)
    address: Optional[str] = Field(default=None, max_length=500)
    school_name: Optional[str] = Field(default=None, max_length=255)  # children: the school as the police typed it
    present: Optional[bool] = None  # children: present at the incident


class FieldChange(SQLModel, table=True):
    """Field-level history: what a later import changed on a notification (including its stream)."""

    __tablename__ = "field_change"

    id: Optional[int] = Field(default=None, primary_key=True)
    notification_id: int = Field(
        sa_column=Column(Integer, ForeignKey("notification.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    batch_id: Optional[int] = Field(default=None, foreign_key="import_batch.id", index=True)
    field: str = Field(max_length=60)
    old_value: Optional[str] = Field(default=None, sa_column=Column(Text))
    new_value: Optional[str] = Field(default=None, sa_column=Column(Text))
    changed_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)


class AlertStatus(str, Enum):
    queued = "queued"
    notified = "notified"
    acknowledged = "acknowledged"
    # Taken out of the school's view: a later extract moved the child to another setting after this one was shown
    # the alert, or no longer lists the child. Kept (never deleted) as the record of what that school was shown.
    withdrawn = "withdrawn"


class SchoolResolution(str, Enum):
    resolved = "resolved"  # the setting is known (a URN)
    to_resolve = "to_resolve"  # the typed name matched no open setting with certainty: in the coordinator's queue
    home_educated = "home_educated"  # routed to the council's elective home education officer


class EncompassAlert(SQLModel, table=True):
    """An Operation Encompass alert: one child of one notification, for one setting. ``disclosed`` is exactly what
    the setting was shown (JSON), frozen when the alert is created or its school resolved."""

    __tablename__ = "encompass_alert"
    __table_args__ = (Index("ix_alert_school_status", "school_urn", "status", "due_at"),
                      Index("ix_alert_status_due", "status", "due_at"),
                      Index("ix_alert_resolution", "resolution"),
                      Index("ix_alert_incident", "incident_at", "due_at", "notified_at_utc", "acknowledged_at_utc",
                            "resolution"),  # the dashboard: alerts by incident time, covering what it counts
                      Index("ix_alert_notification_child", "notification_id", "child_key"),
                      UniqueConstraint("child_link_id", name="uq_alert_child_link"))

    id: Optional[int] = Field(default=None, primary_key=True)
    # Both foreign keys are looked up through an index that starts with them (ix_alert_notification_child,
    # uq_alert_child_link), so deleting a notification or a person link never scans every alert.
    notification_id: int = Field(
        sa_column=Column(Integer, ForeignKey("notification.id", ondelete="CASCADE"), nullable=False))
    child_link_id: Optional[int] = Field(
        default=None, sa_column=Column(Integer, ForeignKey("notification_person.id", ondelete="SET NULL")))
    school_urn: Optional[str] = Field(default=None, max_length=12)  # None while the school is to be resolved
    # The child as "surname|forename|dob" (normalised): a re-import that rewrites the notification's people (new
    # link ids) finds the child's existing alert instead of raising a second one.
    child_key: Optional[str] = Field(default=None, max_length=255)
    school_typed: Optional[str] = Field(default=None, max_length=255)  # as the police typed it
    resolution: SchoolResolution = Field(default=SchoolResolution.resolved, sa_type=EnumText(SchoolResolution))
    candidates: Optional[str] = Field(default=None, sa_column=Column(Text))  # JSON: [{urn, name, la, status, why}]
    incident_at: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)  # Europe/London wall-clock
    due_at: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)  # Europe/London wall-clock
    status: AlertStatus = Field(default=AlertStatus.queued, sa_type=EnumText(AlertStatus))
    disclosed: Optional[str] = Field(default=None, sa_column=Column(Text))  # JSON, exactly as shown to the school
    notified_at_utc: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)
    acknowledged_at_utc: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)
    acknowledged_by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    escalated_at_utc: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)  # not acknowledged in time
    withdrawn_at_utc: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)  # status withdrawn: when
    withdrawn_why: Optional[str] = Field(default=None, max_length=255)  # and why, for the coordinator
    # The withdrawn alert (same notification, same child) this one replaces: the coordinator tells the setting
    # that was shown the old one. Not a foreign key: both go with their notification (deleted together).
    replaces_id: Optional[int] = None
    created_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
    version: int = 1


class School(SQLModel, table=True):
    """An establishment from the DfE GIAS download, keyed by URN. Closed ones are kept only to explain a name
    match; they are never chosen. The council's elective home education officer is a setting too (URN "EHE")."""

    urn: str = Field(primary_key=True, max_length=12)
    name: str = Field(max_length=255)
    name_key: str = Field(max_length=255, index=True)  # normalised name (dv.schools.normalise)
    la_name: Optional[str] = Field(default=None, max_length=120, index=True)
    type_name: Optional[str] = Field(default=None, max_length=120)
    status: str = Field(default="Open", max_length=60)  # Open / Closed / Open, but proposed to close
    is_open: bool = True
    phase: Optional[str] = Field(default=None, max_length=60)
    low_age: Optional[int] = None
    high_age: Optional[int] = None
    postcode: Optional[str] = Field(default=None, max_length=12)
    town: Optional[str] = Field(default=None, max_length=120)
    updated_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)


class KeyAdult(SQLModel, table=True):
    """A setting's Operation Encompass key adult (usually the designated safeguarding lead): who the alert notice
    goes to. Reviewed by the coordinator by ``review_date``."""

    __tablename__ = "key_adult"

    id: Optional[int] = Field(default=None, primary_key=True)
    school_urn: str = Field(sa_column=Column(
        String(12), ForeignKey("school.urn", name="fk_key_adult_school"), nullable=False, index=True))
    name: str = Field(max_length=200)
    email: Optional[str] = Field(default=None, max_length=320)
    phone: Optional[str] = Field(default=None, max_length=40)
    review_date: Optional[dt.date] = Field(default=None, sa_type=Date)
    active: bool = True
    updated_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
    version: int = 1


class SchoolAlias(SQLModel, table=True):
    """A coordinator's resolution of a spelling, remembered: the next child with this typed name goes straight to
    that setting."""

    __tablename__ = "school_alias"

    id: Optional[int] = Field(default=None, primary_key=True)
    name_key: str = Field(max_length=255, unique=True)
    school_urn: str = Field(sa_column=Column(
        String(12), ForeignKey("school.urn", name="fk_school_alias_school"), nullable=False))
    created_by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    created_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
    version: int = 1  # re-pointing or forgetting a spelling is checked against the version the coordinator saw


class MatchStatus(str, Enum):
    suggested = "suggested"
    confirmed = "confirmed"  # the same person: histories are read together
    rejected = "rejected"  # not the same person: never suggested again
    undone = "undone"  # was confirmed, then a coordinator undid it: not suggested again


class PersonMatch(SQLModel, table=True):
    """A possible match between two person records (variant spelling, missing date of birth), and what a
    coordinator decided. ``person_a_id`` < ``person_b_id``; one row per pair."""

    __tablename__ = "person_match"
    __table_args__ = (UniqueConstraint("person_a_id", "person_b_id", name="uq_person_match_pair"),
                      Index("ix_person_match_b", "person_b_id"))

    id: Optional[int] = Field(default=None, primary_key=True)
    person_a_id: int = Field(sa_column=Column(Integer, ForeignKey("person.id", ondelete="CASCADE"), nullable=False))
    person_b_id: int = Field(sa_column=Column(Integer, ForeignKey("person.id", ondelete="CASCADE"), nullable=False))
    status: MatchStatus = Field(default=MatchStatus.suggested, sa_type=EnumText(MatchStatus))
    score: float = 0.0
    why: Optional[str] = Field(default=None, sa_column=Column(Text))  # JSON list of reasons shown to the coordinator
    decided_by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    decided_at_utc: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)
    created_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
    version: int = 1
