"""The meeting's records: the meeting and its agenda, what was recorded for each case (agencies' shared notes, the
confirmed risk, decisions), attendance, and the **actions** agencies agreed, with every change to them.

Once a meeting is closed it is locked: later changes need a coordinator and each is written to
``meeting_amendment`` as well as to the audit log, so the minutes show what changed after the meeting."""
from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Optional

from sqlalchemy import Column, Date, DateTime, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.timeutil import utcnow
from core.types import EnumText
from dv.models import Risk


class ActionStatus(str, Enum):
    open = "open"
    in_progress = "in_progress"
    done = "done"
    not_possible = "not_possible"  # change of circumstances (needs a note)
    not_done = "not_done"  # the agency did not act (needs a note)


class Action(SQLModel, table=True):
    """An action a named agency agreed to take on a notification's case."""

    __table_args__ = (Index("ix_action_agency_status_due", "agency_id", "status", "due_at"),
                      Index("ix_action_status_due", "status", "due_at"),  # the agenda's overdue-actions review
                      Index("ix_action_agency_case", "agency_id", "case_id"),  # an agency's cases (scope)
                      Index("ix_action_agency_completed", "agency_id", "completed_at_utc", "id"),  # completed first
                      # the dashboard: actions agreed in a range, covering what it counts
                      Index("ix_action_created", "created_at_utc", "agency_id", "status", "due_at",
                            "completed_at_utc"))

    id: Optional[int] = Field(default=None, primary_key=True)
    notification_id: int = Field(
        sa_column=Column(Integer, ForeignKey("notification.id", ondelete="CASCADE"), nullable=False, index=True))
    agency_id: int = Field(foreign_key="agency.id")
    # The meeting and case it was agreed at (None: agreed outside a meeting, e.g. on the Actions page).
    meeting_id: Optional[int] = Field(default=None, sa_column=Column(
        Integer, ForeignKey("meeting.id", name="fk_action_meeting", ondelete="SET NULL"), index=True))
    case_id: Optional[int] = Field(default=None, sa_column=Column(
        Integer, ForeignKey("case_record.id", name="fk_action_case", ondelete="SET NULL"), index=True))
    amendment: bool = False  # added after its meeting was closed
    owner: Optional[str] = Field(default=None, max_length=200)
    description: str = Field(sa_column=Column(Text, nullable=False))
    due_at: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)  # Europe/London wall-clock
    status: ActionStatus = Field(default=ActionStatus.open, sa_type=EnumText(ActionStatus))
    note: Optional[str] = Field(default=None, sa_column=Column(Text))
    created_by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    created_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
    updated_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
    completed_at_utc: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)
    version: int = 1  # checked in every UPDATE: a second editor with a stale page is refused, never overwrites


class MeetingStatus(str, Enum):
    draft = "draft"  # the agenda is being prepared; a rebuild may reorder it
    published = "published"  # sent to partners: stable; later imports only add late additions
    open = "open"  # the meeting is in progress: attendance, cases, decisions and actions are being recorded
    closed = "closed"  # the meeting has happened: locked; later changes are amendments


class Meeting(SQLModel, table=True):
    """One daily partnership meeting. Its agenda covers notifications from ``window_start`` to ``window_end``
    (Europe/London wall-clock: the previous meeting's cut-off to this one's)."""

    id: Optional[int] = Field(default=None, primary_key=True)
    meeting_date: dt.date = Field(sa_type=Date, unique=True)
    window_start: dt.datetime = Field(sa_type=DateTime)
    window_end: dt.datetime = Field(sa_type=DateTime)
    status: MeetingStatus = Field(default=MeetingStatus.draft, sa_type=EnumText(MeetingStatus))
    published_at_utc: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)
    published_by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    chair: Optional[str] = Field(default=None, max_length=200)
    opened_at_utc: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)
    opened_by_id: Optional[int] = Field(default=None, sa_column=Column(
        Integer, ForeignKey("user.id", name="fk_meeting_opened_by")))
    closed_at_utc: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)
    closed_by_id: Optional[int] = Field(default=None, sa_column=Column(
        Integer, ForeignKey("user.id", name="fk_meeting_closed_by")))
    # The case on screen and since when (UTC): the per-case timer survives a closed browser tab.
    current_item_id: Optional[int] = None  # agenda_item.id; no foreign key (agenda_item already points here)
    current_since_utc: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)
    created_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
    version: int = 1


class AgendaItem(SQLModel, table=True):
    """A notification on a meeting's agenda (or listed as information only), with why and where."""

    __tablename__ = "agenda_item"
    __table_args__ = (UniqueConstraint("meeting_id", "notification_id", name="uq_agenda_item"),
                      Index("ix_agenda_item_meeting_position", "meeting_id", "section", "position"))

    id: Optional[int] = Field(default=None, primary_key=True)
    meeting_id: int = Field(
        sa_column=Column(Integer, ForeignKey("meeting.id", ondelete="CASCADE"), nullable=False))
    notification_id: int = Field(
        sa_column=Column(Integer, ForeignKey("notification.id", ondelete="CASCADE"), nullable=False, index=True))
    section: str = Field(max_length=40)  # e.g. high_risk_children, ..., information_only, late_additions
    position: int = 0
    reasons: Optional[str] = Field(default=None, sa_column=Column(Text))  # JSON list of plain-language reasons
    marac_flags: Optional[str] = Field(default=None, sa_column=Column(Text))  # JSON list
    prior_incidents_12m: int = 0
    added_by_id: Optional[int] = Field(default=None, foreign_key="user.id")  # a coordinator added it by hand
    added_reason: Optional[str] = Field(default=None, sa_column=Column(Text))
    removed: bool = False  # taken off by a coordinator (kept, with the reason, never silently dropped)
    removed_reason: Optional[str] = Field(default=None, sa_column=Column(Text))
    late_addition: bool = False  # arrived after the agenda was published
    created_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
    version: int = 1


