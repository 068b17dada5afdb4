"""Deterministic demo data for a video-on-demand tenant: users, items and interactions, Personalize columns.

Everything is invented (titles, plots, names, example-only email domains), so the demo can ship with the
product. The same seed always gives the same data.
"""

import csv
import random
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path

USER_COLUMNS = ("USER_ID", "EMAIL", "FIRST_NAME", "LAST_NAME", "AGE", "GENDER", "LOCALE")
ITEM_COLUMNS = (
    "ITEM_ID", "TITLE", "YEAR", "GENRES", "PLOT", "IMDB_RATING", "IMDB_NUMBEROFVOTES",
    "US_MATURITY_RATING", "US_MATURITY_RATING_STRING", "PROMOTION", "CREATION_TIMESTAMP",
)  # fmt: skip
INTERACTION_COLUMNS = ("USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE")

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
DAY = 86_400
WINDOW_DAYS = 548  # about 18 months of history before `start`

# Share of catalog items with each genre as their main genre.
GENRE_WEIGHTS = {
    "Action": 11, "Adventure": 6, "Animation": 4, "Comedy": 13, "Crime": 7, "Documentary": 4, "Drama": 14,
    "Family": 4, "Fantasy": 4, "Horror": 7, "Mystery": 4, "Romance": 7, "Sci-Fi": 6, "Thriller": 9,
}  # fmt: skip
GENRES = tuple(GENRE_WEIGHTS)

# Secondary genres that plausibly go with a main genre (never Family with Horror).
COMPANIONS = {
    "Action": ("Adventure", "Crime", "Sci-Fi", "Thriller", "Fantasy", "Comedy"),
    "Adventure": ("Action", "Fantasy", "Family", "Comedy", "Sci-Fi", "Animation"),
    "Animation": ("Family", "Comedy", "Adventure", "Fantasy"),
    "Comedy": ("Romance", "Drama", "Family", "Crime", "Action"),
    "Crime": ("Drama", "Thriller", "Mystery", "Action", "Comedy"),
    "Documentary": ("Crime", "Drama"),
    "Drama": ("Romance", "Crime", "Mystery", "Comedy", "Thriller"),
    "Family": ("Animation", "Comedy", "Adventure", "Fantasy"),
    "Fantasy": ("Adventure", "Family", "Romance", "Action"),
    "Horror": ("Thriller", "Mystery", "Sci-Fi", "Comedy"),
    "Mystery": ("Thriller", "Crime", "Drama", "Horror"),
    "Romance": ("Comedy", "Drama", "Fantasy"),
    "Sci-Fi": ("Action", "Thriller", "Adventure", "Horror", "Drama"),
    "Thriller": ("Crime", "Mystery", "Action", "Drama", "Horror"),
}

MATURITY_LEVELS = ("G", "PG", "PG-13", "R")  # US_MATURITY_RATING is the 1-based position here
# Probability of G, PG, PG-13, R for a film of each genre.
MATURITY_ODDS = {
    "Action": (0, 10, 60, 30), "Adventure": (10, 40, 45, 5), "Animation": (45, 45, 9, 1),
    "Comedy": (5, 30, 40, 25), "Crime": (0, 5, 35, 60), "Documentary": (30, 40, 25, 5),
    "Drama": (2, 18, 45, 35), "Family": (50, 45, 5, 0), "Fantasy": (10, 35, 45, 10),
    "Horror": (0, 2, 20, 78), "Mystery": (2, 20, 48, 30), "Romance": (2, 28, 50, 20),
    "Sci-Fi": (2, 20, 58, 20), "Thriller": (0, 5, 45, 50),
}  # fmt: skip
KID_GENRES = ("Family", "Animation")

