"""When an email may go out: the contact's time zone (their own, else guessed from their locale, else the
tenant's) and a campaign's send window in that time. Pure functions over times and names; no database."""

import functools
import importlib.resources
import zoneinfo
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

# Countries with several zones whose first line in zone.tab is not where most people live (zone.tab lists a
# country's zones roughly east to west or north to south, not by population). Also the answer when no zone.tab
# can be read at all.
MAIN_ZONES = {
    "AU": "Australia/Sydney", "BR": "America/Sao_Paulo", "CA": "America/Toronto", "RU": "Europe/Moscow",
    "UA": "Europe/Kyiv", "US": "America/New_York", "GB": "Europe/London", "FR": "Europe/Paris",
    "DE": "Europe/Berlin", "ES": "Europe/Madrid", "IT": "Europe/Rome", "NL": "Europe/Amsterdam",
    "IN": "Asia/Kolkata", "JP": "Asia/Tokyo", "MX": "America/Mexico_City", "ID": "Asia/Jakarta",
}  # fmt: skip


@functools.cache
def country_zones() -> dict[str, str]:
    """Country code → its main zone: the first zone zone.tab lists for it (from the tzdata package, else the
    system's zoneinfo), with MAIN_ZONES over it."""
    zones: dict[str, str] = {}
    for line in _zone_tab().splitlines():
        if line and not line.startswith("#"):
            fields = line.split("\t")
            if len(fields) >= 3:
                zones.setdefault(fields[0].upper(), fields[2])
    return {**zones, **MAIN_ZONES}


def _zone_tab() -> str:
    try:
        return importlib.resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        pass
    for directory in zoneinfo.TZPATH:
        path = Path(directory) / "zone.tab"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return ""


def locale_zone(locale: str) -> str:
    """The main zone of a locale's country ("fr_FR" → Europe/Paris, "en-US" → America/New_York), or ''."""
    base = locale.split(".", 1)[0].split("@", 1)[0].replace("-", "_")
    parts = base.split("_")
    country = parts[1].upper() if len(parts) >= 2 else ""
    return country_zones().get(country, "") if len(country) == 2 else ""


def zone_of(*names: str) -> zoneinfo.ZoneInfo:
    """The first of these names that is a time zone; UTC if none is."""
    for name in names:
        if name:
            try:
                return zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
    return zoneinfo.ZoneInfo("UTC")


def contact_zone(contact, tenant) -> zoneinfo.ZoneInfo:
    return zone_of(contact.timezone, locale_zone(contact.locale or ""), tenant.timezone)


def window_opening(now: datetime, start: time | None, end: time | None, zone) -> datetime | None:
    """None when `now` is inside the window [start, end) in `zone` (an end before the start spans midnight; no
    window, or start == end, is any time); else the window's next opening, in UTC."""
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(zone)
    at = local.time().replace(tzinfo=None)
    inside = start <= at < end if start < end else (at >= start or at < end)
    if inside:
        return None
    day = local.date() if at < start else local.date() + timedelta(days=1)
    return datetime.combine(day, start, tzinfo=zone).astimezone(UTC)


def window_text(start: time, end: time, zone) -> str:
    return f"{start:%H:%M}–{end:%H:%M} {zone.key}"
