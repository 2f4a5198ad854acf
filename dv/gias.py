"""A synthetic GIAS establishments download (``edubasealldata*.csv``): every row made up, seeded, never real data.

The DfE's Get Information about Schools download is a Windows-1252 CSV of ~130 columns and ~50,000 rows. This
module writes files shaped like it, for tests, the demo and ``bench/schools_bench.py``:

* ``write_gias_csv(path, rows=50_000, seed=1, las=...)``: a full-size file;
* ``gias_bytes(records)``: a small file from explicit rows (tests), every column not given left blank;
* ``typed_school_names(schools, n, seed)``: school names as a police officer types them (abbreviated, missing
  words, misspelt, "home educated", blank).

The names are built like real ones: "St Mary's Church of England Primary School", "Sherwood Academy", "Kexley
Junior School", nurseries, independent schools, FE colleges, pupil referral units; the same name in several local
authorities; academies that replaced a closed school of the same name (closed predecessor + open academy, two
URNs); accents and curly apostrophes that Windows-1252 can encode ("St Thérèse", "St Mary’s").
"""
from __future__ import annotations

import csv
import io
import random
from pathlib import Path

# The columns of the real download, in its order (about 130). Only a few are read by dv.schools; the rest are
# filled with plausible values so the file has the real file's width and weight.
GIAS_COLUMNS: tuple[str, ...] = (
    "URN", "LA (code)", "LA (name)", "EstablishmentNumber", "EstablishmentName", "TypeOfEstablishment (code)",
    "TypeOfEstablishment (name)", "EstablishmentTypeGroup (code)", "EstablishmentTypeGroup (name)",
    "EstablishmentStatus (code)", "EstablishmentStatus (name)", "ReasonEstablishmentOpened (code)",
    "ReasonEstablishmentOpened (name)", "OpenDate", "ReasonEstablishmentClosed (code)",
    "ReasonEstablishmentClosed (name)", "CloseDate", "PhaseOfEducation (code)", "PhaseOfEducation (name)",
    "StatutoryLowAge", "StatutoryHighAge", "Boarders (code)", "Boarders (name)", "NurseryProvision (name)",
    "OfficialSixthForm (code)", "OfficialSixthForm (name)", "Gender (code)", "Gender (name)",
    "ReligiousCharacter (code)", "ReligiousCharacter (name)", "ReligiousEthos (name)", "Diocese (code)",
    "Diocese (name)", "AdmissionsPolicy (code)", "AdmissionsPolicy (name)", "SchoolCapacity", "SpecialClasses (code)",
    "SpecialClasses (name)", "CensusDate", "NumberOfPupils", "NumberOfBoys", "NumberOfGirls", "PercentageFSM",
    "TrustSchoolFlag (code)", "TrustSchoolFlag (name)", "Trusts (code)", "Trusts (name)", "SchoolSponsorFlag (name)",
    "SchoolSponsors (name)", "FederationFlag (name)", "Federations (code)", "Federations (name)", "UKPRN",
    "FEHEIdentifier", "FurtherEducationType (name)", "OfstedLastInsp", "OfstedSpecialMeasures (code)",
    "OfstedSpecialMeasures (name)", "LastChangedDate", "Street", "Locality", "Address3", "Town", "County (name)",
    "Postcode", "SchoolWebsite", "TelephoneNum", "HeadTitle (name)", "HeadFirstName", "HeadLastName",
    "HeadPreferredJobTitle", "BSOInspectorateName (name)", "InspectorateReport", "DateOfLastInspectionVisit",
    "NextInspectionVisit", "TeenMoth (name)", "TeenMothPlaces", "CCF (name)", "SENPRU (name)", "EBD (name)",
    "PlacesPRU", "FTProv (name)", "EdByOther (name)", "Section41Approved (name)", "SEN1 (name)", "SEN2 (name)",
    "SEN3 (name)", "SEN4 (name)", "SEN5 (name)", "SEN6 (name)", "SEN7 (name)", "SEN8 (name)", "SEN9 (name)",
    "SEN10 (name)", "SEN11 (name)", "SEN12 (name)", "SEN13 (name)", "TypeOfResourcedProvision (name)",
    "ResourcedProvisionOnRoll", "ResourcedProvisionCapacity", "SenUnitOnRoll", "SenUnitCapacity", "GOR (code)",
    "GOR (name)", "DistrictAdministrative (code)", "DistrictAdministrative (name)", "AdministrativeWard (code)",
    "AdministrativeWard (name)", "ParliamentaryConstituency (code)", "ParliamentaryConstituency (name)",
    "UrbanRural (code)", "UrbanRural (name)", "GSSLACode (name)", "Easting", "Northing", "MSOA (name)", "LSOA (name)",
    "InspectorateName (name)", "SENStat", "SENNoStat", "BoardingEstablishment (name)", "PropsName",
    "PreviousLA (code)", "PreviousLA (name)", "PreviousEstablishmentNumber", "OfstedRating (name)",
    "RSCRegion (name)", "Country (name)", "UPRN", "SiteName", "QABName (code)", "QABName (name)",
    "EstablishmentAccredited (code)", "EstablishmentAccredited (name)", "QABReport", "CHNumber", "MSOA (code)",
    "LSOA (code)", "FSM", "AccreditationExpiryDate",
)