class Attendance(str, Enum):
    present = "present"
    apologies = "apologies"  # apologies, information sent
    absent = "absent"


class MeetingAttendee(SQLModel, table=True):
    """One person at (or sending apologies to) a meeting, for an agency, and whether they accepted the
    confidentiality statement. An agency with nobody recorded counts as absent."""

    __tablename__ = "meeting_attendee"
    __table_args__ = (Index("ix_meeting_attendee_meeting", "meeting_id", "agency_id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    meeting_id: int = Field(sa_column=Column(
        Integer, ForeignKey("meeting.id", name="fk_attendee_meeting", ondelete="CASCADE"), nullable=False))
    agency_id: int = Field(foreign_key="agency.id")
    name: str = Field(max_length=200)
    attendance: Attendance = Field(default=Attendance.present, sa_type=EnumText(Attendance))
    confidentiality_accepted: bool = False
    accepted_at_utc: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)
    recorded_by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    created_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
    version: int = 1


class Decision(str, Enum):
    """The meeting's decision pick-list (several may apply to a case)."""

    no_further_action = "no_further_action"  # no further action / information only
    information_shared = "information_shared"
    early_help = "early_help"  # Early Help offer
    csc_referral = "csc_referral"  # children's social care referral
    strategy_discussion = "strategy_discussion"
    marac_referral = "marac_referral"
    idva_referral = "idva_referral"
    adult_safeguarding_referral = "adult_safeguarding_referral"
    clares_law = "clares_law"  # Clare's Law (DVDS) consideration


class CaseRecord(SQLModel, table=True):
    """What the meeting recorded for one agenda item: confirmed risk (with the rationale for any change from the
    police grade), time spent, and (in child tables) decisions and each agency's shared note."""

    __tablename__ = "case_record"
    __table_args__ = (UniqueConstraint("agenda_item_id", name="uq_case_record_item"),
                      Index("ix_case_record_meeting", "meeting_id"))

    id: Optional[int] = Field(default=None, primary_key=True)
    meeting_id: int = Field(sa_column=Column(
        Integer, ForeignKey("meeting.id", name="fk_case_record_meeting", ondelete="CASCADE"), nullable=False))
    agenda_item_id: int = Field(sa_column=Column(
        Integer, ForeignKey("agenda_item.id", name="fk_case_record_item", ondelete="CASCADE"), nullable=False))
    notification_id: int = Field(sa_column=Column(
        Integer, ForeignKey("notification.id", name="fk_case_record_notification", ondelete="CASCADE"),
        nullable=False, index=True))
    police_risk: Risk = Field(default=Risk.not_assessed, sa_type=EnumText(Risk))  # as graded when discussed
    confirmed_risk: Optional[Risk] = Field(default=None, sa_type=EnumText(Risk))
    risk_rationale: Optional[str] = Field(default=None, sa_column=Column(Text))
    seconds_spent: int = 0
    discussed: bool = False
    amended: bool = False  # changed after the meeting closed
    updated_by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    updated_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
    version: int = 1


class CaseDecision(SQLModel, table=True):
    __tablename__ = "case_decision"
    __table_args__ = (UniqueConstraint("case_id", "decision", name="uq_case_decision"),
                      Index("ix_case_decision_decision", "decision"))

    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: int = Field(sa_column=Column(
        Integer, ForeignKey("case_record.id", name="fk_case_decision_case", ondelete="CASCADE"), nullable=False))
    decision: Decision = Field(sa_type=EnumText(Decision, 40))


class AgencyShare(SQLModel, table=True):
    """What one agency shared about a case at the meeting (one note per agency per case). Agency representatives
    see these for their own actions' cases: this is what the meeting recorded as shared."""

    __tablename__ = "agency_share"
    __table_args__ = (UniqueConstraint("case_id", "agency_id", name="uq_agency_share"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: int = Field(sa_column=Column(
        Integer, ForeignKey("case_record.id", name="fk_agency_share_case", ondelete="CASCADE"), nullable=False))
    agency_id: int = Field(foreign_key="agency.id")
    note: str = Field(sa_column=Column(Text, nullable=False))
    updated_by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    updated_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
    version: int = 1


class ActionChange(SQLModel, table=True):
    """One field of one action changed: who, when, old and new. Written in the same transaction as the change."""

    __tablename__ = "action_change"
    __table_args__ = (Index("ix_action_change_action", "action_id", "id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    action_id: int = Field(sa_column=Column(
        Integer, ForeignKey("action.id", name="fk_action_change_action", ondelete="CASCADE"), nullable=False))
    field: str = Field(max_length=40)
    old_value: Optional[str] = Field(default=None, sa_column=Column(Text))
    new_value: Optional[str] = Field(default=None, sa_column=Column(Text))
    changed_by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    changed_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
    amendment: bool = False  # made after the action's meeting was closed


class MeetingAmendment(SQLModel, table=True):
    """A change made to a closed meeting's record, listed in its minutes."""

    __tablename__ = "meeting_amendment"

    id: Optional[int] = Field(default=None, primary_key=True)
    meeting_id: int = Field(sa_column=Column(
        Integer, ForeignKey("meeting.id", name="fk_amendment_meeting", ondelete="CASCADE"), nullable=False,
        index=True))
    entity: str = Field(max_length=40)
    entity_id: Optional[int] = None
    summary: str = Field(sa_column=Column(Text, nullable=False))
    by_id: Optional[int] = Field(default=None, foreign_key="user.id")
    at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
