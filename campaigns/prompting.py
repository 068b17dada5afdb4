"""Prompt templates in a sandboxed Jinja2 environment. Tenant templates and tenant data are untrusted:
templates cannot reach Python internals or build huge strings, and data values cannot forge prompt blocks."""

import re
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment, SecurityError

MAX_TEMPLATE_CHARS = 20_000
MAX_OUTPUT_CHARS = 40_000
DEFAULTS_DIR = Path(settings.BASE_DIR) / "templates" / "prompts"
_TAG = re.compile(r"</?\s*[a-zA-Z][\w-]*\s*>")


class TemplateProblem(ValueError):
    pass


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context, operator, left, right):
        # `'x' * 10**9` or `9 ** 9 ** 9` would exhaust a worker; refuse them.
        if operator == "**" and isinstance(right, int) and abs(right) > 100:
            raise SecurityError("exponent too large")
        if (
            operator == "*"
            and isinstance(left, (str, list))
            and isinstance(right, int)
            and len(left) * right > MAX_OUTPUT_CHARS
        ):
            raise SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


_ENV = _Sandbox(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True
)


@lru_cache(maxsize=256)
def compile_template(source: str):
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(f"template is {len(source)} characters; the limit is {MAX_TEMPLATE_CHARS}")
    try:
        return _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error on line {exc.lineno}: {exc.message}") from exc


def render(source: str, context: dict) -> str:
    template = compile_template(source)
    try:
        text = template.render(context)
    except SecurityError as exc:
        raise TemplateProblem(f"template refused by the sandbox: {exc}") from exc
    except TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from exc
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise TemplateProblem(f"template failed while rendering: {exc}") from exc
    if len(text) > MAX_OUTPUT_CHARS:
        raise TemplateProblem(f"rendered prompt is {len(text)} characters; the limit is {MAX_OUTPUT_CHARS}")
    return text


def check_template(source: str) -> None:
    """Compile and render against sample data, so a broken template is refused when saved, not mid-run."""
    if source.strip():
        render(source, sample_context())


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