# English local authority names as GIAS spells them (public administrative names, not personal data).
DEFAULT_LAS: tuple[str, ...] = (
    "Nottinghamshire", "Nottingham", "Derbyshire", "Derby", "Leicestershire", "Leicester", "Lincolnshire",
    "North Lincolnshire", "North East Lincolnshire", "Rutland", "Northamptonshire", "Doncaster", "Rotherham",
    "Sheffield", "Barnsley", "Wakefield", "Leeds", "Bradford", "Calderdale", "Kirklees", "York", "North Yorkshire",
    "East Riding of Yorkshire", "Kingston upon Hull, City of", "Staffordshire", "Stoke-on-Trent", "Cheshire East",
    "Cheshire West and Chester", "Manchester", "Salford", "Stockport", "Tameside", "Oldham", "Rochdale", "Bury",
    "Bolton", "Wigan", "Trafford", "Liverpool", "Knowsley", "Sefton", "St. Helens", "Wirral", "Lancashire",
    "Blackpool", "Blackburn with Darwen", "Cumberland", "Westmorland and Furness", "Northumberland",
    "Newcastle upon Tyne", "North Tyneside", "South Tyneside", "Gateshead", "Sunderland", "County Durham",
    "Darlington", "Hartlepool", "Stockton-on-Tees", "Middlesbrough", "Redcar and Cleveland", "Birmingham",
    "Solihull", "Coventry", "Warwickshire", "Worcestershire", "Herefordshire, County of", "Shropshire",
    "Telford and Wrekin", "Walsall", "Wolverhampton", "Dudley", "Sandwell", "Norfolk", "Suffolk", "Cambridgeshire",
    "Peterborough", "Essex", "Southend-on-Sea", "Thurrock", "Hertfordshire", "Bedford", "Central Bedfordshire",
    "Luton", "Kent", "Medway", "East Sussex", "Brighton and Hove", "West Sussex", "Surrey", "Hampshire",
    "Southampton", "Portsmouth", "Isle of Wight", "Oxfordshire", "Buckinghamshire", "Milton Keynes",
    "West Berkshire", "Reading", "Wokingham", "Bracknell Forest", "Windsor and Maidenhead", "Slough",
    "Gloucestershire", "South Gloucestershire", "Bristol, City of", "North Somerset",
    "Bath and North East Somerset", "Somerset", "Wiltshire", "Swindon", "Dorset",
    "Bournemouth, Christchurch and Poole", "Devon", "Plymouth", "Torbay", "Cornwall", "Isles of Scilly", "Barnet",
    "Camden", "Croydon", "Ealing", "Enfield", "Hackney", "Haringey", "Harrow", "Hillingdon", "Hounslow", "Islington",
    "Lambeth", "Lewisham", "Newham", "Redbridge", "Southwark", "Sutton", "Tower Hamlets", "Wandsworth",
    "Westminster", "Bromley", "Bexley", "Greenwich", "Merton", "Brent",
)

_PLACE_HEADS = ("Kex", "Sher", "Brook", "Ash", "Bram", "Hol", "Oak", "Wil", "Rad", "Carl", "Huck", "Bul", "Ed",
                "Gedl", "Stap", "Chil", "Beest", "Lent", "Clif", "Mans", "Wark", "Ret", "Bing", "South", "North",
                "East", "West", "Fern", "Thorn", "Haw", "Elm", "Birch", "Cran", "Lang", "Mill", "Red", "Whit",
                "Blid", "Calv", "Keyw", "Rud", "Tol", "Cot", "Bram", "Ravens", "Lox", "Sel", "Wood", "Hart", "Stan")
