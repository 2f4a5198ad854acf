"""The meeting's records. For now the agreed **action**, which agency scope and chasing hang off; the agenda and
meeting record join it in issues 4 and 5."""
from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Optional

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, Text
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

    __table_args__ = (Index("ix_action_agency_status_due", "agency_id", "status", "due_at"),)

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
