"""The crime / non-crime split. Only structured fields decide it, never free text."""
from __future__ import annotations

from dv.models import Stream


def decide_stream(crime_ref: str | None, ho_code: str | None, classification: str | None,
                  classification_as: str | None) -> tuple[Stream, str, str | None]:
    """(stream, reason shown to users, warning or None).

    ``classification`` is the text as given; ``classification_as`` what the profile maps it to
    ("crime", "non_crime" or None when unmapped)."""
    warning = None
    if crime_ref or ho_code:
        if classification_as == "non_crime":
            warning = (f"Classified '{classification}' but carries a "
                       f"{'crime reference ' + crime_ref if crime_ref else 'Home Office offence code ' + str(ho_code)}: "
                       "put in the crime stream.")
        if crime_ref:
            return Stream.crime, f"crime reference {crime_ref}", warning
        return Stream.crime, f"Home Office offence code {ho_code}", warning
    if classification_as == "crime":
        return Stream.crime, f"classified '{classification}'", None
    if classification:
        return Stream.non_crime, f"no crime reference or offence code; classified '{classification}'", None
    return Stream.non_crime, "no crime reference or offence code", None