_PLACE_TAILS = ("ley", "wood", "field", "ton", "ham", "bury", "ford", "well", "dale", "thorpe", "by", "worth",
                "gate", "hill", "brook", "mere", "stead", "combe", "hurst", "borough", "wick", "cliffe", "moor",
                "bridge", "side", "grove", "lands", "croft")
_SAINTS = ("Mary's", "John's", "Peter's", "Paul's", "Michael's", "Andrew's", "Joseph's", "Anne's", "Thomas's",
           "Margaret's", "Bede's", "Chad's", "Hilda's", "Aidan's", "Edmund's", "Patrick's", "Teresa's",
           "Thérèse of Lisieux", "Wilfrid's", "Swithun's", "Luke's", "Mark's", "James'", "Nicholas'", "Helen's",
           "Augustine's", "Francis'", "Bernadette's", "Edward's", "George's")
_STREETS = ("Church Lane", "School Road", "High Street", "Mill Lane", "Station Road", "Park Avenue", "Green Lane",
            "Chapel Street", "The Crescent", "Victoria Road", "Queen Street", "Manor Road", "Forest Road")
_FIRST = ("Alex", "Sam", "Jo", "Chris", "Pat", "Jamie", "Robin", "Lee", "Kim", "Morgan", "Ashley", "Dana", "Jess",
          "Chloé", "Zoë", "Siân", "Niamh", "Renée", "José", "Aoife")
_LAST = ("Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Thomas", "Roberts", "Walker", "Wright", "O'Neill",
         "D'Souza", "Müller", "Brontë", "Hughes", "Green", "Hall", "Wood", "Clarke", "Patel")
_REGIONS = ("East Midlands", "Yorkshire and the Humber", "North West", "North East", "West Midlands",
            "East of England", "South East", "South West", "London")

# (kind, type name, type group, phase, low age, high age, name pattern, weight)
_KINDS = (
    ("community_primary", "Community school", "Local authority maintained schools", "Primary", 4, 11,
     "{place} Primary School", 16),
    ("ce_primary", "Voluntary aided school", "Local authority maintained schools", "Primary", 4, 11,
     "St {saint} Church of England Primary School", 7),
    ("rc_primary", "Voluntary aided school", "Local authority maintained schools", "Primary", 4, 11,
     "St {saint} Catholic Primary School", 4),
    ("rc_primary_voluntary", "Voluntary aided school", "Local authority maintained schools", "Primary", 3, 11,
     "St {saint} Roman Catholic Primary School", 1),
    ("ce_infant", "Voluntary controlled school", "Local authority maintained schools", "Primary", 4, 7,
     "{place} CofE Infant School", 2),
    ("junior", "Community school", "Local authority maintained schools", "Primary", 7, 11, "{place} Junior School", 5),
    ("infant", "Community school", "Local authority maintained schools", "Primary", 4, 7, "{place} Infant School", 4),
    ("infants", "Foundation school", "Local authority maintained schools", "Primary", 4, 7,
     "{place} Infants' School", 1),
    ("academy_primary", "Academy converter", "Academies", "Primary", 4, 11, "{place} Primary Academy", 8),
    ("academy_secondary", "Academy sponsor led", "Academies", "Secondary", 11, 18, "{place} Academy", 7),
    ("the_academy", "Academy converter", "Academies", "Secondary", 11, 18, "The {place} Academy", 2),
    ("secondary", "Community school", "Local authority maintained schools", "Secondary", 11, 16,
     "{place} High School", 4),
    ("comprehensive", "Foundation school", "Local authority maintained schools", "Secondary", 11, 18,
     "{place} School", 3),
    ("free", "Free schools", "Free Schools", "All-through", 4, 18, "{place} Free School", 1),
    ("nursery", "Local authority nursery school", "Local authority maintained schools", "Nursery", 2, 5,
     "{place} Nursery School", 3),
    ("independent", "Other independent school", "Independent schools", "Not applicable", 3, 18,
     "{place} Preparatory School", 4),
    ("independent_hall", "Other independent school", "Independent schools", "Not applicable", 7, 18,
     "{place} Hall School", 1),
    ("special", "Community special school", "Special schools", "Not applicable", 3, 19, "{place} Special School", 2),
    ("pru", "Pupil referral unit", "Local authority maintained schools", "Not applicable", 11, 16,
     "{place} Pupil Referral Unit", 1),
    ("short_stay", "Academy alternative provision converter", "Academies", "Not applicable", 5, 16,
     "{place} Short Stay School", 1),
    ("fe", "Further education", "Colleges", "16 plus", 16, 99, "{place} College", 2),
    ("sixth_form", "Sixth form centres", "Colleges", "16 plus", 16, 19, "{place} Sixth Form College", 1),
    ("welsh_medium", "Other independent school", "Independent schools", "Not applicable", 4, 11,
     "École {place}", 1),
)

