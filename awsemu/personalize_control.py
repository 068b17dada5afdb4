"""Personalize's control plane (JSON 1.1, `X-Amz-Target: AmazonPersonalize.<Operation>`): dataset groups,
schemas, datasets, dataset import jobs that read CSV from the emulated S3, recommenders and filters, each with
Create, Describe, List and Delete, walking CREATE PENDING -> CREATE IN_PROGRESS -> ACTIVE (or CREATE FAILED).

Resources live per account and region, as the caller's signature names them. A recommender answers from the
data its dataset group holds now: AWS retrains on its own schedule, the emulator shows a finished import at once.
"""

import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from awsemu import personalize_data, personalize_filters
from awsemu.lifecycle import Lifecycle
from awsemu.personalize import ItemItemModel, Served
from awsemu.wire import AwsError, parse_s3_uri, read_json

INVALID = "InvalidInputException"
STEPS = ("CREATE PENDING", "CREATE IN_PROGRESS")
NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,62}$")
DOMAINS = ("ECOMMERCE", "VIDEO_ON_DEMAND")
DATASET_TYPES = {"interactions": "Interactions", "items": "Items", "users": "Users"}
RECIPES = {
    f"arn:aws:personalize:::recipe/{name}": domain
    for domain, names in {
        "VIDEO_ON_DEMAND": ("aws-vod-top-picks", "aws-vod-because-you-watched-x", "aws-vod-more-like-x",
                            "aws-vod-most-popular", "aws-vod-trending-now"),
        "ECOMMERCE": ("aws-ecomm-recommended-for-you", "aws-ecomm-customers-who-viewed-x-also-viewed",
                      "aws-ecomm-frequently-bought-together", "aws-ecomm-popular-items-by-purchases",
                      "aws-ecomm-popular-items-by-views"),
    }.items()
    for name in names
}  # fmt: skip
FAULTS = {
    "throttle": ("ThrottlingException", 400, "Rate exceeded"),
    "timeout": ("RequestTimeoutException", 408, "Request timed out."),
    "internal": ("InternalFailure", 500, "The request processing has failed because of an unknown error."),
    "unavailable": ("ServiceUnavailable", 503, "The service is temporarily unavailable."),
}


@dataclass(frozen=True)
class Kind:
    name: str  # as in the operation names: DescribeDatasetGroup, ListDatasetGroups, ...
    key: str  # Describe's reply key
    list_key: str
    parent_key: str  # the List filter, "" for top-level kinds

    @property
    def arn_key(self) -> str:
        return f"{self.key}Arn"


KINDS = {kind.name: kind for kind in (
    Kind("DatasetGroup", "datasetGroup", "datasetGroups", ""),
    Kind("Schema", "schema", "schemas", ""),
    Kind("Dataset", "dataset", "datasets", "datasetGroupArn"),
    Kind("DatasetImportJob", "datasetImportJob", "datasetImportJobs", "datasetArn"),
    Kind("Recommender", "recommender", "recommenders", "datasetGroupArn"),
    Kind("Filter", "filter", "Filters", "datasetGroupArn"),
)}  # fmt: skip


@dataclass
class Resource:
    kind: str
    arn: str
    fields: dict  # what Describe shows besides status and times
    life: Lifecycle | None = None  # None for schemas, which have no status
    internal: dict = field(default_factory=dict)  # parsed schema fields, filter expressions, imported rows
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    def status(self) -> str:
        return self.life.status() if self.life else "ACTIVE"

    def describe(self) -> dict:
        out = dict(self.fields, creationDateTime=self.created.timestamp())
        if self.life:
            out.update(status=self.life.status(), lastUpdatedDateTime=self.life.updated_at.timestamp())
            if self.life.failure_reason:
                out["failureReason"] = self.life.failure_reason
        return out


