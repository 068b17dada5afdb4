"""Prompt templates: the context a prompt is rendered with, and the check on save. Tenant templates and tenant
data are untrusted: templates run in the limited sandbox (campaigns/sandbox.py), and data values cannot forge
prompt blocks."""

import re
from functools import lru_cache
from pathlib import Path

from django.conf import settings

# Generation and the tests take the renderer from here, with the context it renders.
from campaigns.sandbox import TemplateProblem as TemplateProblem
from campaigns.sandbox import check_in_child
from campaigns.sandbox import render as render

DEFAULTS_DIR = Path(settings.BASE_DIR) / "templates" / "prompts"
_TAG = re.compile(r"</?\s*[a-zA-Z][\w-]*\s*>")


def check_template(source: str) -> None:
    """Render against sample data, so a broken template is refused when saved, not mid-run. In a child process
    with its own memory and time limits: the web worker must survive whatever a template tries."""
    if source.strip():
        check_in_child(source, sample_context())


@lru_cache(maxsize=4)
def default_source(name: str) -> str:
    return (DEFAULTS_DIR / name).read_text(encoding="utf-8")


def clean_text(value, limit: int = 1000) -> str:
    """Tenant data as plain text: no tags that could open or close a prompt block, bounded length."""
    text = _TAG.sub("", str(value or "")).replace("<", "‹").replace(">", "›")
    return " ".join(text.split())[:limit]


def prompt_context(*, tenant, campaign, contact, picks, favorite_genre: str | None) -> dict:
    return {
        "contact": {
            "first_name": clean_text(contact.first_name, 100) or "there",
            "last_name": clean_text(contact.last_name, 100),
            "age": contact.age or "",
            "gender": clean_text(contact.gender, 20),
            "locale": clean_text(contact.locale, 20),
        },
        "favorite_genre": clean_text(favorite_genre, 100),
        "items": [
            {
                "title": clean_text(p.title, 300),
                "year": p.year or "",
                "genres": [clean_text(g, 50) for g in p.genres],
                "plot": clean_text(p.plot, 800),
            }
            for p in picks
        ],
        "brand": clean_text(tenant.brand, 200),
        "sender_name": clean_text(tenant.sender_name, 200),
        "signoff": clean_text(tenant.signoff, 300),
        "campaign_goal": clean_text(campaign.goal, 300) if campaign else "",
    }


def sample_context() -> dict:
    return {
        "contact": {"first_name": "Alex", "last_name": "Doe", "age": 30, "gender": "female", "locale": "en_US"},
        "favorite_genre": "Comedy",
        "items": [{"title": "Sample Movie", "year": 2020, "genres": ["Comedy"], "plot": "A sample plot."}],
        "brand": "Brand",
        "sender_name": "Sam",
        "signoff": "Sam from Brand",
        "campaign_goal": "",
    }
