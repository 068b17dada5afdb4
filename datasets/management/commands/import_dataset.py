"""python manage.py import_dataset --tenant SLUG [--users F] [--items F] [--interactions F] [--suppressions F]"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from datasets.csvfile import FileProblem, check_file
from datasets.importers import ImportReport, import_interactions, import_items, import_suppressions, import_users
from tenants.models import Tenant

SHOWN = 20
ALL_LANDED, SOME_REJECTED, NOTHING_IMPORTED = 0, 1, 2


class Command(BaseCommand):
    help = (
        "Import contacts, items and interactions from CSV files in Amazon Personalize's bulk format, and "
        "addresses for the suppression list. "
        "Each rejected row is listed with its line and what to fix; the good rows around it are imported. "
        f"The exit status is {ALL_LANDED} when every row landed (rows already stored count as landed), "
        f"{SOME_REJECTED} when some rows were rejected or a file could not be read (the rest landed), "
        f"and {NOTHING_IMPORTED} when nothing was imported."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument(
            "--users", type=Path, help="CSV: USER_ID,EMAIL[,FIRST_NAME,LAST_NAME,AGE,GENDER,LOCALE,UNSUBSCRIBED]"
        )
        parser.add_argument("--items", type=Path, help="CSV: ITEM_ID,TITLE[,YEAR,GENRES,PLOT,…]")
        parser.add_argument("--interactions", type=Path, help="CSV: USER_ID,ITEM_ID,TIMESTAMP[,EVENT_TYPE]")
        parser.add_argument(
            "--suppressions", type=Path, help="CSV: EMAIL[,REASON,NOTE]; REASON unsubscribed, hard_bounce, complaint "
            "or imported (blank)",
        )  # fmt: skip

    def handle(self, *args, tenant, users, items, interactions, suppressions, **options):
        tenant_obj = self._tenant(tenant)
        # Order matters: interactions refer to users and items.
        given = ((users, import_users), (items, import_items), (interactions, import_interactions),
                 (suppressions, import_suppressions))  # fmt: skip
        files = [(path, importer) for path, importer in given if path is not None]
        if not files:
            raise CommandError(
                "Nothing to import: give at least one of --users, --items, --interactions, --suppressions"
            )
        self._refuse_missing([path for path, _ in files])
        reports = []
        for path, importer in files:
            reports.append(importer(path, tenant=tenant_obj, by=f"import_dataset:{path.name}"))
            self._show(path, reports[-1])
        self._exit(reports)

    def _tenant(self, slug: str) -> Tenant:
        try:
            return Tenant.objects.get(slug=slug)
        except Tenant.DoesNotExist:
            existing = ", ".join(Tenant.objects.values_list("slug", flat=True))
            raise CommandError(f"No tenant {slug!r}; existing: {existing}", returncode=NOTHING_IMPORTED) from None

    def _refuse_missing(self, paths: list[Path]) -> None:
        """A file missing, empty or too large stops the run before anything is written (users before their interactions)."""
        problems = []
        for path in paths:
            try:
                check_file(path)
            except FileProblem as exc:
                problems.append(f"{path}: {exc}")
        if problems:
            raise CommandError("\n".join(problems) + "\nNothing was imported.", returncode=NOTHING_IMPORTED)

    def _show(self, path: Path, report: ImportReport) -> None:
        self.stdout.write(f"{path.name}: {report.summary()}")
        for title, entries in (("", report.errors), ("skipped ", report.duplicates), ("note ", report.notices)):
            for line, reason in entries[:SHOWN]:
                self.stdout.write(f"  {title}line {line}: {reason}" if line else f"  {title}{reason}")
            if len(entries) > SHOWN:
                self.stdout.write(f"  … and {len(entries) - SHOWN} more")

    def _exit(self, reports: list[ImportReport]) -> None:
        landed = sum(r.imported + len(r.duplicates) for r in reports)
        rows = sum(1 for r in reports for line, _ in r.errors if line)
        files = sum(1 for r in reports for line, _ in r.errors if not line)
        if not landed:
            raise CommandError(
                "Nothing was imported: fix the problems above and run again.", returncode=NOTHING_IMPORTED
            )
        said = [
            _count(rows, "row was rejected", "rows were rejected"),
            _count(files, "file could not be read", "files could not be read"),
        ]
        if rows or files:
            raise CommandError(f"{' and '.join(s for s in said if s)}; the rest landed.", returncode=SOME_REJECTED)


def _count(n: int, one: str, many: str) -> str:
    return "" if not n else f"1 {one}" if n == 1 else f"{n} {many}"