# Establishments every generated file contains in its first local authority: names tests and the benchmark rely
# on (same-name pairs, a closed school replaced by an academy of the same name, accents, apostrophes).
_LANDMARKS = (
    # (name, kind, status, la index)
    ("St Mary's Church of England Primary School", "ce_primary", "Open", 0),
    ("St Mary's Church of England Primary School", "ce_primary", "Open", 1),  # the same name in two LAs
    ("Sherwood Academy", "academy_secondary", "Open", 0),
    ("Sherwood Academy", "comprehensive", "Closed", 0),  # its predecessor: the same name, another URN
    ("Kexley Junior School", "junior", "Open", 0),
    ("Kexley Junior School", "junior", "Open", 2),  # the same name in another LA
    ("Brookfield School", "comprehensive", "Closed", 0),  # replaced by Brookfield Academy
    ("Brookfield Academy", "academy_secondary", "Open", 0),
    ("St Thérèse of Lisieux Catholic Primary School", "rc_primary", "Open", 0),
    ("St Anne’s CofE Infant School", "ce_infant", "Open, but proposed to close", 0),
    ("Holmewood Nursery School", "nursery", "Open", 0),
    ("École Française Jacques Prévert", "welsh_medium", "Open", 0),
)


_PLACE_PREFIXES = ("Great ", "Little ", "Upper ", "Lower ", "North ", "South ", "East ", "West ", "Old ", "New ")
_PLACE_SUFFIXES = (" Vale", " Park", " Green", " Heath", " Village", " Lane", " Road", " Valley", " Meadows",
                   " Hill", " Cross", " End")


def _places(rng: random.Random) -> list[str]:
    """About 18,000 made-up place names: "Kexley", "Great Sherwood", "Brookfield Vale"."""
    stems = sorted({h + t for h in _PLACE_HEADS for t in _PLACE_TAILS})
    places = stems + [p + s for p in _PLACE_PREFIXES for s in stems] + [s + x for x in _PLACE_SUFFIXES for s in stems]
    rng.shuffle(places)
    return places


def _row(values: dict) -> list[str]:
    return [values.get(c, "") for c in GIAS_COLUMNS]


