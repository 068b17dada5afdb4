"""The Amazon Personalize training workflow behind `manage.py personalize_sync`: export the tenant's data to S3,
create or reuse its dataset group, schemas, datasets and import jobs, the "Top picks for you" recommender and
the filter that leaves out what a contact has already seen, waiting for each to become ACTIVE, and store the
ARNs on the tenant.

Running it again is safe. Every resource is looked up by name before anything is created. Interactions are
imported incrementally from where the last sync stopped; users and items are re-sent whole and replace the old
copy. A file already imported by the dataset's latest job is not imported again, so a sync interrupted
half-way picks up the job it had started instead of importing the same rows twice.
"""

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from recommendations.personalize import PersonalizeError, personalize_call
from recommendations.personalize_export import SCHEMAS, Export, export_interactions, export_items, export_users
from routing.errors import ProviderError
from tenants.aws import s3_bucket_check, s3_object_put

DOMAIN = "VIDEO_ON_DEMAND"
TOP_PICKS = "arn:aws:personalize:::recipe/aws-vod-top-picks"
# Leave out every item the contact has any interaction with, whatever its type, as the embedded recommender does.
EXCLUDE_SEEN = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")'
# Schemas cannot change once created, so a new layout gets a new name; one set serves every tenant in an account.
SCHEMA_NAMES = {kind: f"mailsaas-vod-{kind.lower()}-v1" for kind in SCHEMAS}
MAX_NAME = 63


@dataclass(frozen=True)
class Kind:
    """How the Personalize API names one kind of resource."""

    noun: str  # as in CreateDatasetGroup
    list_key: str
    name_key: str = "name"

    @property
    def snake(self) -> str:
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.noun).lower()

    @property
    def key(self) -> str:  # the Describe reply's key
        return self.noun[0].lower() + self.noun[1:]

    @property
    def arn_key(self) -> str:
        return f"{self.key}Arn"


DATASET_GROUP = Kind("DatasetGroup", "datasetGroups")
SCHEMA = Kind("Schema", "schemas")
DATASET = Kind("Dataset", "datasets")
IMPORT_JOB = Kind("DatasetImportJob", "datasetImportJobs", "jobName")
RECOMMENDER = Kind("Recommender", "recommenders")
FILTER = Kind("Filter", "Filters")


@dataclass
class SyncReport:
    dataset_group_arn: str = ""
    recommender_arn: str = ""
    filter_arn: str = ""
    imported: dict[str, int] = field(default_factory=dict)  # dataset kind -> rows sent this time


def personalize_sync(*, tenant, progress: Callable[[str], None] = lambda line: None, poll_seconds: float = 30,
                     timeout_seconds: float = 4 * 3600) -> SyncReport:  # fmt: skip
    """Bring the tenant's Personalize resources up to date with its data; see the module docstring."""
    bucket = tenant.personalize_bucket or settings.PERSONALIZE_BUCKET
    if not bucket:
        raise PersonalizeError(
            "no S3 bucket to export to: set PERSONALIZE_BUCKET (or the tenant's own)", permanent=True
        )
    _s3(s3_bucket_check, tenant=tenant, bucket=bucket)
    wait = Waiter(tenant, progress, poll_seconds, time.monotonic() + timeout_seconds)
    group = _ensure(tenant, DATASET_GROUP, _name(tenant, "vod"), domain=DOMAIN)
    tenant.personalize_dataset_group_arn = group
    tenant.save(update_fields=["personalize_dataset_group_arn"])
    wait.active(DATASET_GROUP, {"dataset group": group})
    datasets = {kind: _dataset(tenant, group, kind) for kind in SCHEMAS}
    wait.active(DATASET, {f"{kind} dataset": arn for kind, arn in datasets.items()})
    imported = _import_all(tenant, bucket, datasets, wait)
    report = SyncReport(group, *_serving(tenant, group, wait), imported)
    tenant.personalize_recommender_arn, tenant.personalize_filter_arn = report.recommender_arn, report.filter_arn
    tenant.personalize_synced_at = timezone.now()
    tenant.save(update_fields=["personalize_recommender_arn", "personalize_filter_arn", "personalize_synced_at"])
    progress(f"Done: recommender {report.recommender_arn}")
    return report


def _import_all(tenant, bucket: str, datasets: dict[str, str], wait: "Waiter") -> dict[str, int]:
    """Export, import and wait; returns the rows sent per dataset kind (none for a file already imported)."""
    jobs, imported = {}, {}
    exports = _exports(tenant, datasets["Interactions"])
    for export in exports:
        job, started = _import(tenant, bucket, datasets[export.kind], export, wait.progress)
        if job:
            jobs[f"{export.kind} import"] = job
        if started:
            imported[export.kind] = export.rows
    wait.active(IMPORT_JOB, jobs)
    interactions = next(e for e in exports if e.kind == "Interactions")
    if interactions.rows:  # only now, with the rows in, is it safe to move the mark
        tenant.personalize_exported_through = interactions.last_id
        tenant.save(update_fields=["personalize_exported_through"])
    return imported


def _serving(tenant, group: str, wait: "Waiter") -> tuple[str, str]:
    """(the "Top picks for you" recommender, the exclude-seen filter), created if need be, both ACTIVE."""
    config = {"enableMetadataWithRecommendations": True}  # TITLE, PLOT, GENRES come back with each pick
    recommender = _ensure(tenant, RECOMMENDER, _name(tenant, "top-picks"), parent=group, recipeArn=TOP_PICKS,
                          recommenderConfig=config)  # fmt: skip
    exclude = _ensure(tenant, FILTER, _name(tenant, "exclude-seen"), parent=group, filterExpression=EXCLUDE_SEEN)
    wait.active(RECOMMENDER, {"recommender": recommender})
    wait.active(FILTER, {"filter": exclude})
    return recommender, exclude


