"""Synthetic police domestic-abuse notification extracts, for tests, benchmarks and newcomers.

Everything here is made up: names are drawn from pools of common British names, addresses use invented streets
and towns with postcodes in the areas ``NX`` and ``KX`` (shaped like UK postcodes, but no real area uses them),
and all references are invented. Output is deterministic for a seed (``random.Random(seed)``); nothing touches the
network and only the standard library and openpyxl are used.

Three steps, usable separately:

* :func:`generate_notifications` – canonical records (one dict per notification, DA Daily's own values);
* :func:`rows_for` – header and rows in one import profile's layout and spellings;
* :func:`write_rows` – an ``.xlsx`` (openpyxl write-only, fast enough for 100,000 rows) or ``.csv`` file.

:func:`write_extract` chains the last two for a profile and :func:`write_samples` writes the small sample files.
"""
from __future__ import annotations

import csv
import datetime as dt
import gc
import random
import tomllib
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "generate_notifications",
    "rows_for",
    "write_rows",
    "write_extract",
    "write_samples",
    "excel_number_format",
]

# ---------------------------------------------------------------------------------------------------------------
# Pools. Tuples only (no module-level mutable state). Every string must be encodable in cp1252, because the Athena
# profile's extracts are Windows-1252 CSV files: so "Zoë", "Siân" and "Wójcik" yes, but no "Ł" or "ś".
# ---------------------------------------------------------------------------------------------------------------

FEMALE_FORENAMES = (
    "Olivia", "Amelia", "Isla", "Ava", "Emily", "Sophie", "Jessica", "Chloe", "Lily", "Grace", "Ella", "Mia",
    "Evie", "Ruby", "Poppy", "Charlotte", "Hannah", "Lucy", "Emma", "Sarah", "Laura", "Rebecca", "Gemma", "Kirsty",
    "Amy", "Claire", "Nicola", "Michelle", "Lisa", "Karen", "Joanne", "Kelly", "Donna", "Stacey", "Leanne",
    "Danielle", "Natalie", "Katie", "Jade", "Shannon", "Chelsea", "Courtney", "Paige", "Megan", "Bethany", "Zoë",
    "Siân", "Chloë", "Niamh", "Aoife", "Saoirse", "Ffion", "Cerys", "Bethan", "Anne-Marie", "Mary-Jane", "Renée",
    "Aisha", "Fatima", "Amira", "Priya", "Zainab", "Noor", "Agnieszka", "Katarzyna", "Joanna", "Chidinma", "Abena",
    "Maria", "Ioana", "Elena", "Tracey", "Sharon", "Julie", "Dawn", "Susan", "Linda", "Margaret", "Jacqueline",
    "Samantha", "Victoria", "Jennifer", "Stephanie", "Toni", "Kayleigh", "Demi", "Leah", "Holly", "Abigail",
    "Jasmine", "Naomi", "Tanya", "Louise", "Helen", "Rachel", "Amanda", "Carly", "Sinéad", "Róisín", "Éabha",
    "Nadia", "Yasmin", "Shabana", "Sadia", "Gurpreet", "Harpreet", "Simran", "Oluwaseun", "Blessing", "Precious",
)
MALE_FORENAMES = (
    "Oliver", "Jack", "Harry", "George", "Noah", "Charlie", "Jacob", "Alfie", "Freddie", "Oscar", "Leo", "Thomas",
    "James", "Daniel", "Joshua", "Liam", "Connor", "Callum", "Ryan", "Jordan", "Kyle", "Dean", "Lee", "Darren",
    "Craig", "Wayne", "Scott", "Mark", "Paul", "Stephen", "David", "Andrew", "Michael", "Christopher", "Matthew",
    "Jamie", "Ashley", "Carl", "Gareth", "Rhys", "Dafydd", "Seán", "Ciarán", "Eoin", "Mohammed", "Muhammad",
    "Ahmed", "Imran", "Bilal", "Hassan", "Tomasz", "Piotr", "Kamil", "Marek", "Chukwuemeka", "Kwame", "Kofi",
    "Emeka", "José", "André", "Jean-Paul", "Kai", "Tyler", "Reece", "Brandon", "Mason", "Lewis", "Aaron", "Shane",
    "Gary", "Kevin", "Ian", "Neil", "Robert", "John", "Peter", "Anthony", "Barry", "Terry", "Lee-Roy", "Jay",
    "Nathan", "Adam", "Luke", "Sam", "Ben", "Joe", "Declan", "Brendan", "Padraig", "Iwan", "Owain", "Rajesh",
    "Sandeep", "Arjun", "Kieran", "Jérôme", "Dominic", "Stuart", "Graham", "Martin", "Simon", "Jason", "Wesley",
)
# Children get names common in the last eighteen years (the adult pools skew older).
GIRL_FORENAMES = (
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Isabella", "Rosie", "Sophia", "Grace", "Willow",
    "Freya", "Florence", "Emily", "Ella", "Poppy", "Evie", "Elsie", "Charlotte", "Evelyn", "Sienna", "Daisy",
    "Phoebe", "Harper", "Millie", "Ruby", "Matilda", "Maya", "Aria", "Zoë", "Chloë", "Siân", "Niamh", "Nevaeh",
    "Amira", "Hafsa", "Maryam", "Zuzanna", "Lena", "Esmé", "Mollie", "Lacey-Mae", "Lexi", "Layla", "Skye",
)
BOY_FORENAMES = (
    "Noah", "Oliver", "George", "Arthur", "Muhammad", "Leo", "Harry", "Oscar", "Archie", "Henry", "Theodore",
    "Freddie", "Jack", "Charlie", "Theo", "Alfie", "Jacob", "Thomas", "Finley", "Arlo", "William", "Lucas",
    "Roman", "Tommy", "Isaac", "Teddy", "Alexander", "Luca", "Edward", "James", "Joshua", "Albie", "Elijah",
    "Max", "Mohammed", "Reuben", "Mason", "Logan", "Riley", "Tyler-James", "Kacper", "Jakub", "Ibrahim", "Zain",
    "Rhys", "Osian", "Cian", "Oisín", "Jayden", "Harley", "Ronnie",
)
SURNAMES = (
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas", "Johnson", "Roberts",
    "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes", "Green", "Hall", "Lewis", "Harris",
    "Clarke", "Patel", "Jackson", "Wood", "Turner", "Martin", "Cooper", "Hill", "Ward", "Morris", "Moore",
    "Clark", "Lee", "King", "Baker", "Harrison", "Morgan", "Allen", "James", "Scott", "Phillips", "Watson",
    "Davis", "Parker", "Price", "Bennett", "Young", "Griffiths", "Mitchell", "Kelly", "Cook", "Carter",
    "Richardson", "Bailey", "Collins", "Bell", "Shaw", "Murphy", "Miller", "Cox", "Richards", "Khan", "Marshall",
    "Anderson", "Simpson", "Ellis", "Adams", "Singh", "Begum", "Wilkinson", "Foster", "Chapman", "Powell", "Webb",
    "Rogers", "Gray", "Mason", "Ali", "Hunt", "Hussain", "Campbell", "Matthews", "Owen", "Palmer", "Holmes",
    "Mills", "Barnes", "Knight", "Lloyd", "Butler", "Russell", "Barker", "Fisher", "Stevens", "Jenkins",
    "Murray", "Dixon", "Harvey", "Graham", "Pearson", "Ahmed", "Fletcher", "Walsh", "Kaur", "Gibson", "Howard",
    "Andrews", "Stewart", "Elliott", "Reynolds", "Saunders", "Payne", "Fox", "Ford", "Pearce", "Day", "Brooks",
    "West", "Lawrence", "Cole", "Atkinson", "Bradley", "Spencer", "Gill", "Dawson", "Ball", "Burton", "O'Brien",
    "Watts", "Rose", "Booth", "Perry", "Ryan", "Grant", "Wells", "Armstrong", "Francis", "Rees", "Hayes", "Hart",
    "Hudson", "Newman", "Barrett", "Webster", "Hunter", "Gregory", "Carr", "Lowe", "Page", "Marsh", "Riley",
    "Dunn", "Woods", "Parsons", "Berry", "Stone", "Reid", "Holland", "Hawkins", "Harding", "Porter",
    "Robertson", "Newton", "Oliver", "Reed", "Kennedy", "Williamson", "Bird", "Gardner", "Shah", "Dean", "Lane",
    "Cooke", "Bates", "Henderson", "Parry", "Burgess", "Bishop", "Walton", "Burns", "Nicholson", "Shepherd",
    "Ross", "Cross", "Long", "Freeman", "Warren", "Nicholls", "Hamilton", "Byrne", "Sutton", "McDonald", "Yates",
    "Hodgson", "Robson", "Curtis", "Hopkins", "O'Connor", "Harper", "Coleman", "Watkins", "Moss", "McCarthy",
    "Chambers", "O'Neill", "Griffin", "Sharp", "Hardy", "Wheeler", "Potter", "Osborne", "Johnston", "Gordon",
    "Doyle", "Wallace", "George", "Jordan", "Hutchinson", "Rahman", "Nowak", "Kowalski", "Wójcik", "Okafor",
    "Adeyemi", "Mensah", "Osei", "Nguyen", "Smith-Jones", "Lloyd-Davies", "Ashworth-Hill", "O'Sullivan",
    "MacLeod", "McKenzie", "D'Souza", "Ní Bhriain", "Fernández", "Müller", "Kovács", "Novák", "Popescu",
    "Mahmood", "Iqbal", "Chowdhury", "Miah", "Uddin", "Akhtar", "Sandhu", "Chauhan", "Mistry", "Ogunleye",
    "Boateng", "Asante", "Da Silva", "Santos", "Ferreira", "Kaminski", "Lewandowski", "Zielinski", "Horvat",
    "Evans-Price", "Hughes-Morgan", "MacDonald", "McLaughlin", "Fitzgerald", "Ó Súilleabháin",
)

