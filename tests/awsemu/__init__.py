"""Tests of the local AWS emulator, plus the prompt they all send (shaped like the product's prompts)."""

MOVIES = [
    {"title": "The Grand Heist", "year": 2004, "genres": "Comedy, Crime",
     "plot": "A retired safecracker is lured back for one last job. Nothing goes to plan."},
    {"title": "Star Wars: Episode IV - A New Hope", "year": 1977, "genres": "Action|Adventure|Sci-Fi",
     "plot": "A farm boy joins a rebellion against an empire."},
    {"title": "Amélie", "year": 2001, "genres": "Comedy, Romance",
     "plot": "A shy waitress helps those around her."},
]  # fmt: skip


def email_prompt(name="Maria Lopez", genre="Comedy", movies=MOVIES, signoff="Sam from Streamly") -> str:
    blocks = "".join(
        f"<movie>\nTitle: {m['title']}\nYear: {m['year']}\nGenres: {m['genres']}\nPlot: {m['plot']}\n</movie>\n"
        for m in movies
    )
    return (
        "Write a short marketing email for this contact about the movies below.\n"
        f"<user>\nName: {name}\nAge: 34\nGender: female\nLocale: en_US\n</user>\n"
        f"<genre>{genre}</genre>\n{blocks}<signoff>\n{signoff}\n</signoff>\n"
        "Answer with <subject> and <body>."
    )
