"""Import robustness: a UTF-8 file with one stray byte, numeric HHMM time cells, the repeated October hour, an
import interrupted part-way, and profile files saved at the same time or left broken."""
from __future__ import annotations

import datetime as dt
import threading
import time
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import select

from dv.importer import ImportInterrupted, N_TABLE, import_file, interruption_message
from dv.models import Notification
from dv.parsing import parse_time
from dv.profiles import ProfileError, list_profiles, load_profile, profile_to_toml, save_profile
from dv.reading import FileRejected, decode_text, read_rows
from tests.factories import NOW, col, count, extract, records

TIME_FORMATS = ("%H:%M:%S", "%H:%M", "%H%M")


# ------------------------------------------------------------------------------------- 1. stray byte in UTF-8


def test_a_utf8_file_with_one_stray_cp1252_byte_is_refused_naming_the_line_not_garbled():
    data = "Name,Ref\nZoë O’Brien,1\n".encode() + b"Sm\x92th,2\n"  # 0x92: a cp1252 apostrophe pasted in
    with pytest.raises(FileRejected, match=r"byte 0x92 on line 3 \(byte 3 of that line\)"):
        decode_text(data, None)
    with pytest.raises(FileRejected, match="line 3"):
        read_rows(data, "a.csv")


def test_genuine_cp1252_and_clean_utf8_still_decode_and_an_explicit_encoding_is_honoured():
    cp = "Zoë O’Brien,Ó Súilleabháin,JOSÉ £5\n".encode("cp1252")
    assert decode_text(cp, None) == ("Zoë O’Brien,Ó Súilleabháin,JOSÉ £5\n", "cp1252")
    assert decode_text("Zoë O’Brien\n".encode(), None) == ("Zoë O’Brien\n", "utf-8-sig")
    # a profile that says cp1252 gets cp1252, stray-looking bytes and all (as before)
    mixed = "Zoë".encode() + b"\x92"
    assert decode_text(mixed, "cp1252") == (mixed.decode("cp1252"), "cp1252")


@given(st.text(alphabet=st.characters(codec="cp1252", min_codepoint=0x20), min_size=1)
       .filter(lambda s: any(ord(c) > 127 for c in s)))
def test_utf8_text_with_a_stray_byte_is_never_accepted_as_cp1252(s):
    data = ("é," + s).encode() + b"\x92\n"  # at least one real multi-byte sequence, then one stray byte
    with pytest.raises(FileRejected, match="not valid UTF-8"):
        decode_text(data, None)


# ------------------------------------------------------------------------------------- 2. numeric HHMM times


@given(st.times().map(lambda t: t.replace(second=0, microsecond=0)))
def test_a_numeric_hhmm_cell_is_the_time_it_shows(t):
    number = t.hour * 100 + t.minute
    if number == 0:
        number = 0.0  # 00:00 as a number is 0, which is also the day fraction for midnight
    assert parse_time(float(number), TIME_FORMATS) == t  # what the xlsx reader gives: 1430.0
    assert parse_time(int(number), TIME_FORMATS) == t
    assert parse_time(f"{t:%H%M}", TIME_FORMATS) == t


@given(st.times().map(lambda t: t.replace(microsecond=0)))
def test_excel_time_cells_and_day_fractions_still_work(t):
    secs = t.hour * 3600 + t.minute * 60 + t.second
    assert parse_time(t, TIME_FORMATS) == t
    assert parse_time(dt.datetime.combine(dt.date(1899, 12, 31), t), TIME_FORMATS) == t
    assert parse_time(dt.timedelta(seconds=secs), TIME_FORMATS) == t
    assert parse_time(secs / 86400, TIME_FORMATS) == t


@pytest.mark.parametrize("value", [2400.0, 1460, 1430.5, True])
def test_numbers_that_are_not_a_time_are_errors(value):
    with pytest.raises(ValueError, match="is not a time"):
        parse_time(value, TIME_FORMATS)


def test_an_xlsx_extract_with_numeric_hhmm_times_imports(session, tmp_path):
    recs = records(3, seed=71)

    def numeric_times(header, rows):
        for row, number in zip(rows, (1430, 5, 930)):
            row[col(header, "Incident Time")] = number  # a Number cell: calamine gives 1430.0

    path = extract(tmp_path, "athena_list", recs, fmt="xlsx", mutate=numeric_times)
    result = import_file(session, path, load_profile("athena_list"), actor="test", now=NOW)
    session.commit()
    assert result.errors == [] and result.created == 3
    got = {n.police_ref: n.incident_at.time() for n in session.exec(select(Notification)).all()}
    assert [got[r["police_ref"]] for r in recs] == [dt.time(14, 30), dt.time(0, 5), dt.time(9, 30)]


# ------------------------------------------------------------------------------------- 3. repeated October hour


