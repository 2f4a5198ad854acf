"""``python -m dv`` as a scheduled job runs it: a real subprocess, JSON out, exit codes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import col, extract, records

ROOT = Path(__file__).resolve().parent.parent


def dv(*args, db_url: str, stdin: str | None = None):
    env = dict(os.environ, DATABASE_URL=db_url)
    return subprocess.run([sys.executable, "-m", "dv", *args], cwd=ROOT, env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'cli.sqlite3'}"


def test_import_json_counts_rejections_and_reimport(tmp_path, sqlite_url):
    recs = records(12, seed=21)

    def one_bad(header, rows):
        rows[3][col(header, "Victim DOB")] = "not a date"

    path = extract(tmp_path, "niche_wide", recs, mutate=one_bad)
    out = dv("import", str(path), "--profile", "niche_wide", "--json", db_url=sqlite_url)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert set(body) >= {"batch_id", "file", "profile", "rows_read", "created", "updated", "unchanged",
                         "duplicates_in_file", "rejected", "crime", "non_crime", "children", "errors"}
    assert (body["rows_read"], body["created"], body["rejected"]) == (12, 11, 1)
    assert body["errors"] == [{"row": 8, "column": "Victim DOB",
                               "message": body["errors"][0]["message"]}]
    assert body["crime"] + body["non_crime"] == 11
    again = json.loads(dv("import", str(path), "--profile", "Example Police - Niche DA notifications", "--json",
                          db_url=sqlite_url).stdout)
    assert (again["created"], again["unchanged"]) == (0, 11)


def test_dry_run_writes_nothing(tmp_path, sqlite_url):
    path = extract(tmp_path, "niche_wide", records(3))
    body = json.loads(dv("import", str(path), "--profile", "niche_wide", "--dry-run", "--json", db_url=sqlite_url).stdout)
    assert body["created"] == 3 and body["batch_id"] is None
    body = json.loads(dv("import", str(path), "--profile", "niche_wide", "--json", db_url=sqlite_url).stdout)
    assert body["created"] == 3


@pytest.mark.parametrize("content,profile,message", [
    (b"PK\x03\x04broken", "niche_wide", "corrupt"),
    (b"a,b\n1,2\n", "no-such-profile", "Unknown profile"),
])
def test_nothing_imported_exits_2_with_the_reason_on_stderr(tmp_path, sqlite_url, content, profile, message):
    path = tmp_path / "bad.xlsx"
    path.write_bytes(content)
    out = dv("import", str(path), "--profile", profile, "--json", db_url=sqlite_url)
    assert out.returncode == 2 and out.stdout == ""
    assert message in out.stderr


def test_user_add_first_coordinator_then_demo(sqlite_url):
    out = dv("user", "add", "--username", "casey", "--name", "Casey", "--password-stdin", "--json",
             db_url=sqlite_url, stdin="a-long-enough-passphrase\n")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["role"] == "coordinator"
    out = dv("user", "add", "--username", "weak", "--password-stdin", db_url=sqlite_url, stdin="short\n")
    assert out.returncode == 2 and "at least" in out.stderr
    out = dv("demo", "--days", "3", "--json", db_url=sqlite_url)
    assert out.returncode == 0, out.stderr
    demo = json.loads(out.stdout)
    assert demo["notifications"] == 60 and demo["crime"] + demo["non_crime"] == 60
    # the demo's own schools directory: most of its children's alerts reach a school, misspellings wait
    assert demo["schools"] == 16 and 0 < demo["alerts_to_resolve"] < demo["alerts"]
    assert dv("demo", "--days", "3", "--json", db_url=sqlite_url).returncode == 0  # twice: schools kept once


@pytest.mark.parametrize("fault,expected", [
    ("interrupted", "Notifications changed while this file was being imported"),
    ("locked", "(database is locked)"),
])
def test_an_interrupted_import_exits_2_with_a_plain_reason(tmp_path, sqlite_url, monkeypatch, capsys, fault, expected):
    """The scheduled job's operator reads why nothing was imported, not a traceback; the driver's first line tells a
    busy database from a full disk, and no SQL (whose values may hold names) is printed."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    import dv.importer
    from dv import cli

    def failing(*args, **kwargs):
        if fault == "interrupted":
            raise dv.importer.ImportInterrupted(
                "Nothing was imported: Notifications changed while this file was being imported; import again.")
        raise OperationalError("INSERT INTO person (surname) VALUES (?)", ("SECRET-NAME",),
                               sqlite3.OperationalError("database is locked"))

    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setattr(dv.importer, "import_file", failing)
    path = extract(tmp_path, "niche_wide", records(2))
    assert cli.main(["import", str(path), "--profile", "niche_wide", "--json"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and expected in out.err
    assert fault != "locked" or "Import the file again" in out.err
    assert "SECRET-NAME" not in out.err and "INSERT" not in out.err and "Traceback" not in out.err
