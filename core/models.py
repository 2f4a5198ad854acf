"""Accounts and the audit log. Case data models live in ``dv.models`` (and, later, ``meetings.models``)."""
from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Optional

from sqlalchemy import Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel

from core.timeutil import utcnow
from core.types import EnumText


class UserRole(str, Enum):
    coordinator = "coordinator"
    agency = "agency"
    school = "school"
    admin = "admin"
    manager = "manager"


class AgencyKind(str, Enum):
    police = "police"
    csc = "csc"  # children's social care
    asc = "asc"  # adult social care
    health = "health"
    education = "education"
    probation = "probation"
    housing = "housing"
    idva = "idva"
    other = "other"


class Agency(SQLModel, table=True):
    """A partner agency at the daily meeting. Agency representatives belong to one; actions are owned by one."""

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=80, unique=True)
    kind: AgencyKind = Field(default=AgencyKind.other, sa_type=EnumText(AgencyKind))
    email: Optional[str] = Field(default=None, max_length=320)  # where the daily action digest goes
    active: bool = True


class User(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=120)
    display_name: str = Field(max_length=200)
    email: Optional[str] = Field(default=None, max_length=320)
    role: UserRole = Field(sa_type=EnumText(UserRole))
    agency_id: Optional[int] = Field(default=None, foreign_key="agency.id")  # agency representatives only
    school_urn: Optional[str] = Field(default=None, max_length=12)  # school key adults only
    password_hash: Optional[str] = Field(default=None, max_length=255)
    must_change_password: bool = False
    disabled: bool = False
    failed_logins: int = 0
    locked_until_utc: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)
    last_login_utc: Optional[dt.datetime] = Field(default=None, sa_type=DateTime)
    created_at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime)
    version: int = 1


class AuditEvent(SQLModel, table=True):
    """Append-only: rows are inserted in the same transaction as the change they describe, never updated."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    at_utc: dt.datetime = Field(default_factory=utcnow, sa_type=DateTime, index=True)
    user_id: Optional[int] = Field(default=None, foreign_key="user.id", index=True)
    username: Optional[str] = Field(default=None, max_length=120)
    role: Optional[str] = Field(default=None, max_length=20)
    agency: Optional[str] = Field(default=None, max_length=80)
    school_urn: Optional[str] = Field(default=None, max_length=12)
    action: str = Field(max_length=40, index=True)  # login, login_failed, view, search, import, export, change, refused...
    entity: Optional[str] = Field(default=None, max_length=40)
    entity_id: Optional[str] = Field(default=None, max_length=64)
    outcome: str = Field(default="ok", max_length=20)
    details: Optional[str] = Field(default=None, sa_column=Column(Text))  # JSON
