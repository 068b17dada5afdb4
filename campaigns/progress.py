"""How far a run has got, in words: the terminal line of run_campaign --wait and the demo, and the admin's figures.
Rate and ETA are the run row's own (kept by services.run_refresh), so every display agrees with the API."""

import time

from campaigns.models import CampaignRun, RunStatus

FINISHED = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


def watch_run(run: CampaignRun, out, *, interval: float = 1.0, timeout: float | None = None) -> CampaignRun:
    """Poll the run row and redraw one progress line until it finishes (or the timeout passes)."""
    started, last = time.monotonic(), None
    while True:
        run.refresh_from_db()
        line = progress_line(run, time.monotonic() - started)
        if line != last:
            out.write("\r" + line.ljust(100))
            out.flush()
            last = line
        if run.status in FINISHED or (timeout is not None and time.monotonic() - started > timeout):
            out.write("\n")
            return run
        time.sleep(interval)


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
