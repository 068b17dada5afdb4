"""A deterministic stand-in for a model's reply, built from the prompt's tagged blocks.

A prompt with `<user>`, `<genre>`, `<movie>` and `<signoff>` blocks gets a marketing email shaped as
`<subject>…</subject>` then `<body>…</body>`; any other prompt gets a short echo. Wording varies with a hash
of the prompt, so different contacts read differently but the same prompt always gets the same text.

Tenants write their own templates, so the blocks come in several shapes, and each is read as a model would:
the contact as `Name:` (or `First name:`, `Customer name:`) lines, JSON, or free text ("a 50 year old adult
called Otto"); the picks as one `<movie>` (or `<movies>`, `<item>`, `<items>`) block each or one for all, holding
`Title:` lines or a JSON (or Python-literal) list whose keys may be TITLE, name, description…
"""

import ast
import hashlib
import json
import random
import re
from dataclasses import dataclass

from awsemu import judgeanswer, routelabel, shorten, subjectlines

SUBJECTS = (
    "{name}, your next {genre} night starts here",
    "{name}, we picked these titles just for you",
    "Fresh picks for you, {name}",
    "{name}, these {genre} titles have your name on them",
)
GREETINGS = ("Hi {name},", "Hello {name},", "Hey {name},", "Dear {name},")
GENRE_INTROS = (
    "Because you love {genre}, we think you'll enjoy these:",
    "We know {genre} is your favorite, so here is what we found for you:",
    "Your taste for {genre} led us to these titles:",
)
PLAIN_INTROS = ("We picked a few titles we think you'll enjoy:", "Here is what we found for you:")
CLOSINGS = ("Happy watching!", "Enjoy the show!", "Grab the popcorn and enjoy!", "We hope you like them.")
SNIPPET_CHARS = 100


@dataclass(frozen=True)
class Movie:
    title: str
    year: str = ""
    genres: str = ""
    plot: str = ""


@dataclass(frozen=True)
class EmailBrief:
    first_name: str
    genre: str
    movies: tuple[Movie, ...]
    signoff: str


def reply(prompt: str) -> str:
    """The model's answer to a user prompt."""
    if routelabel.asks(prompt):  # a routing classifier's question (routing.dynamic)
        return routelabel.answer(prompt)
    if judgeanswer.asks(prompt):  # the draft judge's question (campaigns.judge)
        return judgeanswer.answer(prompt)
    if shorten.asks(prompt):  # a plot to shorten (campaigns.plots)
        return shorten.answer(prompt)
    if subjectlines.asks(prompt):  # subject-line variants (campaigns.subjects)
        return subjectlines.answer(prompt)
    brief = parse_brief(prompt)
    if brief is None:
        return echo(prompt)
    seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big")
    return write_email(brief, random.Random(seed))


PICK_TAGS = ("movie", "movies", "item", "items", "product", "products")
NOT_NAMES = {"a", "an", "the", "this", "that", "our", "customer", "user", "contact", "client", "subscriber", "he",
             "she", "they", "mr", "mrs", "ms", "dr", "name", "age", "i", "we", "you"}  # fmt: skip
PICK_KEYS = {"title": ("title", "name", "movie", "item", "product"), "year": ("year", "release_year"),
             "genres": ("genres", "genre", "categories", "category"),
             "plot": ("plot", "description", "overview", "synopsis", "summary")}  # fmt: skip
LITERAL_LIMIT = 100_000  # characters of a block worth trying as JSON or a Python literal


def parse_brief(prompt: str) -> EmailBrief | None:
    """The email's inputs, or None when the prompt carries neither a <user> nor a pick block."""
    users = _blocks("user", prompt)
    picks = [block for tag in PICK_TAGS for block in _blocks(tag, prompt)]
    if not users and not picks:
        return None
    user = users[0] if users else ""
    genre = " ".join((_blocks("genre", prompt) or [""])[0].split()) or _user_genre(user)
    return EmailBrief(
        first_name=_first_name(user) or "friend",
        genre=genre,
        movies=tuple(movie for block in picks for movie in _movies(block) if movie.title),
        signoff=(_blocks("signoff", prompt) or ["The team"])[0].strip() or "The team",
    )