FEMALE, MALE = "Female", "Male"

TOWNS = (  # (town, postcode area, first district, last district)
    ("Northtown", "NX", 1, 9), ("Ashby Fields", "NX", 10, 14), ("Millford", "NX", 15, 18),
    ("Eastholme", "NX", 19, 22), ("Westcombe", "KX", 1, 6), ("Kingsbridge Vale", "KX", 7, 10),
    ("Brackenridge", "KX", 11, 15), ("Oakley Green", "KX", 16, 19),
)
STREETS = (
    "Mill Lane", "Acacia Avenue", "Station Road", "Church Street", "Victoria Road", "Park View", "Oak Close",
    "Meadow Way", "Chestnut Grove", "Queen's Road", "St John's Close", "Elm Drive", "High Street", "Albert Street",
    "Coronation Road", "Windsor Crescent", "Beech Walk", "Hawthorn Rise", "Manor Farm Road", "Lime Tree Court",
    "Sycamore Road", "The Paddocks", "Orchard Lane", "Cedar Gardens", "Brook Street", "Valley Road", "Stanley Terrace",
    "Kingfisher Way", "Willow Bank", "Foxglove Close", "Railway Cottages", "Bridge Street", "Market Place",
    "Gladstone Street", "Nelson Road", "Primrose Hill", "Heather Lea", "Bluebell Drive", "Ashfield Avenue",
)
BLOCKS = ("Kestrel House", "Bramley Court", "Heron Point", "Lark Rise", "Tower View", "Mercia House", "Fern Court")
PUBLIC_PLACES = (
    "Outside {num} {street}", "Car park of Aldmart, {street}", "The Red Lion public house, {street}",
    "Bus stop, {street}", "Rear of the Co-op, {street}", "Play park off {street}", "Petrol station, {street}",
)
# Postcode inward units: digit + two letters, never C, I, K, M, O or V (as in the real scheme).
UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

# (offence, Home Office code, weight). Codes are plausible, not authoritative: this is synthetic data.
CRIME_OFFENCES = (
    ("Common assault and battery", "105A", 30),
    ("Assault occasioning actual bodily harm", "8N", 22),
    ("Controlling or coercive behaviour in an intimate or family relationship", "8U", 10),
    ("Stalking", "8Q", 6),
    ("Harassment", "8L", 9),
    ("Threats to kill", "3B", 4),
    ("Criminal damage to a dwelling", "58J", 7),
    ("Malicious communications", "8R", 5),
    ("Intentional strangulation or suffocation", "8S", 3),
    ("Assault with intent to cause serious harm", "5D", 1),
)
NON_CRIME_OFFENCES = (
    ("Domestic incident - verbal argument", 55),
    ("Domestic incident - concern for welfare", 20),
    ("Domestic incident - breach of the peace", 10),
    ("Domestic incident - third party report", 15),
)
CRIME_SHARE = 0.68

