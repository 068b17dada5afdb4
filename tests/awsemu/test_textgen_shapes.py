"""The emulator's writer finds the contact and the picks in every prompt shape a tenant's template may use (the
seed article's free text and JSON list, `Name:` and `Title:` lines, one block per pick or one for all), so a
tenant's own template behaves on the emulator as on a model: it greets the contact and names each pick once."""

import json
import re

import pytest

from awsemu import textgen
from tests.awsemu import MOVIES

TITLES = [m["title"] for m in MOVIES]


def seed_article_prompt() -> str:
    """The seed article's own shape: a free-text <user> block and one <movie> block holding a JSON list."""
    picks = [{"title": m["title"], "genres": m["genres"].replace(", ", "|"), "plot": m["plot"]} for m in MOVIES]
    return (
        "You are a skilled marketer. Write a personalised email for the user below, recommending the movies.\n"
        "<user>\na 50 year old adult called Otto\n</user>\n"
        f"<movie>\n{json.dumps(picks, indent=2)}\n</movie>\n"
        "Put the subject in <subject></subject> tags and the email in <body></body> tags."
    )


def body_of(text: str) -> tuple[str, str]:
    match = re.fullmatch(r"<subject>(.+)</subject>\n<body>\n(.+)\n</body>", text, flags=re.DOTALL)
    assert match, text
    return match.groups()


def names_each_pick_once(body: str) -> None:
    for title in TITLES:
        assert body.count(title) == 1, (title, body)


def test_the_seed_articles_prompt_gets_an_email_to_otto_naming_every_pick():
    subject, body = body_of(textgen.reply(seed_article_prompt()))
    assert "Otto" in subject and body.startswith(("Hi Otto,", "Hello Otto,", "Hey Otto,", "Dear Otto,"))
    assert "friend" not in body
    names_each_pick_once(body)
    assert "safecracker" in body  # the plot from the JSON list


@pytest.mark.parametrize(
    "user",
    [
        "a 50 year old adult called Otto",
        "Otto, 50, likes thrillers",
        "The customer is named Otto and is 50.",
        "Customer name: Otto Weber",
        "First name: Otto\nLast name: Weber",
        '{"name": "Otto Weber", "age": 50}',
        "User: Otto (50)",
    ],
)
def test_the_contacts_name_is_found_in_free_text_lines_or_json(user):
    brief = textgen.parse_brief(f"<user>\n{user}\n</user>\n<movie>\nTitle: {TITLES[0]}\n</movie>")
    assert brief.first_name == "Otto"


def test_a_list_of_picks_as_python_literals_and_odd_keys_is_read():
    picks = [{"TITLE": TITLES[0], "GENRES": ["Comedy", "Crime"], "DESCRIPTION": MOVIES[0]["plot"]},
             {"Name": TITLES[1], "Year": 1977}, {"title": TITLES[2]}]  # fmt: skip
    brief = textgen.parse_brief(f"<user>Name: Ana</user>\n<movie>{picks!r}</movie>")
    assert [m.title for m in brief.movies] == TITLES
    assert brief.movies[0].plot.startswith("A retired safecracker") and "Crime" in brief.movies[0].genres
    assert brief.movies[1].year == "1977"


def test_one_block_of_title_lines_for_all_picks_is_read_as_several():
    block = "\n\n".join(f"Title: {m['title']}\nYear: {m['year']}\nPlot: {m['plot']}" for m in MOVIES)
    _, body = body_of(textgen.reply(f"<user>\nName: Ana\n</user>\n<movies>\n{block}\n</movies>"))
    names_each_pick_once(body)
    assert body.startswith(("Hi Ana,", "Hello Ana,", "Hey Ana,", "Dear Ana,"))


def test_a_genre_in_the_user_block_is_used_when_there_is_no_genre_block():
    prompt = f"<user>\nName: Ana\nFavorite genre: Film-Noir\n</user>\n<movie>\nTitle: {TITLES[0]}\n</movie>"
    assert textgen.parse_brief(prompt).genre == "Film-Noir"
    assert textgen.parse_brief(seed_article_prompt()).genre == ""


def test_a_broken_json_list_falls_back_to_its_lines_and_never_fails():
    prompt = '<user>Name: Ana</user>\n<movie>[{"title": "Half a list",</movie>'
    text = textgen.reply(prompt)
    assert text.startswith("<subject>") and "Ana" in text
