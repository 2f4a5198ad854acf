"""Shared infrastructure for DA Daily: settings, database, accounts, scope and audit.

Everything that every package needs lives here and nowhere else:

- ``core.settings``  – environment-driven settings (one frozen object, no module state)
- ``core.db``        – engine (SQLite default with WAL + foreign keys, PostgreSQL via DATABASE_URL), sessions, migrations
- ``core.models``    – users and the audit log
- ``core.auth``      – local accounts: argon2 hashes, lockout, first coordinator
- ``core.scope``     – the one deny-by-default function that decides what a user may read
- ``core.audit``     – append-only audit rows written in the caller's transaction
- ``core.exports``   – formula-safe xlsx/csv writing
- ``core.timeutil``  – how times are stored (Europe/London wall-clock for police times, UTC for system times)
"""