class Waiter:
    """Polls resources until they are ACTIVE, printing each change of status, or fails with AWS's reason."""

    def __init__(self, tenant, progress, poll_seconds: float, deadline: float):
        self.tenant, self.progress, self.poll_seconds, self.deadline = tenant, progress, poll_seconds, deadline
        self.started = time.monotonic()

    def active(self, kind: Kind, arns: dict[str, str]) -> None:
        pending, seen = dict(arns), {}
        while pending:
            for label, arn in list(pending.items()):
                found = _call(self.tenant, f"describe_{kind.snake}", **{kind.arn_key: arn})[kind.key]
                status = found.get("status", "")
                if seen.get(label) != status:
                    self.progress(f"  {label}: {status} ({time.monotonic() - self.started:.0f}s)")
                    seen[label] = status
                if status == "ACTIVE":
                    del pending[label]
                elif "FAILED" in status:
                    reason = found.get("failureReason") or "no reason given"
                    raise PersonalizeError(f"{label} {arn} failed: {reason}", permanent=True)
            if pending and time.monotonic() > self.deadline:
                raise PersonalizeError(
                    f"gave up waiting for {', '.join(pending)}; run again to resume", permanent=False
                )
            if pending:
                time.sleep(self.poll_seconds)


def _dataset(tenant, group: str, kind: str) -> str:
    schema = _ensure(tenant, SCHEMA, SCHEMA_NAMES[kind], schema=SCHEMAS[kind], domain=DOMAIN)
    # A dataset group holds one dataset of each type, so the type is what identifies it.
    for entry in _list(tenant, DATASET, datasetGroupArn=group):
        if entry.get("datasetType", "").lower() == kind.lower():
            return entry["datasetArn"]
    return _call(tenant, "create_dataset", name=_name(tenant, kind.lower()), schemaArn=schema,
                 datasetGroupArn=group, datasetType=kind)["datasetArn"]  # fmt: skip


def _exports(tenant, interactions_dataset: str) -> list[Export]:
    # An interactions dataset with no import yet (new, or recreated) gets everything, whatever the mark says.
    fresh = not _list(tenant, IMPORT_JOB, datasetArn=interactions_dataset)
    after = 0 if fresh else tenant.personalize_exported_through
    return [
        export_users(tenant=tenant),
        export_items(tenant=tenant),
        export_interactions(tenant=tenant, after_id=after),
    ]


def _import(tenant, bucket: str, dataset: str, export: Export, progress) -> tuple[str, bool]:
    """(the import job that brings this file in, whether it is new): the dataset's latest job if it already
    carries the same file, else a new one; ("", False) when there is nothing to send."""
    if not export.rows:
        return "", False
    digest = hashlib.sha256(export.body).hexdigest()[:12]
    jobs = sorted(_list(tenant, IMPORT_JOB, datasetArn=dataset), key=lambda job: job["creationDateTime"])
    if jobs and f"-{digest}-" in jobs[-1]["jobName"]:
        return jobs[-1]["datasetImportJobArn"], False
    uri = f"s3://{bucket}/personalize/{tenant.slug}/{export.kind.lower()}-{digest}.csv"
    _s3(s3_object_put, tenant=tenant, uri=uri, body=export.body)
    # Interactions accumulate; users and items are sent whole, so FULL replaces the old copy.
    mode = "INCREMENTAL" if export.kind == "Interactions" and jobs else "FULL"
    progress(f"  {export.kind}: {export.rows} rows to {uri} ({mode})")
    request = {"jobName": _name(tenant, f"{export.kind.lower()[:5]}-{digest}-{len(jobs) + 1}"), "datasetArn": dataset,
               "dataSource": {"dataLocation": uri}, "importMode": mode}  # fmt: skip
    role = tenant.personalize_role_arn or settings.PERSONALIZE_ROLE_ARN
    if role:
        request["roleArn"] = role
    return _call(tenant, "create_dataset_import_job", **request)["datasetImportJobArn"], True


def _ensure(tenant, kind: Kind, name: str, parent: str = "", **create) -> str:
    """The ARN of the resource of this kind and name, created first if there is none."""
    where = {"datasetGroupArn": parent} if parent else {}
    for _ in range(2):  # a second look, in case another sync created it between our list and our create
        found = [e[kind.arn_key] for e in _list(tenant, kind, **where) if e.get(kind.name_key) == name]
        if found:
            return found[0]
        try:
            return _call(tenant, f"create_{kind.snake}", **{kind.name_key: name}, **where, **create)[kind.arn_key]
        except PersonalizeError as exc:
            if exc.code != "ResourceAlreadyExistsException":
                raise
    raise PersonalizeError(f"{kind.noun} {name} exists but cannot be listed", permanent=True)


def _list(tenant, kind: Kind, **where) -> list[dict]:
    entries, token = [], {}
    while True:
        page = _call(tenant, f"list_{kind.snake}s", **where, **token)
        entries += page.get(kind.list_key, [])
        if not page.get("nextToken"):
            return entries
        token = {"nextToken": page["nextToken"]}


def _name(tenant, suffix: str) -> str:
    # Names are unique per account and region, so they carry the tenant's id as well as its slug.
    return f"ms{tenant.pk}-{tenant.slug[: MAX_NAME - len(suffix) - 12]}-{suffix}"[:MAX_NAME]


def _call(tenant, operation: str, **params) -> dict:
    return personalize_call(tenant=tenant, service="personalize", operation=operation, **params)


def _s3(helper, **params):
    try:
        return helper(**params)
    except ProviderError as exc:
        raise PersonalizeError.of(exc) from exc