class PersonalizeControl:
    def __init__(self, s3, knobs):
        self.s3, self.knobs = s3, knobs
        self._lock = threading.RLock()  # one lock for the whole plane; settling an import re-enters it
        self._resources: dict[str, Resource] = {}  # ARN -> resource, in creation order
        self._models: dict[str, tuple[tuple, ItemItemModel]] = {}  # dataset group -> (data version, model)

    def clear(self) -> None:
        with self._lock:
            self._resources.clear()
            self._models.clear()

    def handle(self, operation: str, body: bytes, region: str, account: str) -> dict:
        request = read_json(body, INVALID)
        scope = f"arn:aws:personalize:{region}:{account}:"
        verb = next((v for v in ("Create", "Describe", "List", "Delete") if operation.startswith(v)), "")
        kind = KINDS.get(operation[len(verb) : -1] if verb == "List" else operation[len(verb) :])
        if kind is None:
            raise AwsError("UnknownOperationException", 400, f"The emulator has no AmazonPersonalize.{operation}.")
        with self._lock:
            if verb == "Create":
                return getattr(self, f"_create_{_snake(kind.name)}")(request, scope)
            if verb == "Describe":
                return {kind.key: self._get(kind.name, request.get(kind.arn_key), scope).describe()}
            if verb == "List":
                return self._list(kind, request, scope)
            self._delete(kind, request.get(kind.arn_key), scope)
            return {}

    def serve(self, arn: str, region: str, account: str) -> Served | None:
        """What answers GetRecommendations for a recommender ARN, or None when the control plane has none."""
        scope = f"arn:aws:personalize:{region}:{account}:"
        with self._lock:
            recommender = self._resources.get(arn)
            if recommender is None or recommender.kind != "Recommender" or not arn.startswith(scope):
                return None
            status = recommender.status()
            if status != "ACTIVE":
                raise AwsError("ResourceNotFoundException", 404, f"Recommender {arn} is {status}, not ACTIVE.")
            group = recommender.fields["datasetGroupArn"]
            items = self._dataset(group, "Items")
            config = recommender.fields.get("recommenderConfig") or {}
            return Served(
                model=self._model(group),
                filters=partial(self._filter_expressions, group=group, scope=scope),
                metadata=bool(config.get("enableMetadataWithRecommendations")),
                columns=frozenset(self._schema_fields(items)) if items else frozenset({"ITEM_ID"}),
            )

    # Creation, one method per kind.
    def _create_dataset_group(self, request: dict, scope: str) -> dict:
        name, domain = _name(request, "name"), request.get("domain")
        if domain is not None and domain not in DOMAINS:
            raise AwsError(INVALID, 400, f"domain must be one of {', '.join(DOMAINS)}.")
        arn = f"{scope}dataset-group/{name}"
        fields = {"name": name, "datasetGroupArn": arn, **({"domain": domain} if domain else {})}
        self._add(Resource("DatasetGroup", arn, fields, self._life()))
        return {"datasetGroupArn": arn, **({"domain": domain} if domain else {})}

    def _create_schema(self, request: dict, scope: str) -> dict:
        name, text, domain = _name(request, "name"), request.get("schema"), request.get("domain")
        arn = f"{scope}schema/{name}"
        fields = {"name": name, "schemaArn": arn, "schema": text, **({"domain": domain} if domain else {})}
        self._add(Resource("Schema", arn, fields, internal={"fields": personalize_data.schema_fields(text)}))
        return {"schemaArn": arn}

    def _create_dataset(self, request: dict, scope: str) -> dict:
        group = self._active("DatasetGroup", request.get("datasetGroupArn"), scope)
        schema = self._get("Schema", request.get("schemaArn"), scope)
        kind = DATASET_TYPES.get(str(request.get("datasetType", "")).lower())
        if kind is None:
            raise AwsError(INVALID, 400, "datasetType must be Interactions, Items or Users.")
        domain = group.fields.get("domain")
        if schema.fields.get("domain") != domain:
            raise AwsError(INVALID, 400, "The schema's domain must match the dataset group's domain.")
        missing = personalize_data.missing_fields(schema.internal["fields"], kind, domain)
        if missing:
            raise AwsError(INVALID, 400, f"A {kind} schema needs the field(s) {', '.join(sorted(missing))}.")
        arn = f"{scope}dataset/{group.fields['name']}/{kind.upper()}"
        fields = {"name": _name(request, "name"), "datasetArn": arn, "datasetGroupArn": group.arn,
                  "datasetType": kind.upper(), "schemaArn": schema.arn}  # fmt: skip
        self._add(Resource("Dataset", arn, fields, self._life(), internal={"type": kind}))
        return {"datasetArn": arn}

    def _create_dataset_import_job(self, request: dict, scope: str) -> dict:
        dataset = self._active("Dataset", request.get("datasetArn"), scope)
        location = (request.get("dataSource") or {}).get("dataLocation")
        parse_s3_uri(location, INVALID)
        mode = request.get("importMode", "FULL")
        if mode not in ("FULL", "INCREMENTAL"):
            raise AwsError(INVALID, 400, "importMode must be FULL or INCREMENTAL.")
        name = _name(request, "jobName")
        arn = f"{scope}dataset-import-job/{name}"
        fields = {"jobName": name, "datasetImportJobArn": arn, "datasetArn": dataset.arn,
                  "dataSource": {"dataLocation": location}, "importMode": mode,
                  **({"roleArn": request["roleArn"]} if request.get("roleArn") else {})}  # fmt: skip
        job = Resource("DatasetImportJob", arn, fields)
        job.life = self._life(partial(self._run_import, job))
        self._add(job)
        return {"datasetImportJobArn": arn}

    def _create_recommender(self, request: dict, scope: str) -> dict:
        group = self._active("DatasetGroup", request.get("datasetGroupArn"), scope)
        recipe = request.get("recipeArn")
        if RECIPES.get(recipe) != group.fields.get("domain"):
            raise AwsError(INVALID, 400, f"Recipe {recipe} is not a recipe of the dataset group's domain.")
        name = _name(request, "name")
        arn = f"{scope}recommender/{name}"
        fields = {"name": name, "recommenderArn": arn, "datasetGroupArn": group.arn, "recipeArn": recipe,
                  "recommenderConfig": request.get("recommenderConfig") or {}}  # fmt: skip
        self._add(Resource("Recommender", arn, fields, self._life(partial(self._check_training_data, group.arn))))
        return {"recommenderArn": arn}

    def _create_filter(self, request: dict, scope: str) -> dict:
        group = self._active("DatasetGroup", request.get("datasetGroupArn"), scope)
        expressions = personalize_filters.parse(request.get("filterExpression"))
        for expression in expressions:
            if self._dataset(group.arn, expression.dataset) is None:
                raise AwsError(INVALID, 400, f"The filter uses the {expression.dataset} dataset, which the dataset "
                               "group does not have.")  # fmt: skip
        name = _name(request, "name")
        arn = f"{scope}filter/{name}"
        fields = {"name": name, "filterArn": arn, "datasetGroupArn": group.arn,
                  "filterExpression": request["filterExpression"]}  # fmt: skip
        self._add(Resource("Filter", arn, fields, self._life(), internal={"expressions": expressions}))
        return {"filterArn": arn}

    # The rest of the verbs, the same for every kind.
    def _list(self, kind: Kind, request: dict, scope: str) -> dict:
        parent = request.get(kind.parent_key) if kind.parent_key else None
        found = [r for r in self._resources.values() if r.kind == kind.name and r.arn.startswith(scope)
                 and (parent is None or r.fields.get(kind.parent_key) == parent)]  # fmt: skip
        size = request.get("maxResults") or 100
        token = request.get("nextToken") or "0"
        if not str(token).isdigit():
            raise AwsError("InvalidNextTokenException", 400, "The token is not valid.")
        start = int(token)
        out = {kind.list_key: [r.describe() for r in found[start : start + size]]}
        if start + size < len(found):
            out["nextToken"] = str(start + size)
        return out

    def _delete(self, kind: Kind, arn: str, scope: str) -> None:
        resource = self._get(kind.name, arn, scope)
        users = [r for r in self._resources.values() if arn in (r.fields.get("datasetGroupArn"), r.fields.get("schemaArn"))
                 and r.kind != "DatasetImportJob" and r.arn != arn]  # fmt: skip
        if users:
            raise AwsError("ResourceInUseException", 400, f"{arn} is in use by {users[0].arn}; delete that first.")
        if resource.kind == "Dataset":  # its data goes with it
            for job in [r for r in self._resources.values() if r.fields.get("datasetArn") == arn]:
                del self._resources[job.arn]
        del self._resources[arn]

    def _get(self, kind: str, arn, scope: str) -> Resource:
        if not isinstance(arn, str) or not arn.startswith("arn:aws:personalize:"):
            raise AwsError(INVALID, 400, f"{arn!r} is not a Personalize ARN.")
        resource = self._resources.get(arn)
        if resource is None or resource.kind != kind or not arn.startswith(scope):
            raise AwsError("ResourceNotFoundException", 400, f"Could not find resource: {arn}")
        return resource

    def _active(self, kind: str, arn, scope: str) -> Resource:
        resource = self._get(kind, arn, scope)
        status = resource.status()
        if status != "ACTIVE":
            raise AwsError("ResourceInUseException", 400, f"{arn} is {status}; wait until it is ACTIVE.")
        return resource

    def _add(self, resource: Resource) -> None:
        if resource.arn in self._resources:
            raise AwsError("ResourceAlreadyExistsException", 400, f"{resource.arn} already exists.")
        self._resources[resource.arn] = resource

    def _life(self, work=None) -> Lifecycle:
        step_s = self.knobs.value("status_step_ms") / 1000
        return Lifecycle(STEPS, step_s=step_s, done="ACTIVE", failed="CREATE FAILED", work=work)

    # Data: imports, what a dataset holds, and the model a dataset group's recommenders serve.
    def _run_import(self, job: Resource) -> str | None:
        """Read and check the job's CSV; the rows count once the job is ACTIVE. Returns a failure reason."""
        with self._lock:
            dataset = self._resources.get(job.fields["datasetArn"])
            if dataset is None:
                return "The dataset was deleted before the import ran."
            columns = self._schema_fields(dataset)
        location = job.fields["dataSource"]["dataLocation"]
        bucket, key = parse_s3_uri(location, INVALID)
        try:
            # A location ending in "/" is a folder: every CSV file in it is imported.
            keys = [key] if key and not key.endswith("/") else self.s3.keys(bucket, key)
            texts = [self.s3.read(bucket, k).decode("utf-8-sig") for k in keys if k == key or k.endswith(".csv")]
            if not texts:
                return f"No CSV files found at {location}."
            job.internal["rows"] = [
                row for text in texts for row in personalize_data.csv_rows(text, columns, dataset.internal["type"])
            ]
        except personalize_data.BadData as exc:
            return str(exc)
        except (AwsError, UnicodeDecodeError) as exc:
            return f"Input CSV {location} cannot be read: {getattr(exc, 'message', exc)}"
        return None

    def _rows(self, dataset: Resource) -> tuple[tuple[str, ...], list[dict]]:
        """(the dataset's ACTIVE import jobs, oldest first, and the rows they leave in it)."""
        jobs = [r for r in list(self._resources.values())
                if r.kind == "DatasetImportJob" and r.fields["datasetArn"] == dataset.arn and r.status() == "ACTIVE"]  # fmt: skip
        imports = [(job.fields["importMode"], job.internal["rows"]) for job in jobs]
        return tuple(job.arn for job in jobs), personalize_data.merged(imports, dataset.internal["type"])

    def _dataset(self, group_arn: str, kind: str) -> Resource | None:
        return next((r for r in self._resources.values() if r.kind == "Dataset"
                     and r.fields["datasetGroupArn"] == group_arn and r.internal["type"] == kind), None)  # fmt: skip

    def _schema_fields(self, dataset: Resource) -> dict:
        return self._resources[dataset.fields["schemaArn"]].internal["fields"]

    def _model(self, group_arn: str) -> ItemItemModel:
        datasets = [self._dataset(group_arn, kind) for kind in ("Items", "Interactions")]
        (item_jobs, items), (interaction_jobs, interactions) = (self._rows(d) if d else ((), []) for d in datasets)
        version = item_jobs + interaction_jobs
        cached = self._models.get(group_arn)
        if cached is None or cached[0] != version:
            cached = self._models[group_arn] = (version, ItemItemModel(items, interactions))
        return cached[1]

    def _check_training_data(self, group_arn: str) -> str | None:
        with self._lock:
            interactions = self._dataset(group_arn, "Interactions")
            if interactions is None or not self._rows(interactions)[1]:
                return "Insufficient data: import interactions into the dataset group before creating a recommender."
        return None

    def _filter_expressions(self, filter_arn: str, *, group: str, scope: str) -> tuple:
        with self._lock:
            found = self._resources.get(filter_arn)
            if found is None or found.kind != "Filter" or not filter_arn.startswith(scope):
                raise AwsError("ResourceNotFoundException", 404, f"Could not find the filter: {filter_arn}")
            if found.fields["datasetGroupArn"] != group:
                raise AwsError(INVALID, 400, f"Filter {filter_arn} belongs to another dataset group.")
            if found.status() != "ACTIVE":
                raise AwsError(INVALID, 400, f"Filter {filter_arn} is {found.status()}, not ACTIVE.")
            return found.internal["expressions"]


def _name(request: dict, key: str) -> str:
    name = request.get(key)
    if not isinstance(name, str) or not NAME.match(name):
        raise AwsError(INVALID, 400, f"{key} {name!r} must be 1-63 letters, digits, '-' or '_', starting with a "
                       "letter or digit.")  # fmt: skip
    return name


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