def _filler(rng: random.Random, urn: int, la_code: int, la_name: str, region: str, place: str) -> dict:
    pupils = rng.randint(20, 1800)
    boys = rng.randint(0, pupils)
    return {
        "LA (code)": str(la_code), "EstablishmentNumber": str(rng.randint(1000, 7999)),
        "Boarders (name)": "No boarders", "Boarders (code)": "1", "NurseryProvision (name)": rng.choice(
            ("Has Nursery Classes", "No Nursery Classes", "Not applicable")),
        "OfficialSixthForm (name)": rng.choice(("Has a sixth form", "Does not have a sixth form", "Not applicable")),
        "Gender (name)": rng.choice(("Mixed", "Mixed", "Mixed", "Girls", "Boys")),
        "AdmissionsPolicy (name)": rng.choice(("Not applicable", "Non-selective", "Selective")),
        "SchoolCapacity": str(pupils + rng.randint(0, 200)), "CensusDate": "16-01-2025",
        "NumberOfPupils": str(pupils), "NumberOfBoys": str(boys), "NumberOfGirls": str(pupils - boys),
        "PercentageFSM": f"{rng.uniform(2, 60):.1f}", "TrustSchoolFlag (name)": "Not applicable",
        "SchoolSponsorFlag (name)": "Not applicable", "FederationFlag (name)": "Not under a federation",
        "UKPRN": str(10000000 + urn), "OfstedLastInsp": f"{rng.randint(1, 28):02d}-{rng.randint(1, 12):02d}-20"
        f"{rng.randint(15, 25)}", "LastChangedDate": "01-09-2025",
        "County (name)": "Not recorded", "SchoolWebsite": f"www.{place.lower()}-school.example.sch.uk",
        "HeadTitle (name)": rng.choice(("Mr", "Mrs", "Ms", "Dr", "Miss")), "HeadPreferredJobTitle": "Headteacher",
        "GOR (name)": region, "DistrictAdministrative (name)": la_name, "AdministrativeWard (name)": f"{place} Ward",
        "ParliamentaryConstituency (name)": f"{place} and District", "UrbanRural (name)": rng.choice(
            ("(England/Wales) Urban city and town", "(England/Wales) Rural village",
             "(England/Wales) Urban major conurbation")), "GSSLACode (name)": f"E{10000000 + la_code}", "Easting": str(rng.randint(400000, 480000)),
        "Northing": str(rng.randint(300000, 380000)), "MSOA (name)": f"{la_name} {rng.randint(1, 60):03d}",
        "LSOA (name)": f"{la_name} {rng.randint(1, 60):03d}{rng.choice('ABCDE')}", "Country (name)": "United Kingdom",
        "RSCRegion (name)": region, "UPRN": str(rng.randint(10_000_000, 99_999_999)), "FSM": str(pupils // 5),
    }


def _record(rng: random.Random, urn: int, name: str, kind: tuple, status: str, la_index: int, las, place: str,
            year_base: int) -> dict:
    _, type_name, group, phase, low, high, _, _ = kind
    la_name = las[la_index]
    open_year = rng.randint(1950, year_base - 1)
    values = _filler(rng, urn, 800 + la_index, la_name, _REGIONS[la_index % len(_REGIONS)], place)
    values.update({
        "URN": str(urn), "LA (name)": la_name, "EstablishmentName": name, "TypeOfEstablishment (name)": type_name,
        "EstablishmentTypeGroup (name)": group, "EstablishmentStatus (name)": status,
        "EstablishmentStatus (code)": {"Open": "1", "Closed": "2", "Open, but proposed to close": "3"}.get(status, "4"),
        "PhaseOfEducation (name)": phase, "StatutoryLowAge": str(low), "StatutoryHighAge": str(high),
        "Street": f"{rng.randint(1, 200)} {rng.choice(_STREETS)}", "Town": place,
        "Postcode": f"{rng.choice(('NG', 'DE', 'LE', 'S', 'LN'))}{rng.randint(1, 25)} {rng.randint(1, 9)}"
                    f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}",
        "TelephoneNum": f"0{rng.randint(1100, 1999)}{rng.randint(100000, 999999)}",
        "HeadFirstName": rng.choice(_FIRST), "HeadLastName": rng.choice(_LAST),
        "OpenDate": f"01-09-{open_year}" if rng.random() < 0.6 else "",
        "ReasonEstablishmentOpened (name)": "Not applicable",
    })
    if status == "Closed":
        values["CloseDate"] = f"31-08-{rng.randint(max(open_year + 1, year_base - 30), year_base)}"
        values["ReasonEstablishmentClosed (name)"] = rng.choice(
            ("Academy converter", "Closure", "Merged - expansion of existing school", "Academy sponsor led"))
    return values


def generate_gias_records(rows: int = 50_000, seed: int = 1, las: tuple[str, ...] = DEFAULT_LAS) -> list[dict]:
    """``rows`` synthetic establishments as {column: text}. About 62 % are open, 3 % open but proposed to close,
    the rest closed; a fifth of the academies replace a closed school of the same name."""
    rng = random.Random(seed)
    places = _places(rng)
    weights = [k[-1] for k in _KINDS]
    by_name = {k[0]: k for k in _KINDS}
    urns = list(range(100000, 100000 + rows * 3))
    rng.shuffle(urns)
    urn_iter = iter(urns)
    out: list[dict] = []
    for name, kind_name, status, la_index in _LANDMARKS:
        if len(out) >= rows:
            break
        la_index = la_index % len(las)
        out.append(_record(rng, next(urn_iter), name, by_name[kind_name], status, la_index, las,
                           name.split()[0].strip("’'"), 2024))
    while len(out) < rows:
        r = rng.random()  # the first two LAs (a county and its city) a little larger than the rest
        la_index = 0 if r < 0.03 else 1 % len(las) if r < 0.04 else rng.randrange(len(las))
        kind = rng.choices(_KINDS, weights)[0]
        place = places[rng.randrange(len(places))]
        name = kind[6].format(place=place, saint=rng.choice(_SAINTS))
        if kind[0] == "welsh_medium":
            name = rng.choice(("École ", "Ysgol ", "Lycée ")) + place
        elif kind[0] == "ce_primary" and rng.random() < 0.15:
            name = name.replace("'", "’")  # GIAS has a few curly apostrophes
        r = rng.random()
        status = "Open" if r < 0.62 else "Open, but proposed to close" if r < 0.65 else "Closed"
        out.append(_record(rng, next(urn_iter), name, kind, status, la_index, las, place, 2024))
        if kind[2] == "Academies" and status != "Closed" and rng.random() < 0.2 and len(out) < rows:
            # the maintained school this academy replaced: same name, its own URN, closed
            predecessor = by_name["community_primary" if kind[3] == "Primary" else "comprehensive"]
            out.append(_record(rng, next(urn_iter), name, predecessor, "Closed", la_index, las, place, 2024))
    rng.shuffle(out)
    return out[:rows]


