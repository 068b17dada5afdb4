"""A terminal progress display for a running campaign run (used by the demo and run_campaign)."""

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
    bar = "#" * int(width * done / total)
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = f"{(total - done) / rate:.0f}s" if rate > 0 and done < total else "-"
    return (
        f"[{bar:<{width}}] {done}/{run.total} ({run.failed} failed) {run.status} "
        f"{elapsed:.0f}s elapsed, {rate * 60:.1f}/min, ETA {eta}"
    )
