"""The meeting's records. For now the agreed **action**, which agency scope and chasing hang off; the agenda and
meeting record join it in issues 4 and 5."""
from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Optional

from sqlalchemy import Column, Date, DateTime, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.timeutil import utcnow
from core.types import EnumText


class ActionStatus(str, Enum):
    open = "open"
    in_progress = "in_progress"
    done = "done"
    not_possible = "not_possible"  # change of circumstances (needs a note)
    not_done = "not_done"  # the agency did not act (needs a note)


class Action(SQLModel, table=True):
    """An action a named agency agreed to take on a notification's case."""

    __table_args__ = (Index("ix_action_agency_status_due", "agency_id", "status", "due_at"),
                      Index("ix_action_status_due", "status", "due_at"))  # the agenda's overdue-actions review

    id: Optional[int] = Field(default=None, primary_key=True)
    notification_id: int = Field(
        sa_column=Column(Integer, ForeignKey("notification.id", ondelete="CASCADE"), nullable=False, index=True))
    agency_id: int = Field(foreign_key="agency.id")
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
    closed = "closed"  # the meeting has happened (issue 5)


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