TITLE_ADJECTIVES = tuple(
    """
    Silent Broken Crimson Hollow Golden Last Distant Burning Quiet Wild Hidden Frozen Electric Lonely Velvet
    Bitter Paper Iron Midnight Restless Forgotten Shattered Northern Sweet Savage Gentle Endless Scarlet
    Brave Crooked Falling Painted Secret Lucky Dark Bright Sunken Wandering Stolen Final
""".split()
)
TITLE_NOUNS = tuple(
    """
    Harbor Compass Orchard Signal Kingdom Witness Lantern Frontier Garden Horizon Engine Promise Shadow
    River Summer Winter Mirror Crown Circuit Voyage Island Letter Echo Storm Tide Ember Canyon Carnival Hour
    Machine Refuge Outpost Season Tower Lullaby Debt Bargain Labyrinth Meridian Descent
""".split()
)
TITLE_PLACES = (
    "Marrowby", "Port Calder", "Velmont", "Ashgrove", "Duskmere", "Halvard", "Orrin Bay", "Brightwater",
    "Sorrel Hill", "Cinder Reach", "Lowen", "Marisca", "Teskar", "Quillon", "Elsworth", "Navarre Point",
)  # fmt: skip
TITLE_PATTERNS = (
    "The {adj} {noun}", "{adj} {noun}", "{noun} of {place}", "The {noun} of {first}", "{first}'s {noun}",
    "Beyond the {noun}", "Under the {adj} {noun}", "The Last {noun} in {place}", "A {noun} for {first}",
    "Return to {place}", "{adj} {noun} of {place}",
)  # fmt: skip

FIRST_NAMES = tuple(
    """
    Amara Liam Sofia Mateo Aisha Noah Mei Lucas Priya Ethan Zara Diego Hana Oliver Fatima Kenji Isabella
    Tariq Chloe Rafael Ingrid Kwame Elena Arjun Nadia Samuel Yuki Omar Leila Jonas Ava Thiago Freya Malik
    Camille Ravi Lucia Emeka Maya Henrik Nia Dmitri Grace Santiago Aiko Felix Imani Pablo Astrid Jamal Clara
    Wei Rosa Anders Layla Hugo Zainab Marco Ines Kofi Julia Soren Ana Darius Elif Tomas Keiko Ibrahim Margot
    Andre
""".split()
)
LAST_NAMES = tuple(
    """
    Okafor Lindqvist Moreau Tanaka Alvarez Chen Patel Novak Haddad Kowalski Mensah Fischer Rossi Nakamura
    Silva Oyelaran Dubois Kim Herrera Johansson Abara Costa Schneider Ivanova Nguyen Garcia Brennan Yilmaz
    Sato Mbeki Larsen Castillo Weber Rahman O'Neill Petrov Santos Bauer Mahmoud Ferreira Adeyemi Holm Romero
    Park Kaur Lambert Ortega Sokolova Walsh Takahashi Quinn Marchetti Osei Vega Lund Reyes Hoffmann Banerjee
    Carter Duval
""".split()
)
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")  # reserved for documentation (RFC 2606)
GENDERS = {"female": 48, "male": 48, "nonbinary": 4}
LOCALES = {
    "en_US": 55, "en_GB": 10, "en_CA": 5, "en_AU": 4, "es_ES": 5, "es_MX": 5, "fr_FR": 5, "de_DE": 5,
    "pt_BR": 3, "it_IT": 3,
}  # fmt: skip