@pytest.mark.parametrize("fold", [0, 1])
def test_an_incident_in_the_first_pass_of_the_repeated_hour_is_not_in_the_future(session, tmp_path, fold):
    # 01:10 on 25/10/2026: with fold=1 the second pass (GMT), when an incident at 01:50 BST was 20 minutes ago.
    # Nothing says which pass a naive time means, so the lenient reading is taken for both.
    now = dt.datetime(2026, 10, 25, 1, 10, fold=fold)
    recs = records(3, seed=72, start=dt.date(2026, 10, 20), days=3)

    def clock(header, rows):
        rows[0][col(header, "Occ Date/Time")] = "25/10/2026 01:50"
        rows[0][col(header, "Reported Date/Time")] = "25/10/2026 01:55"
        rows[1][col(header, "Occ Date/Time")] = "25/10/2026 02:20"  # GMT only: 70 minutes after 01:10 GMT

    path = extract(tmp_path, "niche_wide", recs, mutate=clock, excel_dates=False)
    result = import_file(session, path, load_profile("niche_wide"), actor="test", now=now)
    session.commit()
    assert [e.message for e in result.errors] == ["Incident date/time 25/10/2026 02:20 is in the future."]
    stored = session.exec(select(Notification).where(Notification.police_ref == recs[0]["police_ref"])).one()
    assert stored.incident_at == dt.datetime(2026, 10, 25, 1, 50)  # stored as given, never converted
    assert stored.reported_at == dt.datetime(2026, 10, 25, 1, 55)


def test_outside_the_repeated_hour_the_future_is_the_wall_clock_future(session, tmp_path):
    recs = records(2, seed=73)

    def later(header, rows):
        rows[0][col(header, "Occ Date/Time")] = "22/11/2026 06:31"  # one minute after NOW
        rows[1][col(header, "Reported Date/Time")] = "22/11/2026 06:31"

    result = import_file(session, extract(tmp_path, "niche_wide", recs, mutate=later, excel_dates=False),
                         load_profile("niche_wide"), actor="test", now=NOW)
    assert sorted(e.message for e in result.errors) == ["Incident date/time 22/11/2026 06:31 is in the future.",
                                                        "Reported date/time 22/11/2026 06:31 is in the future."]


# ------------------------------------------------------------------------------------- 4. interrupted imports


def test_a_notification_changed_while_importing_is_a_plain_interruption(session, tmp_path, monkeypatch):
    import dv.importer as importer

    recs = records(4, seed=74)
    import_file(session, extract(tmp_path, "niche_wide", recs), load_profile("niche_wide"), actor="test", now=NOW)
    session.commit()
    recs[0]["risk"] = "high" if recs[0]["risk"] != "high" else "medium"
    real = importer._write_updates

    def colleague_edits_first(conn, updates):
        conn.execute(update(N_TABLE).values(version=N_TABLE.c.version + 1))  # an edit landing meanwhile
        return real(conn, updates)

    monkeypatch.setattr(importer, "_write_updates", colleague_edits_first)
    with pytest.raises(ImportInterrupted) as caught:
        import_file(session, extract(tmp_path, "niche_wide", recs, name="again.xlsx"), load_profile("niche_wide"),
                    actor="test", now=NOW)
    session.rollback()
    assert interruption_message(caught.value) == ("Nothing was imported: notifications changed while this file was "
                                                  "being imported. Import the file again.")
    assert count(session, Notification) == 4


@pytest.mark.parametrize("exc", [
    OperationalError("INSERT INTO notification (police_ref) VALUES (?)", {}, Exception("database is locked")),
    IntegrityError("INSERT INTO person (id) VALUES (?)", {}, Exception("UNIQUE constraint failed: person.id")),
])
def test_database_failures_are_told_without_sql(exc):
    message = interruption_message(exc)
    assert message.startswith("Nothing was imported: ") and message.endswith("Import the file again.")
    assert "INSERT" not in message and "constraint" not in message and "locked" not in message


# ------------------------------------------------------------------------------------- 5. profile files


def _toml(name: str) -> str:
    return profile_to_toml(name, "Test Force", {"police_ref": "Ref", "incident_at": "When", "victim_name": "Victim"})


def test_saving_never_overwrites_a_profile_even_when_two_save_at_once(tmp_path, monkeypatch):
    directory = tmp_path / "profiles"
    barrier = threading.Barrier(2)
    import pathlib

    import dv.profiles as profiles

    real_slugify, real_exists = profiles.slugify, pathlib.Path.exists

    def slugify_together(name):  # both saves reach the file name at the same moment
        barrier.wait(timeout=10)
        return real_slugify(name)

    def slow_exists(self, *a, **k):  # and anyone who checks before writing is slow to write after the check
        answer = real_exists(self, *a, **k)
        time.sleep(0.3)
        return answer

    monkeypatch.setattr(profiles, "slugify", slugify_together)
    monkeypatch.setattr(pathlib.Path, "exists", slow_exists)
    outcomes: list = []

    def save(name):
        try:
            outcomes.append(save_profile(_toml(name), directory))
        except ProfileError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=save, args=(n,)) for n in ("Test Force - A", "test force  a")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert sorted(type(o).__name__ for o in outcomes) == ["PosixPath", "ProfileError"]
    assert "already exists" in str(next(o for o in outcomes if isinstance(o, ProfileError)))
    saved = next(o for o in outcomes if not isinstance(o, ProfileError))
    assert load_profile(str(saved)).name in {"Test Force - A", "test force  a"}
    assert [p.name for p in directory.iterdir()] == ["test_force_a.toml"]  # no temporary file left behind


