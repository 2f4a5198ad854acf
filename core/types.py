"""Column types shared by the models."""
from __future__ import annotations

from enum import Enum

from sqlalchemy import String
from sqlalchemy.types import TypeDecorator


class EnumText(TypeDecorator):
    """An Enum stored as its plain string value (VARCHAR, not a database enum type, so adding a value never
    needs a type migration), and read back as the Enum. An unknown value is refused before it reaches the table."""

    impl = String
    cache_ok = True

    def __init__(self, enum_cls: type[Enum], length: int = 20):
        super().__init__(length)
        self.enum_cls = enum_cls

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return self.enum_cls(value).value

    def process_result_value(self, value, dialect):
        return None if value is None else self.enum_cls(value)
