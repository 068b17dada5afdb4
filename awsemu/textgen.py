"""A deterministic stand-in for a model's reply, built from the prompt's tagged blocks.

A prompt with `<user>`, `<genre>`, `<movie>` and `<signoff>` blocks gets a marketing email shaped as
`<subject>…</subject>` then `<body>…</body>`; any other prompt gets a short echo. Wording varies with a hash
of the prompt, so different contacts read differently but the same prompt always gets the same text.
"""

import hashlib
import random
import re
from dataclasses import dataclass

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
    brief = parse_brief(prompt)
    if brief is None:
        return echo(prompt)
    seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big")
    return write_email(brief, random.Random(seed))


def parse_brief(prompt: str) -> EmailBrief | None:
    """The email's inputs, or None when the prompt carries neither a <user> nor a <movie> block."""
    users, movies = _blocks("user", prompt), _blocks("movie", prompt)
    if not users and not movies:
        return None
    user = _fields(users[0]) if users else {}
    names = user.get("name", "").split()
    return EmailBrief(
        first_name=names[0] if names else "friend",
        genre=" ".join((_blocks("genre", prompt) or [""])[0].split()),
        movies=tuple(movie for movie in map(_movie, map(_fields, movies)) if movie.title),
        signoff=(_blocks("signoff", prompt) or ["The team"])[0].strip() or "The team",
    )


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
        match = re.match(r"\s*([A-Za-z][A-Za-z_]{0,30}):\s*(.*)", line)
        if match:
            key = match.group(1).strip().lower()
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