def _first_name(block: str) -> str:
    """The contact's first name from a <user> block in any of its shapes; "" when none can be told."""
    data = _literal(block)
    if isinstance(data, dict):
        fields = {str(k).lower().replace("_", " "): str(v) for k, v in data.items()}
    else:
        fields = _fields(block)
    for wanted in ("first name", "firstname", "given name"):
        if fields.get(wanted):
            return _word(fields[wanted])
    for key, value in fields.items():
        if "name" in key and not any(part in key for part in ("last", "family", "sur", "user")) and value:
            return _word(value)
    for key in ("user", "customer", "contact", "username", "user name"):
        if fields.get(key):
            return _word(fields[key])
    text = " ".join(block.split())
    if match := re.search(r"\b(?:called|named|name is|name's)\s+([A-ZÀ-Þ][\w'’-]*)", text):
        return match.group(1)
    first = re.match(r"([A-ZÀ-Þ][\w'’-]*)\b", text)
    return first.group(1) if first and first.group(1).lower() not in NOT_NAMES else ""


def _word(value: str) -> str:
    words = re.findall(r"[^\W\d_][\w'’-]*", value)
    return words[0] if words else ""


def _user_genre(block: str) -> str:
    for key, value in _fields(block).items():
        if "genre" in key and value:
            return " ".join(value.split())
    return ""


def _movies(block: str) -> list[Movie]:
    """The picks in one block: a JSON or Python-literal list (or one object), else `Title:` lines, where a new
    `Title:` line starts the next pick."""
    data = _literal(block)
    if isinstance(data, dict):
        data = [data]
    if isinstance(data, list):
        return [_movie_of(entry) for entry in data]
    chunks = re.split(r"\n(?=\s*title\s*:)", block.strip(), flags=re.IGNORECASE)
    return [_movie(_fields(chunk)) for chunk in chunks]


def _movie_of(entry) -> Movie:
    if not isinstance(entry, dict):
        return Movie(title=" ".join(str(entry).split()))
    lowered = {str(key).strip().lower(): value for key, value in entry.items()}
    found = {}
    for name, keys in PICK_KEYS.items():
        value = next((lowered[key] for key in keys if lowered.get(key) not in (None, "")), "")
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        found[name] = " ".join(str(value).split())
    return Movie(**found)


def _literal(block: str):
    """The block as JSON or a Python literal (a list or dict), else None. literal_eval evaluates no code."""
    text = block.strip()
    if not text or text[0] not in "[{" or len(text) > LITERAL_LIMIT:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def write_email(brief: EmailBrief, rng: random.Random) -> str:
    names = {"name": brief.first_name, "genre": brief.genre or "movie"}
    intro = rng.choice(GENRE_INTROS if brief.genre else PLAIN_INTROS)
    body = [
        rng.choice(GREETINGS).format(**names),
        intro.format(**names),
        "\n".join(_movie_line(movie) for movie in brief.movies),
        rng.choice(CLOSINGS),
        brief.signoff,
    ]
    subject = rng.choice(SUBJECTS).format(**names)
    return f"<subject>{subject}</subject>\n<body>\n" + "\n\n".join(p for p in body if p) + "\n</body>"


def echo(prompt: str) -> str:
    words = " ".join(prompt.split())
    return f"Echo: {_shorten(words, 200) or '(empty prompt)'}"


def _movie_line(movie: Movie) -> str:
    year = f" ({movie.year})" if movie.year else ""
    genres = ", ".join(g.strip().lower() for g in re.split(r"[|,]", movie.genres) if g.strip())
    kind = f"{'An' if genres[:1] in tuple('aeiou') else 'A'} {genres} pick." if genres else ""
    about = " ".join(part for part in (kind, _first_sentence(movie.plot)) if part)
    return f"- {movie.title}{year}: {about or 'One of our top picks for you.'}"


def _movie(fields: dict) -> Movie:
    return Movie(*(fields.get(name, "") for name in ("title", "year", "genres", "plot")))


def _blocks(tag: str, text: str) -> list[str]:
    return re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.DOTALL | re.IGNORECASE)


def _fields(block: str) -> dict:
    """`Key: value` lines as a dict with lower-case keys; a line with no key continues the previous value."""
    fields, key = {}, None
    for line in block.strip().splitlines():
        match = re.match(r"\s*([A-Za-z][A-Za-z_]{0,30}(?: [A-Za-z_]{1,30}){0,2}):\s*(.*)", line)
        if match:
            key = match.group(1).strip().lower().replace("_", " ")
            fields[key] = match.group(2).strip()
        elif key and line.strip():
            fields[key] = f"{fields[key]} {line.strip()}"
    return fields


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return _shorten(sentence, SNIPPET_CHARS)


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "..."