# (relationship of the suspect to the victim, kind, weight). "Son" means the suspect is the victim's son.
RELATIONSHIPS = (
    ("Ex-partner", "intimate", 34), ("Partner", "intimate", 30), ("Spouse", "intimate", 8),
    ("Ex-spouse", "intimate", 3), ("Son", "child", 7), ("Daughter", "child", 3), ("Father", "parent", 2),
    ("Mother", "parent", 2), ("Brother", "sibling", 3), ("Sister", "sibling", 1), ("Grandson", "grandchild", 1),
    ("Other family member", "sibling", 2),
)
INTIMATE_RELATIONSHIPS = RELATIONSHIPS[:4]
SUSPECT_GENDER = MappingProxyType({"Son": MALE, "Father": MALE, "Brother": MALE, "Grandson": MALE,
                                   "Daughter": FEMALE, "Mother": FEMALE, "Sister": FEMALE})

# (canonical risk, weight, lowest DASH score, highest DASH score)
RISKS = (("high", 15, 14, 27), ("medium", 35, 10, 13), ("standard", 45, 1, 9), ("not_assessed", 5, None, None))

# Schools as police officers type them: each tuple is one school's spellings.
PRIMARY_SCHOOLS = (
    ("St Mary's CofE Primary School", "St Marys CofE Primary", "St. Mary's C of E Primary", "St Marys Pri"),
    ("Hillside Primary School", "Hillside Primary", "Hillside Pri", "Hillside"),
    ("Oakfield Junior School", "Oakfield Juniors", "Oakfield Jnr"),
    ("Northtown Infant School", "Northtown Infants", "Northtown Inf Sch"),
    ("Our Lady of Lourdes RC Primary", "Our Lady of Lourdes", "OLOL Primary"),
    ("Brackenridge Community Primary", "Brackenridge Primary", "Brackenridge CP"),
    ("Willow Bank Primary Academy", "Willow Bank Academy", "Willowbank Primary"),
    ("Ashby Fields Primary", "Ashby Fields Pri", "Ashby Flds Primary"),
)
SECONDARY_SCHOOLS = (
    ("Sherwood Academy", "Sherwood Acadamy", "Sherwood Acad"),
    ("Northtown High School", "Northtown High", "NHS Northtown"),
    ("Kingsbridge Vale School", "Kingsbridge School", "KV School"),
    ("St Thomas More Catholic Academy", "St Thomas More", "St. Thomas More RC"),
    ("Eastholme Academy", "Eastholme Acad", "Eastholme"),
    ("The Westcombe School", "Westcombe School", "Westcombe Sec"),
)
COLLEGES = (("Northtown College", "Northtown Coll"), ("Kingsbridge Sixth Form", "KV Sixth Form"),
            ("Not in education", "NEET"))
HOME_EDUCATED = "Home educated"

HOUR_WEIGHTS = (5, 4, 3, 2, 2, 1, 1, 1, 2, 2, 3, 3, 3, 3, 3, 4, 4, 5, 6, 7, 8, 8, 8, 7)  # evenings and nights

# Circumstances: sentences assembled per notification. {vs}/{vo}/{vp} are the victim's pronouns (she/her/her),
# {ss}/{so}/{sp} the suspect's; {rel} is e.g. "her ex-partner".
TOPICS = ("finances", "child contact arrangements", "the suspect's drinking", "messages on social media",
          "who the victim had been texting", "moving out", "housework", "money owed for rent", "a new partner")
ASSAULT_ACTS = ("pushed {vo} against the wall", "slapped {vo} across the face",
                "grabbed {vo} by the arm, causing bruising", "punched {vo} to the head",
                "threw a mug at {vo}", "dragged {vo} by the hair", "kicked {vo} while {vs} was on the floor",
                "headbutted {vo}")
OPENINGS = MappingProxyType({
    "assault": (
        "A verbal argument between the victim and {rel} about {topic} escalated when the suspect {act}.",
        "The suspect returned home intoxicated, accused the victim of cheating and {act}.",
        "Following an argument about {topic}, the suspect {act}.",
        "The suspect attended the address in breach of bail conditions and {act}.",
    ),
    "coercive": (
        "The victim disclosed a pattern of controlling behaviour over several months: the suspect monitors {vp} "
        "phone, restricts {vp} access to money and stops {vo} seeing friends and family.",
        "The victim reports that {rel} has isolated {vo} from family, takes {vp} wages and checks {vp} location "
        "throughout the day.",
    ),
    "stalking": (
        "The victim reports the suspect has repeatedly turned up at {vp} workplace and home address and has sent "
        "dozens of unwanted messages since the relationship ended.",
        "Since the separation the suspect has followed the victim to the school gates and been seen parked outside "
        "{vp} address most evenings.",
    ),
    "threats": (
        "During an argument about {topic} the suspect threatened to kill the victim if {vs} ended the relationship.",
        "The suspect sent the victim voice notes saying {ss} would kill {vo} and then take {sp} own life.",
    ),
    "damage": (
        "The suspect kicked the front door and smashed a window at the victim's address after being refused entry.",
        "After an argument about {topic} the suspect damaged the victim's phone and broke the living room door.",
    ),
    "comms": (
        "The victim has received a large number of abusive texts and calls from {rel} after blocking {so} on social "
        "media.",
    ),
    "non_crime": (
        "A verbal argument between the victim and {rel} about {topic}; no offences disclosed and no injuries seen.",
        "Concern for welfare call after shouting was heard from the address. Both parties spoken to separately and "
        "no offences disclosed.",
        "The victim asked police to remove {rel} from the address after a heated argument about {topic}.",
        "A third party reported hearing a disturbance. Officers attended and found the victim and {rel} arguing "
        "about {topic}.",
    ),
})
OFFENCE_KIND = MappingProxyType({"105A": "assault", "8N": "assault", "5D": "assault", "8S": "assault",
                                 "8U": "coercive", "8Q": "stalking", "8L": "stalking", "3B": "threats",
                                 "58J": "damage", "8R": "comms"})
INTIMATE_WORDS = ("cheating", "relationship", "separation")
CALLERS = ("A neighbour called police after hearing shouting and banging.",
           "The victim called 999 from the bathroom.",
           "The victim's mother called police after receiving a text from {vo}.",
           "The victim reported it at the front counter the following day.",
           "An anonymous caller reported a disturbance at the address.",
           "A passer-by called police after seeing the suspect shouting in the street.")
CHILD_CALLER = "One of the children called police from an upstairs bedroom."
OUTCOMES = ("The suspect was arrested at the scene and taken into custody.",
            "The suspect left before police arrived and is outstanding.",
            "The victim declined to support a prosecution.",
            "DASH completed with the victim and safeguarding advice given.",
            "Body-worn video captured the victim's first account.",
            "The suspect was interviewed and released on bail with conditions not to contact the victim.",
            "The victim has gone to stay with family for the night.",
            "Photographs of the damage and injuries were taken.")
FILLERS = ("Officers gave safeguarding advice and details of local support services.",
           "Referral made to the IDVA service.",
           "Previous domestic incidents are recorded between the same parties.",
           "The victim was visibly upset and shaking when officers arrived.")


