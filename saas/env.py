"""Read settings from the environment, failing loudly (with the variable's name) on a bad value."""

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use one of: true, false, 1, 0, yes, no")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if value != value or (minimum is not None and value < minimum):  # NaN, or below the minimum
        raise ImproperlyConfigured(f"{name}={raw!r} must be a number of at least {minimum}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def env_json(name: str, default):
    import json

    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {exc}") from None


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of: {', '.join(choices)}")
    return value


def database_from_url(url: str, *, base_dir) -> dict:
    """DATABASE_URL → Django DATABASES entry: postgres://user:pass@host:port/name or sqlite:///path."""
    from urllib.parse import unquote, urlparse

    # WAL lets the admin and progress displays read while a run writes.
    sqlite_options = {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 30}
    if not url:
        (base_dir / "var").mkdir(exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(base_dir / "var" / "db.sqlite3"),
            "OPTIONS": sqlite_options,
        }
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        name = parsed.path[1:] if parsed.path else ":memory:"
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": name, "OPTIONS": sqlite_options}
    if parsed.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme {parsed.scheme!r} is not supported; use postgres://… or sqlite:///…"
        )
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")),
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        "CONN_MAX_AGE": 60,
    }


_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400,
            "day": 86400}  # fmt: skip


def env_rate(name: str, default: str) -> tuple[int, int] | None:
    """A rate `N/period` (period: s, min, hour or day) → (N, seconds); `off` → None (no limit)."""
    raw = os.environ.get(name) or default
    if raw.strip().lower() == "off":
        return None
    count, _, period = raw.strip().partition("/")
    if not count.isdigit() or int(count) < 1 or period.strip().lower() not in _PERIODS:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a rate; use e.g. 600/min, 10/s, 5000/hour, or off")
    return int(count), _PERIODS[period.strip().lower()]
