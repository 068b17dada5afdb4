"""How far a run has got, in words: the terminal line of run_campaign --wait and the demo, and the admin's figures.
Rate and ETA are the run row's own (kept by campaigns.runs.run_refresh), so every display agrees with the API."""

import time

from django.core.management.base import OutputWrapper

from campaigns.models import CampaignRun, RunStatus

FINISHED = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
LOG_EVERY_PERCENT, LOG_EVERY_SECONDS = 10, 30  # when the output is not a terminal


def watch_run(run: CampaignRun, out, *, interval: float = 1.0, timeout: float | None = None) -> CampaignRun:
    """Poll the run row until it finishes (or the timeout passes). On a terminal, one progress line is redrawn in
    place; elsewhere (a log, a pipe), a line is written every tenth of the run or every 30 s, and at the end."""
    tty = out.isatty() if hasattr(out, "isatty") else False
    started, shown, shown_at, step = time.monotonic(), None, 0.0, -1
    while True:
        run.refresh_from_db()
        elapsed = time.monotonic() - started
        line, finished = progress_line(run, elapsed), run.status in FINISHED
        tenth = int(run.percent // LOG_EVERY_PERCENT)
        due = finished or tenth > step or elapsed - shown_at >= LOG_EVERY_SECONDS
        if line != shown and (tty or due):
            _write(out, f"\r{line.ljust(100)}" if tty else f"{line}\n")
            shown, shown_at, step = line, elapsed, tenth
        if finished or (timeout is not None and elapsed > timeout):
            if tty:
                _write(out, "\n")
            return run
        time.sleep(interval)


def _write(out, text: str) -> None:
    # A command's stdout ends every write with a newline unless told otherwise, which would break the redraw.
    out.write(text, ending="") if isinstance(out, OutputWrapper) else out.write(text)
    out.flush()


def progress_line(run: CampaignRun, elapsed: float) -> str:
    done, total = run.processed, max(run.total, 1)
    width = 30
    bar = "#" * int(width * min(done, total) / total)
    return (
        f"[{bar:<{width}}] {done}/{run.total} ({run.failed} failed) {run.status} "
        f"{elapsed:.0f}s elapsed, {rate_text(run)}, ETA {eta_text(run)}"
    )


def done_text(run: CampaignRun) -> str:
    return f"{run.processed} / {run.total} ({run.percent:.1f}%)"


def rate_text(run: CampaignRun) -> str:
    return f"{run.rate_per_s * 60:.1f}/min"


def eta_text(run: CampaignRun) -> str:
    seconds = run.eta_seconds
    return "-" if seconds is None else duration_text(seconds)


def duration_text(seconds: int) -> str:
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