# ---------------------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------------------

def generate_notifications(n: int, *, seed: int = 0, start: dt.date | None = None, days: int = 30,
                           repeat_share: float = 0.25) -> list[dict]:
    """``n`` synthetic notifications in DA Daily's canonical values, in incident order (the order a police report
    sorted by occurrence number would have).

    Incidents fall in ``days`` days from ``start`` (default: ``days`` days before today, so up to last midnight);
    a window reaching past now is cut at now, so no date is ever in the future. About ``repeat_share`` of the
    notifications reuse a victim from an earlier one (same ``person_id`` and date of birth), usually with the same
    suspect and children. The same seed, ``start`` and ``days`` give the same records whenever the window lies
    wholly in the past (the default ``start`` moves with the date, and the records with it).
    """
    if n < 0:
        raise ValueError("n must not be negative")
    if days < 1:
        raise ValueError("days must be at least 1")
    if not 0.0 <= repeat_share <= 1.0:
        raise ValueError("repeat_share must be between 0 and 1")
    now = dt.datetime.now().replace(second=0, microsecond=0)
    if start is None:
        start = dt.date.today() - dt.timedelta(days=days)
    window_start = dt.datetime.combine(start, dt.time())
    window_end = min(window_start + dt.timedelta(days=days), now)
    if window_end <= window_start:
        raise ValueError(f"start {start:%d/%m/%Y} is in the future")
    # The records are plain acyclic dicts, so the cyclic garbage collector only re-scans the growing list again
    # and again (it roughly doubles the time for 100,000 records). Pause it and restore it as it was.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _Generator(random.Random(seed), n, window_start, window_end, repeat_share).run()
    finally:
        if gc_was_enabled:
            gc.enable()


