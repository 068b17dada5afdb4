"""The deterministic email writer, as plain functions."""

import re

from awsemu import textgen
from tests.awsemu import MOVIES, email_prompt


def test_it_writes_subject_then_body_naming_contact_titles_genre_and_signoff():
    text = textgen.reply(email_prompt())
    match = re.fullmatch(r"<subject>(.+)</subject>\n<body>\n(.+)\n</body>", text, flags=re.DOTALL)
    assert match, text
    subject, body = match.groups()
    assert "Maria" in subject and "Lopez" not in subject
    assert body.startswith(("Hi Maria,", "Hello Maria,", "Hey Maria,", "Dear Maria,"))
    assert "Comedy" in body
    for movie in MOVIES:
        assert body.count(movie["title"]) == 1
    assert body.endswith("\n\nSam from Streamly")


def test_each_title_gets_its_own_line_with_genre_or_plot():
    text = textgen.reply(email_prompt())
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(lines) == len(MOVIES)
    assert "crime" in lines[0] and "safecracker" in lines[0]
    assert "sci-fi" in lines[1]


def test_it_is_deterministic_and_varies_by_prompt():
    assert textgen.reply(email_prompt()) == textgen.reply(email_prompt())
    texts = {textgen.reply(email_prompt(name=name)) for name in ("Ana", "Ben", "Chloe", "Dev", "Eve", "Finn")}
    shapes = {re.sub(r"Ana|Ben|Chloe|Dev|Eve|Finn", "X", text) for text in texts}
    assert len(shapes) > 1


def test_it_keeps_a_multi_line_signoff_verbatim():
    signoff = "Sam Rivera\nStreamly, Inc."
    assert textgen.reply(email_prompt(signoff=signoff)).endswith(f"\n\n{signoff}\n</body>")


def test_it_never_emits_placeholders():
    for name in ("Ana", "Ben", "Chloe"):
        text = textgen.reply(email_prompt(name=name, genre=""))
        assert "[Your Name]" not in text and "{{" not in text and "{" not in text


def test_a_prompt_without_blocks_gets_a_short_echo():
    assert textgen.reply("What is   the capital\nof France?") == "Echo: What is the capital of France?"
    assert len(textgen.reply("word " * 500)) < 220


def test_parse_brief_reads_the_blocks():
    brief = textgen.parse_brief(email_prompt(movies=MOVIES[:1]))
    assert brief.first_name == "Maria"
    assert brief.genre == "Comedy"
    assert brief.signoff == "Sam from Streamly"
    assert brief.movies == (textgen.Movie("The Grand Heist", "2004", "Comedy, Crime", MOVIES[0]["plot"]),)