def gias_bytes(records: list[dict], *, encoding: str = "cp1252", columns: tuple[str, ...] = GIAS_COLUMNS) -> bytes:
    """A GIAS-shaped CSV of ``records`` ({column: value}; columns not given are blank), CRLF line ends like the
    download. ``encoding`` "cp1252" (the real file's) or "utf-8-sig"."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for rec in records:
        writer.writerow([rec.get(c, "") for c in columns])
    return buf.getvalue().encode(encoding)


def write_gias_csv(path: str | Path, rows: int = 50_000, seed: int = 1,
                   las: tuple[str, ...] = DEFAULT_LAS) -> Path:
    """Write a synthetic ``edubasealldata``-like CSV (Windows-1252, ~130 columns) of ``rows`` establishments."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gias_bytes(generate_gias_records(rows, seed, tuple(las))))
    return path


# ---------------------------------------------------------------------------------------------- typed names

_TYPO_KEYS = "abcdefghijklmnopqrstuvwxyz"


def _typo(rng: random.Random, text: str) -> str:
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if len(letters) < 6:
        return text
    i = rng.choice(letters[2:])
    op = rng.randrange(3)
    if op == 0:  # drop a letter
        return text[:i] + text[i + 1:]
    if op == 1:  # double a letter
        return text[:i] + text[i] + text[i:]
    return text[:i] + rng.choice(_TYPO_KEYS) + text[i + 1:]  # a wrong letter


def _abbreviate(rng: random.Random, name: str) -> str:
    swaps = [("Church of England", rng.choice(("CofE", "C of E", "C.E.", "CE", "Church of England"))),
             ("Roman Catholic", rng.choice(("RC", "R.C.", "Roman Catholic"))),
             ("St ", rng.choice(("St ", "St. ", "Saint "))), ("Primary School", rng.choice(
                 ("Primary", "Pri Sch", "Prim", "Primary School", "Primary Sch"))),
             ("Junior School", rng.choice(("Junior", "Jnr School", "Juniors", "Junior Sch"))),
             ("Infant School", rng.choice(("Infants", "Inf School", "Infant"))),
             ("Academy", rng.choice(("Academy", "Acad", "Academy"))), ("’", "'"), ("'", rng.choice(("", "'")))]
    for old, new in swaps:
        if rng.random() < 0.7:
            name = name.replace(old, new)
    if name.startswith("The ") and rng.random() < 0.5:
        name = name[4:]
    if name.endswith(" School") and rng.random() < 0.4:
        name = name[:-7]
    return name


def typed_school_samples(schools: list[dict], n: int, seed: int = 1) -> list[tuple[str, dict | None]]:
    """``n`` (typed name, the school it was typed from or None) pairs from ``schools`` ([{name, ...}]): names as
    police officers type them (abbreviated, case and punctuation changed, dropped words, a misspelt letter), plus
    about 3 % "home educated" and 2 % blank."""
    rng = random.Random(seed)
    home = ("Home educated", "home ed", "EHE", "Elective Home Education", "HOME EDUCATED")
    out: list[tuple[str, dict | None]] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.03:
            out.append((rng.choice(home), None))
            continue
        if r < 0.05:
            out.append((rng.choice(("", " ")), None))
            continue
        school = rng.choice(schools)
        name = _abbreviate(rng, school["name"])
        r = rng.random()
        if r < 0.12:
            name = _typo(rng, name)
        elif r < 0.3:
            name = name.upper()
        elif r < 0.4:
            name = name.lower()
        out.append((name, school))
    return out


def typed_school_names(schools: list[dict], n: int, seed: int = 1) -> list[str]:
    """Just the typed names of ``typed_school_samples``."""
    return [typed for typed, _ in typed_school_samples(schools, n, seed)]