# Plots: an opening sentence from the main genre, sometimes a turn from a second genre.
# Placeholders: {hero} full name, {first} hero's first name, {other} another character, {place} a setting.
STORIES = {
    "Action": (
        ("Former special-forces medic {hero} has one night to get a stolen prototype out of {place}.",
         "When a convoy is ambushed outside {place}, getaway driver {hero} is the only witness left.",
         "Ex-cop {hero} takes one last job guarding a cargo train through {place}."),
        ("Every ally {first} trusted is suddenly on the other side.", "The chase ends where it began."),
        ("the port of Orrin Bay", "a flooded megacity", "the mountain passes of Halvard"),
    ),
    "Adventure": (
        ("Cartographer {hero} follows a dead explorer's notebook into {place}.",
         "Stranded in {place}, {hero} and a reluctant guide named {other} search for a way home.",
         "A torn map sends {hero} and {other} racing rival treasure hunters across {place}."),
        ("What they find is older than any map.", "Getting there turns out to be the easy part."),
        ("the jungles south of Marisca", "a chain of uncharted islands", "the salt deserts of Teskar"),
    ),
    "Animation": (
        ("A small lighthouse robot named {first} dreams of seeing what lies beyond {place}.",
         "In {place}, a shy fox cub called {first} must return a lost star to the sky.",
         "Young inventor {first} builds a flying bicycle to escape {place}."),
        ("A chatty paper crane named {other} insists on coming along.",
         "The whole town learns to sing again."),
        ("a tiny harbor village", "a forest where the trees can talk", "a city built on the backs of whales"),
    ),
    "Comedy": (
        ("Wedding planner {hero} accidentally books two weddings on the same day in {place}.",
         "Out-of-work magician {hero} fakes being a life coach for the richest family in {place}.",
         "Two rival food-truck owners, {hero} and {other}, are stuck sharing one parking spot in {place}."),
        ("Nothing goes to plan, least of all the cake.",
         "{other}, the world's worst assistant, makes it worse."),
        ("sunny Brightwater", "a very small town called Lowen", "downtown Velmont"),
    ),
    "Crime": (
        ("Detective {hero} reopens a cold case that the whole of {place} wants buried.",
         "Bookkeeper {hero} discovers the family firm in {place} launders money for the mob.",
         "A heist crew led by {hero} plans to rob the casino barge moored off {place}."),
        ("The only informant, {other}, has every reason to lie.",
         "Someone inside the precinct is keeping score."),
        ("the docks of Port Calder", "rain-soaked Elsworth", "the old mill district of Ashgrove"),
    ),
    "Documentary": (
        ("Filmmaker {hero} spends a year with the last fishing families of {place}.",
         "Through archive footage and new interviews, {hero} retraces the collapse of {place}.",
         "This portrait follows the volunteers who keep {place} running against the odds."),
        ("Their story is told in their own words.", "What began as a local story became a national one."),
        ("the northern coast", "a mining town called Quillon", "a city hospital at night"),
    ),
    "Drama": (
        ("After twenty years away, {hero} comes home to {place} to care for a dying father.",
         "Piano teacher {hero} takes on a gifted, furious student named {other} in {place}.",
         "A single summer in {place} changes everything for siblings {first} and {other}."),
        ("Old wounds open, and some of them heal.",
         "Forgiveness has a price {first} isn't sure they can pay."),
        ("a farming valley outside Sorrel Hill", "working-class Velmont", "a quiet lakeside town"),
    ),
    "Family": (
        ("When the family moves to {place}, young {first} befriends a runaway circus pony.",
         "Twins {first} and {other} must save their grandmother's bakery in {place}.",
         "A scruffy dog named {first} crosses {place} to find the girl who lost him."),
        ("Together they learn that home is who you're with.", "The neighbours all join in, eventually."),
        ("a seaside town", "the snowy hills of Halvard", "a sleepy village called Lowen"),
    ),
    "Fantasy": (
        ("The youngest of seven witches, {hero} is the only one who can break the curse on {place}.",
         "A disgraced knight, {hero}, escorts a talking crow across {place}.",
         "Blacksmith's apprentice {first} forges a sword that remembers its previous owners in {place}."),
        ("An old prophecy names {other} as the one to betray them.", "Magic always takes something back."),
        ("the drowned kingdom of Marisca", "the Ember Wastes", "a castle that moves with the moon"),
    ),
    "Horror": (
        ("Night nurse {hero} starts hearing a child's voice on the empty top floor of a clinic in {place}.",
         "A family renovating a farmhouse in {place} uncovers a room that isn't on any plan.",
         "Podcast host {hero} travels to {place} to debunk a local legend and stops posting."),
        ("The thing in the walls is patient.",
         "By the third night, {other} is no longer sure who is speaking."),
        ("fog-bound Duskmere", "an abandoned ski resort", "a shuttered asylum outside Ashgrove"),
    ),
    "Mystery": (
        ("A famous novelist vanishes from a locked room in {place}, and {hero} was the last to see her.",
         "Archivist {hero} finds a photograph of herself in {place}, dated fifty years ago.",
         "Insurance investigator {hero} is sent to {place} to verify a death that nobody believes happened."),
        ("Every answer points back to {other}.", "The clues were hidden in plain sight all along."),
        ("a manor on Navarre Point", "an island inn cut off by storms", "the university town of Elsworth"),
    ),
    "Romance": (
        ("Bookshop owner {hero} and travelling photographer {other} keep meeting by accident in {place}.",
         "Chef {hero} returns to {place} and finds her first love running the rival restaurant.",
         "A wrong-number text connects {hero} with a stranger in {place}."),
        ("Falling in love was never part of {first}'s plan.", "Timing, as ever, is the real enemy."),
        ("a vineyard town", "rainy Port Calder", "a ferry between two islands"),
    ),
    "Sci-Fi": (
        ("Engineer {hero} wakes early aboard {place} and finds the crew's memories have been rewritten.",
         "On {place}, a mining crew led by {hero} drills into a signal older than humanity.",
         "In near-future Velmont, {hero} can rent out her memories, until a client refuses to return one."),
        ("The ship's AI, {other}, has its own idea of the mission.",
         "Time is not running in a straight line."),
        ("the generation ship Meridian", "a mining colony on Teskar IV",
         "an orbital station above a dead Earth"),
    ),
    "Thriller": (
        ("Air-traffic controller {hero} takes a call from a flight that landed three hours ago over {place}.",
         "Whistleblower {hero} goes into hiding in {place} with a drive that powerful people want back.",
         "A hostage negotiator, {hero}, realises the kidnapper in {place} is someone she trained."),
        ("But someone is watching, and the clock is running.", "Trusting {other} may be the last mistake."),
        ("a border town", "a glass tower in Velmont", "a storm-bound airport"),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class SyntheticDataset:
    users: list[dict]
    items: list[dict]
    interactions: list[dict]
    preferences: dict[str, list[str]]  # the hidden taste each user was generated from; not written to CSV


def generate(
    *,
    seed: int = 7,
    n_items: int = 400,
    n_contacts: int = 300,
    n_interactions: int = 30000,
    start: datetime | None = None,
) -> SyntheticDataset:
    """A reproducible catalog, audience and viewing history ending at `start` (default 2026-01-01 UTC)."""
    if n_items < 1 or n_contacts < 1:
        raise ValueError("n_items and n_contacts must be positive")
    if n_interactions < 3 * n_contacts:
        raise ValueError("n_interactions must be at least 3 per contact")
    rng = random.Random(seed)
    end = int((start or DEFAULT_START).timestamp())
    items = [_item(rng, i, end) for i in range(n_items)]
    # Random titles can collide; a repeat becomes a sequel, which keeps it plausible.
    _make_unique(items, "TITLE", lambda title, n: f"{title} {_roman(n)}")
    _mark_promotions(rng, items)
    users = [_user(rng, i) for i in range(n_contacts)]
    _make_unique(users, "EMAIL", lambda email, n: email.replace("@", f"{n}@"))
    popularity = [rng.lognormvariate(0, 1.3) for _ in items]
    catalog = _GenreCatalog(items, popularity)
    preferences = {u["USER_ID"]: catalog.pick_genres(rng, rng.choice((2, 3))) for u in users}
    counts = _activity(rng, n_contacts, n_interactions)
    interactions = []
    for user, count in zip(users, counts, strict=True):
        interactions += _history(rng, user["USER_ID"], preferences[user["USER_ID"]], count, catalog, end)
    _make_rows_unique(interactions)
    interactions.sort(key=lambda r: (r["TIMESTAMP"], r["USER_ID"], r["ITEM_ID"], r["EVENT_TYPE"]))
    return SyntheticDataset(users=users, items=items, interactions=interactions, preferences=preferences)


def write_csvs(dataset: SyntheticDataset, directory: Path) -> dict[str, Path]:
    """Write users.csv, items.csv and interactions.csv (Personalize headers) and return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tables = {
        "users": (USER_COLUMNS, dataset.users),
        "items": (ITEM_COLUMNS, dataset.items),
        "interactions": (INTERACTION_COLUMNS, dataset.interactions),
    }
    paths = {}
    for name, (columns, rows) in tables.items():
        paths[name] = directory / f"{name}.csv"
        with paths[name].open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    return paths


# --- items -----------------------------------------------------------------------------------------------


def _item(rng: random.Random, index: int, end: int) -> dict:
    genres = _item_genres(rng)
    maturity = _maturity(rng, genres)
    year = max(1960, 2025 - int(rng.expovariate(1 / 12)))
    rating = min(9.4, max(2.1, rng.gauss(6.5, 0.9)))
    # The catalog grew over the last four years; a film can't be added before it came out.
    added = rng.uniform(end - 4 * 365 * DAY, end - 14 * DAY)
    released = datetime(year, 1, 1, tzinfo=UTC).timestamp() + rng.uniform(0, 180) * DAY
    return {
        "ITEM_ID": f"m{index + 1:04d}",
        "TITLE": _title(rng),
        "YEAR": year,
        "GENRES": "|".join(genres),
        "PLOT": _plot(rng, genres),
        "IMDB_RATING": f"{rating:.1f}",
        "IMDB_NUMBEROFVOTES": int(rng.lognormvariate(9.5, 1.4)),
        "US_MATURITY_RATING": MATURITY_LEVELS.index(maturity) + 1,
        "US_MATURITY_RATING_STRING": maturity,
        "PROMOTION": "false",
        "CREATION_TIMESTAMP": int(min(max(added, released), end - DAY)),
    }


def _item_genres(rng: random.Random) -> list[str]:
    main = rng.choices(GENRES, weights=list(GENRE_WEIGHTS.values()))[0]
    extra = rng.choices((0, 1, 2), weights=(45, 40, 15))[0]
    return [main, *rng.sample(COMPANIONS[main], min(extra, len(COMPANIONS[main])))]


def _maturity(rng: random.Random, genres: list[str]) -> str:
    # A kids' genre sets the tone of the whole film; otherwise the most adult genre does.
    kids = [g for g in genres if g in KID_GENRES]
    ruling = kids[0] if kids else max(genres, key=lambda g: _expected_maturity(MATURITY_ODDS[g]))
    return rng.choices(MATURITY_LEVELS, weights=MATURITY_ODDS[ruling])[0]


def _expected_maturity(odds: tuple[int, ...]) -> float:
    return sum(level * weight for level, weight in enumerate(odds)) / sum(odds)


def _title(rng: random.Random) -> str:
    return rng.choice(TITLE_PATTERNS).format(
        adj=rng.choice(TITLE_ADJECTIVES),
        noun=rng.choice(TITLE_NOUNS),
        place=rng.choice(TITLE_PLACES),
        first=rng.choice(FIRST_NAMES),
    )


def _roman(number: int) -> str:
    numerals = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"),
                (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))  # fmt: skip
    out = ""
    for value, letters in numerals:
        count, number = divmod(number, value)
        out += letters * count
    return out


def _plot(rng: random.Random, genres: list[str]) -> str:
    setups, twists, places = STORIES[genres[0]]
    names = rng.sample(FIRST_NAMES, 2)
    fields = {
        "hero": f"{names[0]} {rng.choice(LAST_NAMES)}",
        "first": names[0],
        "other": names[1],
        "place": rng.choice(places),
    }
    sentences = [rng.choice(setups)]
    if len(genres) > 1 or rng.random() < 0.4:
        sentences.append(rng.choice(STORIES[rng.choice(genres[1:] or genres)][1]))
    return " ".join(s.format(**fields) for s in sentences)


def _mark_promotions(rng: random.Random, items: list[dict]) -> None:
    for item in rng.sample(items, max(1, round(0.05 * len(items)))):
        item["PROMOTION"] = "true"


# --- users -----------------------------------------------------------------------------------------------


def _user(rng: random.Random, index: int) -> dict:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return {
        "USER_ID": f"u{index + 1:04d}",
        "EMAIL": f"{_ascii(first)}.{_ascii(last)}@{rng.choice(EMAIL_DOMAINS)}",
        "FIRST_NAME": first,
        "LAST_NAME": last,
        "AGE": int(rng.triangular(18, 75, 32)),
        "GENDER": rng.choices(list(GENDERS), weights=list(GENDERS.values()))[0],
        "LOCALE": rng.choices(list(LOCALES), weights=list(LOCALES.values()))[0],
    }


def _ascii(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum())


def _make_unique(rows: list[dict], key: str, variant) -> None:
    """Give repeats of a value a numbered variant (`variant(value, 2)`, then 3, ...) in row order."""
    taken: set[str] = set()
    for row in rows:
        value, number = row[key], 1
        while value in taken:
            number += 1
            value = variant(row[key], number)
        taken.add(value)
        row[key] = value


# --- interactions ----------------------------------------------------------------------------------------


class _GenreCatalog:
    """Per genre, the items in order of arrival with cumulative popularity, for fast weighted sampling."""

    def __init__(self, items: list[dict], popularity: list[float]):
        by_arrival = sorted(range(len(items)), key=lambda i: (items[i]["CREATION_TIMESTAMP"], i))
        self.members: dict[str, list[int]] = {}
        for i in by_arrival:
            for genre in items[i]["GENRES"].split("|"):
                self.members.setdefault(genre, []).append(i)
        self.arrivals = {g: [items[i]["CREATION_TIMESTAMP"] for i in m] for g, m in self.members.items()}
        self.cumulative = {g: list(accumulate(popularity[i] for i in m)) for g, m in self.members.items()}
        self.item_ids = [item["ITEM_ID"] for item in items]
        self.arrival = [item["CREATION_TIMESTAMP"] for item in items]
        self.genres = [g for g in GENRES if g in self.members]
        self.genre_weights = [GENRE_WEIGHTS[g] for g in self.genres]

    def pick_genres(self, rng: random.Random, k: int) -> list[str]:
        chosen: list[str] = []
        while len(chosen) < min(k, len(self.genres)):
            genre = rng.choices(self.genres, weights=self.genre_weights)[0]
            if genre not in chosen:
                chosen.append(genre)
        return chosen

    def pick_item(self, rng: random.Random, genre: str, when: float) -> int:
        """A popularity-weighted item of `genre` already in the catalog at `when` (else its first arrival)."""
        available = max(1, bisect_right(self.arrivals[genre], when))
        cumulative = self.cumulative[genre]
        position = bisect_left(cumulative, rng.random() * cumulative[available - 1])
        return self.members[genre][min(position, available - 1)]


def _activity(rng: random.Random, n_users: int, total: int) -> list[int]:
    """Long-tailed interaction counts, at least 3 each, summing exactly to `total`."""
    raw = [rng.lognormvariate(0, 1.1) for _ in range(n_users)]
    spare = total - 3 * n_users
    shares = [spare * r / sum(raw) for r in raw]
    counts = [3 + int(s) for s in shares]
    by_remainder = sorted(range(n_users), key=lambda i: (int(shares[i]) - shares[i], i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _history(
    rng: random.Random, user_id: str, liked: list[str], count: int, catalog: _GenreCatalog, end: int
) -> list[dict]:
    # Users join at different times; their taste moves from their first genre towards their last,
    # so what they watched lately predicts what they watch next better than what they watched first.
    joined = end - WINDOW_DAYS * DAY * (1 - 0.75 * rng.random())
    early, late = [*_mix(rng, len(liked) - 1), 0.0], [0.0, *_mix(rng, len(liked) - 1)]
    if len(liked) == 1:  # a catalog so small that it has a single genre
        early = late = [1.0]
    seen: set[int] = set()
    rows = []
    for when in sorted(rng.uniform(joined, end - 1) for _ in range(count)):
        progress = (when - joined) / (end - joined)
        taste = [(1 - progress) * a + progress * b for a, b in zip(early, late, strict=True)]
        # Mostly their own genres, sometimes whatever is on the front page.
        genres, weights = (liked, taste) if rng.random() < 0.85 else (catalog.genres, catalog.genre_weights)
        item = _fresh_item(rng, catalog, rng.choices(genres, weights=weights)[0], when, seen)
        seen.add(item)
        rows.append({
            "USER_ID": user_id,
            "ITEM_ID": catalog.item_ids[item],
            "TIMESTAMP": int(max(when, catalog.arrival[item] + 3600)),
            "EVENT_TYPE": "watch" if rng.random() < 0.7 else "click",
        })  # fmt: skip
    return rows


def _mix(rng: random.Random, k: int) -> list[float]:
    weights = [rng.gammavariate(0.7, 1.0) + 1e-3 for _ in range(k)]
    return [w / sum(weights) for w in weights]


def _fresh_item(rng: random.Random, catalog: _GenreCatalog, genre: str, when: float, seen: set[int]) -> int:
    # People mostly watch something new; a few retries keep rewatches rare but possible.
    for _ in range(4):
        item = catalog.pick_item(rng, genre, when)
        if item not in seen:
            return item
    return item


def _make_rows_unique(rows: list[dict]) -> None:
    keys: set[tuple] = set()
    for row in rows:
        while (key := (row["USER_ID"], row["ITEM_ID"], row["EVENT_TYPE"], row["TIMESTAMP"])) in keys:
            row["TIMESTAMP"] += 1
        keys.add(key)