def test_overwrite_replaces_in_one_step(tmp_path):
    directory = tmp_path / "profiles"
    save_profile(_toml("Test Force - A"), directory)
    text = _toml("Test Force - A").replace('force = "Test Force"', 'force = "Other Force"')
    path = save_profile(text, directory, overwrite=True)
    assert load_profile(str(path)).force == "Other Force"
    assert [p.name for p in directory.iterdir()] == ["test_force_a.toml"]


def test_a_broken_profile_file_is_skipped_and_reported_not_fatal(tmp_path):
    directory = tmp_path / "profiles"
    save_profile(_toml("Test Force - A"), directory)
    (directory / "half_written.toml").write_text('[profile]\nname = "Half', encoding="utf-8")
    (directory / "no_fields.toml").write_text('[profile]\nname = "x"\nforce = "f"\n', encoding="utf-8")
    problems: list[str] = []
    assert [p.name for p in list_profiles(directory, problems)] == ["Test Force - A"]
    assert len(problems) == 2
    assert "half_written.toml" in problems[0] and "not valid TOML" in problems[0]
    assert "no_fields.toml" in problems[1]
    assert [p.name for p in list_profiles(directory)] == ["Test Force - A"]  # no list: logged, still skipped
    assert load_profile("Test Force - A", directory).name == "Test Force - A"


# ------------------------------------------------------------------------------------- the Import page


class _Upload(SimpleNamespace):
    def getvalue(self):
        return self.data


@pytest.fixture
def import_page(tmp_path, monkeypatch):
    """The Import page in AppTest, signed in as a coordinator, with ``upload`` as the uploaded file (AppTest cannot
    drive st.file_uploader) and its own profiles directory."""
    from streamlit.testing.v1 import AppTest

    import streamlit
    from core.auth import create_user
    from core.db import get_engine, migrate, session_scope
    from core.models import UserRole

    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    profiles_dir = tmp_path / "profiles"
    profiles_dir.mkdir()
    for stem in ("niche_wide", "athena_list"):
        (profiles_dir / f"{stem}.toml").write_bytes(load_profile(stem).path.read_bytes())
    monkeypatch.setenv("DV_PROFILES_DIR", str(profiles_dir))
    migrate(url)
    with session_scope(get_engine(url)) as s:
        uid = create_user(s, None, username="coord", display_name="Coord", role=UserRole.coordinator,
                          password="correct-horse-staple-7").id
    path = extract(tmp_path, "niche_wide", records(2, seed=75))
    monkeypatch.setattr(streamlit, "file_uploader", lambda *a, **k: _Upload(
        data=path.read_bytes(), name=path.name, file_id="f1"))

    def page():
        at = AppTest.from_file("../app.py", default_timeout=30)
        now = time.time()
        at.session_state["auth"] = {"user_id": uid, "login_at": now, "last_seen": now}
        at.run()
        at.switch_page("pages/import_extract.py").run()
        return at

    yield SimpleNamespace(page=page, profiles_dir=profiles_dir)
    get_engine(url).dispose()


@pytest.mark.parametrize("exc", [
    ImportInterrupted("Nothing was imported: notifications changed while this file was being imported. "
                      "Import the file again."),
    OperationalError("INSERT INTO notification (police_ref) VALUES (?)", {}, Exception("database is locked")),
    IntegrityError("INSERT INTO person (id) VALUES (?)", {}, Exception("UNIQUE constraint failed: person.id")),
])
def test_the_import_page_says_plainly_that_an_interrupted_import_wrote_nothing(import_page, monkeypatch, exc):
    import dv.importer as importer

    def interrupted(*a, **k):
        raise exc

    monkeypatch.setattr(importer, "import_upload", interrupted)
    at = import_page.page()
    assert not at.exception and at.title[0].value == "Import"
    at.button(key="import").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [interruption_message(exc)]


def test_a_broken_profile_file_warns_on_the_import_page_and_imports_go_on(import_page):
    (import_page.profiles_dir / "broken.toml").write_text('[profile]\nname = "Half', encoding="utf-8")
    at = import_page.page()
    assert not at.exception and at.title[0].value == "Import"
    assert any("broken" in w.value and "skipped" in w.value for w in at.warning)
    at.button(key="dry_run").click().run()
    assert not at.exception and not at.error
    assert at.info[0].value.startswith("Dry run")