class _Generator:
    """One generation run. Holds the run's random stream, reference counters and the people seen so far."""

    def __init__(self, rng: random.Random, n: int, window_start: dt.datetime, window_end: dt.datetime,
                 repeat_share: float):
        self.rng = rng
        self.n = n
        self.window_start = window_start
        self.window_end = window_end
        self.repeat_share = repeat_share
        # References only ever increase, so they are unique; the steps leave gaps like a real force's numbering
        # (other occurrences in between) while keeping six digits for up to ~900,000 notifications.
        self.police_seq = rng.randint(10_000, 99_999)
        self.police_step = max(1, min(12, (999_999 - self.police_seq) // max(n, 1)))
        self.crime_seq = rng.randint(10_000, 29_999)
        self.crime_step = max(1, min(5, (99_999 - self.crime_seq) // max(int(n * CRIME_SHARE) + 1, 1)))
        self.person_seq = rng.randint(1_000, 400_000)
        self._cum_weights: dict[tuple[int, int], list] = {}
        collars = rng.sample(range(1000, 10000), 80)
        self.officers = tuple(
            f"{rng.choices(('PC', 'DC', 'PS'), (85, 10, 5))[0]} {c} {rng.choice(SURNAMES)}" for c in collars
        )

    # -- small helpers ------------------------------------------------------------------------------------------

    def _weighted(self, items: Sequence[tuple], weight_at: int):
        # Cumulative weights are worked out once per pool (choices() would redo it on every call).
        key = (id(items), weight_at)
        cum = self._cum_weights.get(key)
        if cum is None:
            cum = self._cum_weights[key] = list(accumulate(it[weight_at] for it in items))
        return self.rng.choices(items, cum_weights=cum)[0]

    def _person_id(self) -> str:
        self.person_seq += self.rng.randint(1, 7)
        return f"P{self.person_seq:07d}"

    def _postcode(self, town: tuple) -> str:
        _, area, lo, hi = town
        rng = self.rng
        return f"{area}{rng.randint(lo, hi)} {rng.randint(1, 9)}{rng.choice(UNIT_LETTERS)}{rng.choice(UNIT_LETTERS)}"

    def _address(self) -> str:
        """"LINE, TOWN, POSTCODE" – the location and postcode columns split it at the last comma."""
        rng = self.rng
        town = rng.choice(TOWNS)
        street = rng.choice(STREETS)
        if rng.random() < 0.15:
            line = f"Flat {rng.randint(1, 40)}, {rng.choice(BLOCKS)}, {street}"
        else:
            line = f"{rng.randint(1, 180)} {street}"
        return f"{line}, {town[0]}, {self._postcode(town)}"

    def _dob(self, on: dt.date, age_lo: int, age_hi: int) -> dt.date:
        """A date of birth making the person ``age_lo``..``age_hi`` years old on ``on``."""
        earliest = on - dt.timedelta(days=int((age_hi + 1) * 365.25) - 2)
        latest = on - dt.timedelta(days=int(age_lo * 365.25) + 1)
        return earliest + dt.timedelta(days=self.rng.randint(0, max(0, (latest - earliest).days)))

    def _person(self, gender: str, on: dt.date, age_lo: int, age_hi: int, surname: str | None = None,
                address: str | None = None) -> dict:
        rng = self.rng
        return {
            "surname": surname or rng.choice(SURNAMES),
            "forename": rng.choice(FEMALE_FORENAMES if gender == FEMALE else MALE_FORENAMES),
            "dob": self._dob(on, age_lo, age_hi),
            "gender": gender,
            "person_id": self._person_id(),
            "address": address or self._address(),
        }

    # -- people -------------------------------------------------------------------------------------------------

    def _new_victim(self, on: dt.date, kind: str) -> dict:
        rng = self.rng
        if kind == "intimate":
            gender = FEMALE if rng.random() < 0.8 else MALE
            age = 16 + int(rng.triangular(0, 50, 12)) if rng.random() < 0.97 else rng.randint(16, 17)
        elif kind in ("child", "grandchild"):  # the suspect is the victim's (grand)child: the victim is older
            gender = FEMALE if rng.random() < 0.7 else MALE
            age = rng.randint(58, 88) if kind == "grandchild" else rng.randint(38, 80)
        elif kind == "parent":
            gender = FEMALE if rng.random() < 0.6 else MALE
            age = rng.randint(16, 40)
        else:
            gender = FEMALE if rng.random() < 0.65 else MALE
            age = rng.randint(16, 60)
        return self._person(gender, on, age, age)

    def _new_suspect(self, victim: dict, relationship: str, kind: str, on: dt.date) -> dict:
        rng = self.rng
        v_age = _age(victim["dob"], on)
        gender = SUSPECT_GENDER.get(relationship)
        if gender is None:  # intimate or "other family member"
            opposite = MALE if victim["gender"] == FEMALE else FEMALE
            gender = opposite if rng.random() < 0.93 else victim["gender"]
        if kind == "intimate":
            age = max(16, v_age + int(rng.gauss(2, 5)))
        elif kind == "child":
            age = max(16, v_age - rng.randint(18, 38))
        elif kind == "grandchild":
            age = rng.randint(16, max(16, min(35, v_age - 40)))
        elif kind == "parent":
            age = v_age + rng.randint(18, 38)
        else:
            age = max(16, v_age + rng.randint(-12, 12))
        # Family members often share the surname; cohabiting partners often share the address.
        surname = victim["surname"] if kind != "intimate" and rng.random() < 0.7 else None
        if kind == "intimate" and relationship == "Spouse" and rng.random() < 0.6:
            surname = victim["surname"]
        same_address = rng.random() < (0.55 if relationship in ("Partner", "Spouse") or kind in ("child", "parent")
                                       else 0.08)
        suspect = self._person(gender, on, age, age, surname, victim["address"] if same_address else None)
        if not same_address and rng.random() < 0.04:
            suspect["address"] = "No fixed abode"
        return suspect

    def _children(self, victim: dict, suspect: dict, kind: str, on: dt.date) -> list[dict]:
        rng = self.rng
        v_age = _age(victim["dob"], on)
        if kind == "intimate":
            p = 0.72 if 18 <= v_age <= 45 else 0.5 if v_age <= 55 else 0.1 if v_age >= 18 else 0.15
        else:
            p = 0.3
        if rng.random() >= p:
            return []
        count = rng.choices((1, 2, 3, 4), cum_weights=(45, 75, 92, 100))[0]
        # Children are under 18 and (for the victim's own) born after the victim turned 16.
        max_age = max(0, min(17, v_age - 16)) if kind in ("intimate", "parent", "sibling") else 17
        kids = []
        for _ in range(count):
            if rng.random() < 0.06 or max_age == 0:
                age_days = rng.randint(7, 364)  # babies: ages under one turn up often in DA notifications
            else:
                age_days = rng.randint(7, (max_age + 1) * 365 - 60)  # short of the birthday: repeats come later
            dob = on - dt.timedelta(days=age_days)
            gender = FEMALE if rng.random() < 0.5 else MALE
            r = rng.random()
            if r < 0.55 or kind != "intimate":
                surname = victim["surname"]
            elif r < 0.85:
                surname = suspect["surname"]
            elif r < 0.95 and "-" not in victim["surname"] + suspect["surname"] and " " not in victim["surname"] \
                    + suspect["surname"]:
                surname = f"{victim['surname']}-{suspect['surname']}"
            else:
                surname = rng.choice(SURNAMES)  # a previous partner's child
            kids.append({
                "surname": surname,
                "forename": rng.choice(GIRL_FORENAMES if gender == FEMALE else BOY_FORENAMES),
                "dob": dob,
                "gender": gender,
                "school": self._school(age_days // 365),
                "present": rng.random() < 0.45,
            })
        kids.sort(key=lambda k: k["dob"])  # eldest first, as extracts usually list them
        return kids

    def _school(self, age: int) -> str | None:
        rng = self.rng
        if age < 4:
            return None
        if age <= 15 and rng.random() < 0.03:
            return HOME_EDUCATED
        pool = PRIMARY_SCHOOLS if age <= 10 else SECONDARY_SCHOOLS if age <= 15 else COLLEGES
        return rng.choice(rng.choice(pool))

    # -- notifications --------------------------------------------------------------------------------------------

    def _incident_times(self) -> list[dt.datetime]:
        rng = self.rng
        span = int((self.window_end - self.window_start).total_seconds() // 60)  # minutes in the window
        n_days = -(-span // 1440)
        days = range(n_days)
        day_cum = list(accumulate(1.3 if (self.window_start + dt.timedelta(days=d)).weekday() >= 5 else 1.0
                                  for d in days))  # weekends are busier
        hours = range(24)
        hour_cum = list(accumulate(HOUR_WEIGHTS))
        times = []
        for _ in range(self.n):
            for _attempt in range(20):  # the last day may be cut short at "now"; redraw a time past it
                day = rng.choices(days, cum_weights=day_cum)[0]
                minute = day * 1440 + rng.choices(hours, cum_weights=hour_cum)[0] * 60 + rng.randrange(60)
                if minute < span:
                    break
            else:
                minute = rng.randrange(span)
            times.append(self.window_start + dt.timedelta(minutes=minute))
        times.sort()
        return times

    def _reported(self, incident: dt.datetime) -> dt.datetime:
        rng = self.rng
        # Most are reported within the hour; a tail up to 48 hours; never after the window's end (never future).
        delay = min(2880, rng.randint(1, 45) + int(rng.random() ** 4 * 2880))
        room = int((self.window_end - incident).total_seconds() // 60)
        return incident + dt.timedelta(minutes=max(0, min(delay, room)))

    def _police_ref(self, when: dt.datetime) -> str:
        self.police_seq += self.rng.randint(1, self.police_step)
        return f"NP/{when:%y}/{self.police_seq:06d}"

    def _crime_ref(self, when: dt.datetime) -> str:
        self.crime_seq += self.rng.randint(1, self.crime_step)
        return f"CR/{self.crime_seq:05d}/{when:%y}"

    def run(self) -> list[dict]:
        rng = self.rng
        records: list[dict] = []
        for incident in self._incident_times():
            on = incident.date()
            # People: a repeat reuses an earlier victim (same person id and date of birth), usually with the same
            # suspect and children; otherwise everyone is new (and now and then a known suspect has a new victim).
            if records and rng.random() < self.repeat_share:
                prev = records[rng.randrange(len(records))]
                victim = dict(prev["victim"])
                if rng.random() < 0.85:
                    suspect = dict(prev["perpetrator"])
                    relationship = prev["relationship"]
                    if relationship == "Partner" and rng.random() < 0.2:
                        relationship = "Ex-partner"  # they separated since
                    kind = _kind(relationship)
                else:
                    relationship, kind, _w = self._weighted(INTIMATE_RELATIONSHIPS, 2)
                    suspect = self._new_suspect(victim, relationship, kind, on)
                if prev["children"] and rng.random() < 0.85:
                    # The same children (minus any who have turned 18 since), present this time or not.
                    children = [dict(c, present=rng.random() < 0.45)
                                for c in prev["children"] if _age(c["dob"], on) < 18]
                else:
                    children = self._children(victim, suspect, kind, on)
            else:
                relationship, kind, _w = self._weighted(RELATIONSHIPS, 2)
                victim = self._new_victim(on, kind)
                known = records[rng.randrange(len(records))]["perpetrator"] if records else None
                if known and kind == "intimate" and known["gender"] != victim["gender"] and rng.random() < 0.04:
                    suspect = dict(known)  # a suspect already known with another victim
                else:
                    suspect = self._new_suspect(victim, relationship, kind, on)
                children = self._children(victim, suspect, kind, on)

            reported = self._reported(incident)
            crime = rng.random() < CRIME_SHARE
            if crime:
                offence, ho_code, _w = self._weighted(CRIME_OFFENCES, 2)
            else:
                offence, _w = self._weighted(NON_CRIME_OFFENCES, 1)
                ho_code = None
            risk, _w, lo, hi = self._weighted(RISKS, 1)
            dash = None if lo is None else (lo + int(rng.random() ** 1.6 * (hi - lo + 1)) if risk == "high"
                                            else rng.randint(lo, hi))
            strang_p, weapon_p = {"high": (0.25, 0.2), "medium": (0.08, 0.06)}.get(risk, (0.02, 0.02))
            flags = {
                "pregnancy": victim["gender"] == FEMALE and 16 <= _age(victim["dob"], on) <= 44 and rng.random() < 0.07,
                "strangulation": rng.random() < strang_p or ho_code == "8S",
                "weapons": rng.random() < weapon_p,
            }
            location, postcode = self._location(victim, suspect)
            records.append({
                "police_ref": self._police_ref(reported),
                "crime_ref": self._crime_ref(reported) if crime else None,
                "classification": "crime" if crime else "non_crime",
                "offence": offence,
                "ho_code": ho_code,
                "incident_at": incident,
                "reported_at": reported,
                "location": location,
                "postcode": postcode,
                "risk": risk,
                "dash_score": dash,
                "flag_pregnancy": flags["pregnancy"],
                "flag_strangulation": flags["strangulation"],
                "flag_weapons": flags["weapons"],
                "officer": rng.choice(self.officers),
                "circumstances": self._circumstances(victim, suspect, relationship, ho_code, risk, flags, children,
                                                     on),
                "relationship": relationship,
                "victim": victim,
                "perpetrator": suspect,
                "children": children,
            })
        return records

    def _location(self, victim: dict, suspect: dict) -> tuple[str, str]:
        rng = self.rng
        r = rng.random()
        if r < 0.75:
            address = victim["address"]
        elif r < 0.85 and suspect["address"] not in ("No fixed abode", victim["address"]):
            address = suspect["address"]
        else:
            town = rng.choice(TOWNS)
            place = rng.choice(PUBLIC_PLACES).format(num=rng.randint(1, 180), street=rng.choice(STREETS))
            return f"{place}, {town[0]}", self._postcode(town)
        line, postcode = address.rsplit(", ", 1)
        return line, postcode

    def _circumstances(self, victim: dict, suspect: dict, relationship: str, ho_code: str | None, risk: str,
                       flags: dict, children: list[dict], on: dt.date) -> str:
        """A 150–400 character account, consistent with the offence, flags and children."""
        rng = self.rng
        words = _pronouns(victim["gender"], "v") | _pronouns(suspect["gender"], "s")
        words["rel"] = f"{words['vp']} {relationship.lower()}"
        words["topic"] = rng.choice(TOPICS)
        words["act"] = rng.choice(ASSAULT_ACTS).format(**words)
        templates = OPENINGS[OFFENCE_KIND[ho_code] if ho_code else "non_crime"]
        if _kind(relationship) != "intimate":  # no "cheating" or "since the separation" between mother and son
            templates = tuple(t for t in templates if not any(w in t for w in INTIMATE_WORDS)) or templates
        opening = rng.choice(templates).format(**words)

        optional: list[str] = []
        present = [c for c in children if c["present"]]
        if len(children) > 1 and present and rng.random() < 0.15 and any(_age(c["dob"], on) >= 7 for c in present):
            optional.append(CHILD_CALLER)
        else:
            optional.append(rng.choice(CALLERS).format(**words))
        if flags["strangulation"]:
            optional.append("The victim states the suspect put {sp} hands around {vp} throat and {vs} struggled to "
                            "breathe.".format(**words))
        if flags["weapons"]:
            optional.append("The suspect picked up a kitchen knife during the argument.")
        if flags["pregnancy"]:
            optional.append(f"The victim is {rng.randint(8, 36)} weeks pregnant.")
        if present:
            babies = [c for c in present if (on - c["dob"]).days < 365]
            if babies and rng.random() < 0.5:
                optional.append("The baby was in the room at the time.")
            else:
                optional.append(f"{_count_word(len(present))} present and saw what happened." if rng.random() < 0.5
                                else f"The {_child_word(len(present))} upstairs at the time.")
        elif children:
            who = _child_word(len(children))
            optional.append(f"The {who} at their grandparents' at the time." if rng.random() < 0.5
                            else f"The {who} asleep and did not see the incident.")
        if risk == "not_assessed":
            optional.append("The victim refused to answer the DASH questions.")
        optional.append(rng.choice(OUTCOMES))

        sentences = [opening] + optional
        fillers = list(FILLERS)
        rng.shuffle(fillers)
        while len(" ".join(sentences)) < 150 and fillers:
            sentences.append(fillers.pop())
        while len(" ".join(sentences)) > 400 and len(sentences) > 1:
            sentences.pop(-2 if len(sentences) > 2 else -1)  # keep the outcome; drop detail from the middle out
        return " ".join(_capitalise(s) for s in sentences)


def _kind(relationship: str) -> str:
    return next(k for r, k, _w in RELATIONSHIPS if r == relationship)


def _age(dob: dt.date, on: dt.date) -> int:
    return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))


def _pronouns(gender: str, prefix: str) -> dict[str, str]:
    s, o, p = ("she", "her", "her") if gender == FEMALE else ("he", "him", "his")
    return {f"{prefix}s": s, f"{prefix}o": o, f"{prefix}p": p}


def _count_word(k: int) -> str:
    return {1: "One child was", 2: "Two children were", 3: "Three children were"}.get(k, f"{k} children were")


def _child_word(k: int) -> str:
    return "child was" if k == 1 else "children were"


def _capitalise(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


# ---------------------------------------------------------------------------------------------------------------
# Profile layouts
# ---------------------------------------------------------------------------------------------------------------

FALLBACK_RISK = MappingProxyType({"high": "High", "medium": "Medium", "standard": "Standard", "not_assessed": ""})
FALLBACK_CLASSIFICATION = MappingProxyType({"crime": "Crime", "non_crime": "Non-crime"})
FALLBACK_FLAGS = MappingProxyType({"pregnancy": "Pregnancy", "strangulation": "Strangulation", "weapons": "Weapons"})
FLAG_ORDER = ("pregnancy", "strangulation", "weapons")


def _spellings(profile) -> dict[str, dict[str, str]]:
    """The first spelling the profile's TOML gives for each risk, classification and flag value.

    ``Profile`` only keeps spelling -> value lookups (no order), so the TOML file is read again for "first".
    """
    values: dict = {}
    if getattr(profile, "path", None) is not None and Path(profile.path).exists():
        values = tomllib.loads(Path(profile.path).read_text(encoding="utf-8")).get("values") or {}

    def first(section: str, fallback: dict[str, str]) -> dict[str, str]:
        out = dict(fallback)
        for canonical, spellings in (values.get(section) or {}).items():
            if isinstance(spellings, str):
                spellings = [spellings]
            if spellings:
                out[canonical] = spellings[0]
        return out

    return {"risk": first("risk", FALLBACK_RISK), "classification": first("classification", FALLBACK_CLASSIFICATION),
            "flags": first("flags", FALLBACK_FLAGS)}


def _yn(value: bool | None) -> str | None:
    return None if value is None else "Y" if value else "N"


def _full_name(person: dict, surname_first: bool) -> str:
    if surname_first:
        return f"{person['surname'].upper()}, {person['forename']}"
    return f"{person['forename']} {person['surname']}"


def _field_getter(fld: str, spell: dict[str, dict[str, str]], surname_first: bool) -> Callable[[dict], Any]:
    """How one DA Daily field's cell is filled from a canonical record."""
    for who in ("victim", "perpetrator"):
        if fld.startswith(who + "_"):
            part = fld[len(who) + 1:]
            if part == "name":
                return lambda r, w=who: _full_name(r[w], surname_first)
            return lambda r, w=who, p=part: r[w][p]
    if fld == "incident_date":
        return lambda r: r["incident_at"].date()
    if fld == "incident_time":
        return lambda r: r["incident_at"].time()
    if fld == "reported_date":
        return lambda r: r["reported_at"].date()
    if fld == "reported_time":
        return lambda r: r["reported_at"].time()
    if fld == "risk":
        return lambda r: spell["risk"].get(r["risk"]) or None
    if fld == "classification":
        return lambda r: spell["classification"][r["classification"]]
    if fld.startswith("flag_"):
        return lambda r: _yn(r[fld])
    if fld == "flags":
        return lambda r: "; ".join(spell["flags"][f] for f in FLAG_ORDER if r[f"flag_{f}"]) or None
    return lambda r: r[fld]


def _child_value(child: dict, part: str, surname_first: bool, for_list: bool) -> Any:
    if part == "name":
        return _full_name(child, surname_first)
    if part == "present":
        return _yn(child["present"])
    if part == "dob" and for_list:
        return f"{child['dob']:%d/%m/%Y}"
    return child.get(part)


def rows_for(records: list[dict], profile) -> tuple[list[str], list[list]]:
    """Header and rows of ``records`` in ``profile``'s layout, with only the columns the profile maps.

    Cells hold Python values (``str``, ``datetime``, ``date``, ``time``, ``int`` or ``None``); :func:`write_rows`
    formats them. Children follow the profile's layout: "wide" fills Child 1..max columns (grouped per child),
    "list" joins each part with the profile's separator plus a space (empty parts keep their place), "rows" gives
    one row per child with the notification's columns repeated (a notification without children still gets one
    row, with the child cells empty).
    """
    spec = profile.children
    surname_first = spec is not None and spec.layout == "wide"  # Niche-style "SURNAME, Forename"
    spell = _spellings(profile)
    getters = [_field_getter(f, spell, surname_first) for f in profile.columns]
    header = list(profile.columns.values())
    parts = list(spec.columns) if spec else []

    if spec is None:
        return header, [[g(r) for g in getters] for r in records]

    if spec.layout == "wide":
        for k in range(1, spec.max + 1):
            header.extend(spec.columns[p].replace("{n}", str(k)) for p in parts)
        blank = [None] * len(parts)
        rows = []
        for r in records:
            row = [g(r) for g in getters]
            kids = r["children"][:spec.max]  # a real report has no room for more either
            for child in kids:
                row.extend(_child_value(child, p, True, False) for p in parts)
            row.extend(blank * (spec.max - len(kids)))
            rows.append(row)
        return header, rows

    header.extend(spec.columns[p] for p in parts)
    if spec.layout == "list":
        sep = spec.separator + " " if spec.separator.strip() else spec.separator
        rows = []
        for r in records:
            row = [g(r) for g in getters]
            for p in parts:
                vals = [_child_value(c, p, False, True) for c in r["children"]]
                row.append(sep.join("" if v is None else str(v) for v in vals) if vals else None)
            rows.append(row)
        return header, rows

    # layout "rows"
    rows = []
    blank = [None] * len(parts)
    for r in records:
        base = [g(r) for g in getters]
        if not r["children"]:
            rows.append(base + blank)
        for child in r["children"]:
            rows.append(base + [_child_value(child, p, False, False) for p in parts])
    return header, rows


# ---------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------

_EXCEL_TOKENS = (("%d", "dd"), ("%m", "mm"), ("%Y", "yyyy"), ("%y", "yy"), ("%H", "hh"), ("%M", "mm"), ("%S", "ss"))


def excel_number_format(strftime_format: str) -> str:
    """"%d/%m/%Y %H:%M" -> "dd/mm/yyyy hh:mm" (so Excel shows date cells the way the force's strings look)."""
    out = strftime_format
    for token, excel in _EXCEL_TOKENS:
        out = out.replace(token, excel)
    return out


def _default_titles(force: str = "Example Police", produced: dt.datetime | None = None) -> list[str]:
    produced = produced or dt.datetime.now()
    return [f"{force} — Domestic Abuse Notifications", f"Extract produced {produced:%d/%m/%Y %H:%M}"]


def write_rows(header: list[str], rows: Iterable[Sequence], path: str | Path, *, fmt: str | None = None,
               sheet: str = "Sheet1", title_rows: list[str] | None = None, totals_row: bool = True,
               encoding: str = "utf-8-sig", date_format: str = "%d/%m/%Y %H:%M", excel_dates: bool = True,
               day_format: str = "%d/%m/%Y", time_format: str = "%H:%M") -> Path:
    """Write ``header`` and ``rows`` to an .xlsx or .csv file (``fmt``, default from the suffix).

    Above the header: ``title_rows`` (default: a report title and an "Extract produced" line; ``[]`` for none)
    and a blank row. Below the data, when ``totals_row``: a blank row then "Total records: N".

    xlsx: written in openpyxl's write-only mode; datetimes and dates become real Excel date cells displayed
    day-first (``date_format``/``day_format`` turned into Excel number formats) when ``excel_dates``, otherwise
    strings in those formats; times are always "HH:MM" strings. csv: ``encoding`` with errors="strict" (so a name
    the encoding cannot hold fails loudly), every date, datetime and time written as a string.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    titles = _default_titles() if title_rows is None else list(title_rows)
    rows = rows if isinstance(rows, list) else list(rows)  # the totals row needs the count
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "xlsx":
        _write_xlsx(header, rows, path, sheet, titles, totals_row, date_format, day_format, time_format, excel_dates)
    elif fmt == "csv":
        _write_csv(header, rows, path, titles, totals_row, encoding, date_format, day_format, time_format)
    else:
        raise ValueError(f"Unknown format {fmt!r}: use xlsx or csv")
    return path


def _as_text(value: Any, date_format: str, day_format: str, time_format: str) -> Any:
    if isinstance(value, dt.datetime):  # before date: a datetime is a date too
        return value.strftime(date_format)
    if isinstance(value, dt.date):
        return value.strftime(day_format)
    if isinstance(value, dt.time):
        return value.strftime(time_format)
    return value


def _write_csv(header, rows, path, titles, totals_row, encoding, date_format, day_format, time_format) -> None:
    with open(path, "w", encoding=encoding, errors="strict", newline="") as fh:
        out = csv.writer(fh)
        for line in titles:
            out.writerow([line])
        if titles:
            out.writerow([])
        out.writerow(header)
        for row in rows:
            out.writerow(["" if v is None else _as_text(v, date_format, day_format, time_format) for v in row])
        if totals_row:
            out.writerow([])
            out.writerow([f"Total records: {len(rows)}"])


def _write_xlsx(header, rows, path, sheet, titles, totals_row, date_format, day_format, time_format,
                excel_dates) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet)
    datetime_xl, date_xl = excel_number_format(date_format), excel_number_format(day_format)

    def date_cell(value: dt.date, number_format: str) -> WriteOnlyCell:
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = number_format
        return cell

    def convert(value: Any) -> Any:
        # Only date-like values need work; everything else goes to openpyxl as is.
        if isinstance(value, dt.datetime):
            return date_cell(value, datetime_xl) if excel_dates else value.strftime(date_format)
        if isinstance(value, dt.date):
            return date_cell(value, date_xl) if excel_dates else value.strftime(day_format)
        if isinstance(value, dt.time):
            return value.strftime(time_format)
        return value

    for line in titles:
        ws.append([line])
    if titles:
        ws.append([])
    ws.append(list(header))
    date_types = (dt.datetime, dt.date, dt.time)  # exact types: a cheap membership test per cell
    for row in rows:
        ws.append([convert(v) if type(v) in date_types else v for v in row])
    if totals_row:
        ws.append([])
        ws.append([f"Total records: {len(rows)}"])
    wb.save(path)


def _profile_formats(profile) -> dict[str, str]:
    """Datetime, date and time formats matching the profile's own ``date_formats``/``time_formats``.

    The first date format with a time part is used for datetimes and the first without one for dates, so
    e.g. Merlin's ``"%Y-%m-%d %H:%M"`` gives ``"%Y-%m-%d"`` dates; a profile with no time in any date format
    (Athena) writes datetimes as its date format + ``" %H:%M"``.
    """
    fmts = tuple(getattr(profile, "date_formats", ()) or ())
    with_time = next((f for f in fmts if "%H" in f), None)
    date_only = next((f for f in fmts if "%H" not in f), None)
    if with_time is None:
        with_time = (date_only or "%d/%m/%Y") + " %H:%M"
    if date_only is None:
        date_only = with_time.split(" ")[0]
    times = tuple(getattr(profile, "time_formats", ()) or ())
    time_format = next((f for f in times if ":" in f), "%H:%M")
    return {"date_format": with_time, "day_format": date_only, "time_format": time_format}


def _produced_stamp(records: list[dict]) -> dt.datetime:
    """A deterministic "Extract produced" time: the first 06:30 after the last report (the overnight run), or
    the last report's time when that 06:30 is still to come."""
    if not records:
        return dt.datetime.now().replace(second=0, microsecond=0)
    last = max(r["reported_at"] for r in records)
    run = dt.datetime.combine(last.date(), dt.time(6, 30))
    if run <= last:
        run += dt.timedelta(days=1)
    return run if run <= dt.datetime.now() else last


def write_extract(records: list[dict], profile, path: str | Path, **kw) -> Path:
    """Write ``records`` as ``profile``'s extract: its layout, sheet name, csv encoding and date formats.

    Keyword arguments go to :func:`write_rows` and win over the profile's settings. The default title rows name
    the profile's force and an "Extract produced" time derived from the records (so output is deterministic).
    """
    header, rows = rows_for(records, profile)
    options: dict[str, Any] = {
        "sheet": getattr(profile, "sheet", None) or "Sheet1",
        "encoding": getattr(profile, "encoding", None) or "utf-8-sig",
        "title_rows": _default_titles(getattr(profile, "force", None) or "Example Police", _produced_stamp(records)),
        **_profile_formats(profile),
    }
    options.update(kw)
    return write_rows(header, rows, path, **options)


SAMPLE_START = dt.date(2026, 10, 1)  # fixed, so the sample files are the same wherever they are made


def write_samples(directory: str | Path) -> list[Path]:
    """Small sample extracts for newcomers, one per shipped profile, always the same content.

    * ``niche_wide_sample.xlsx`` – 60 notifications, title rows above the header and a totals row below;
    * ``athena_list_sample.csv`` – 60 notifications, Windows-1252, header on the first line;
    * ``merlin_rows_sample.xlsx`` – 40 notifications (one row per child), header on the first row.
    """
    from core.settings import ROOT
    from dv.profiles import load_profile

    directory = Path(directory)
    shipped = ROOT / "data" / "profiles"  # the samples match the shipped profiles, whatever DV_PROFILES_DIR says
    plan = (
        ("niche_wide", "niche_wide_sample.xlsx", 60, 101, {}),
        ("athena_list", "athena_list_sample.csv", 60, 102, {"title_rows": [], "totals_row": False}),
        ("merlin_rows", "merlin_rows_sample.xlsx", 40, 103, {"title_rows": [], "totals_row": False}),
    )
    written = []
    for profile_name, file_name, n, seed, kw in plan:
        records = generate_notifications(n, seed=seed, start=SAMPLE_START, days=30)
        written.append(write_extract(records, load_profile(profile_name, shipped), directory / file_name, **kw))
    return written
