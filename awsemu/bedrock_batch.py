"""Bedrock batch inference (the `bedrock` control plane): CreateModelInvocationJob, GetModelInvocationJob and
StopModelInvocationJob.

A job reads JSONL records (`{"recordId", "modelInput"}`) from S3, walks Submitted -> Validating -> Scheduled ->
InProgress, and on completing writes `<output>/<job id>/<input file>.out` (one line per record, with
`modelOutput` or `error`) and `manifest.json.out` with the counts, as AWS does. `modelInput` is the model's
native InvokeModel body, or a Converse request when the job's modelInvocationType is "Converse".

A job can be stopped until it ends; it is then Stopping for one status step and Stopped. Stopping one that has
ended (or is already stopping) is a ValidationException. The emulator does a job's work at the moment it
completes, so a stopped job has processed no records: it writes no output and reports no counts (AWS keeps,
and bills, what it processed before the stop).
"""

import json
import re
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from functools import partial

from awsemu import bedrock_bodies
from awsemu.bedrock import MODELS, PROFILE_PREFIXES, BedrockRuntime
from awsemu.lifecycle import Lifecycle
from awsemu.wire import AwsError, parse_s3_uri, read_json

INVALID = "ValidationException"
STEPS = ("Submitted", "Validating", "Scheduled", "InProgress")  # a job can be stopped in these
ENDED = ("Completed", "PartiallyCompleted", "Failed", "Stopped")
MIN_RECORDS = 100  # Bedrock's minimum records per batch inference job
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9+\-.]){0,62}$")
ROLE_ARN = re.compile(r"^arn:aws(-[^:]+)?:iam::(\d{12})?:role/.+$")
FAULTS = {
    "throttle": ("ThrottlingException", 429, "Too many requests, please wait before trying again."),
    "timeout": ("InternalServerException", 500, "The request timed out."),
    "internal": ("InternalServerException", 500, "The server encountered an internal error."),
    "unavailable": ("ServiceUnavailableException", 503, "The service is temporarily unavailable."),
}


class BatchJobs:
    def __init__(self, runtime: BedrockRuntime, s3, knobs):
        self.runtime, self.s3, self.knobs = runtime, s3, knobs
        self._lock = threading.Lock()
        self._jobs: dict[str, dict] = {}  # job ARN -> the job's fields, its lifecycle under "life"

    def clear(self) -> None:
        with self._lock:
            self._jobs.clear()

    def create(self, body: bytes, region: str, account: str) -> dict:
        request = read_json(body, INVALID)
        token = request.get("clientRequestToken")
        with self._lock:
            same = [arn for arn, job in self._jobs.items() if token and job.get("clientRequestToken") == token]
        if same:  # an idempotent retry of a create that already succeeded
            return {"jobArn": same[0]}
        job = _validated(request)
        job_id = secrets.token_hex(6)
        arn = f"arn:aws:bedrock:{region}:{account}:model-invocation-job/{job_id}"
        step_s = self.knobs.value("status_step_ms") / 1000
        # The lock makes reading a job's status and stopping it one step, so a stop never lands on a job that
        # completes at the same moment.
        job.update(jobArn=arn, jobId=job_id, region=region, account=account, lock=threading.Lock())
        job["life"] = Lifecycle(STEPS, step_s=step_s, done="Completed", failed="Failed",
                                work=partial(self._run, job))  # fmt: skip
        with self._lock:
            if any(other["jobName"] == job["jobName"] for other in self._jobs.values()):
                raise AwsError("ConflictException", 409, f"A job named {job['jobName']} already exists.")
            self._jobs[arn] = job
        return {"jobArn": arn}

    def get(self, identifier: str, region: str, account: str) -> dict:
        return _describe(self._find(identifier, region, account))

    def stop(self, identifier: str, region: str, account: str) -> None:
        job = self._find(identifier, region, account)
        with job["lock"]:
            status = _status(job)
            if status not in STEPS:
                raise AwsError(INVALID, 400, f"Model invocation job {identifier} is {status}; only a job that is "
                               f"{', '.join(STEPS[:-1])} or {STEPS[-1]} can be stopped.")  # fmt: skip
            step_s = self.knobs.value("status_step_ms") / 1000
            job["stop"] = Lifecycle(("Stopping",), step_s=step_s, done="Stopped", failed="Stopped")

    def _find(self, identifier: str, region: str, account: str) -> dict:
        with self._lock:
            job = self._jobs.get(identifier) or next(
                (j for j in self._jobs.values() if j["jobId"] == identifier and j["region"] == region), None
            )
        if job is None or job["account"] != account:
            raise AwsError("ResourceNotFoundException", 404, f"Model invocation job {identifier} not found.")
        return job

    def _run(self, job: dict) -> str | None:
        """Answer every record and write the results; returns why the job failed, or None."""
        bucket, key = parse_s3_uri(job["inputDataConfig"]["s3InputDataConfig"]["s3Uri"])
        try:
            keys = [key] if key.endswith(".jsonl") else [k for k in self.s3.keys(bucket, key) if k.endswith(".jsonl")]
            files = {k: self.s3.read(bucket, k).decode() for k in keys}
        except (AwsError, UnicodeDecodeError) as exc:
            return f"Unable to read the input data: {getattr(exc, 'message', exc)}"
        lines = {k: [line for line in text.splitlines() if line.strip()] for k, text in files.items()}
        total = sum(len(v) for v in lines.values())
        if total < MIN_RECORDS:
            return f"The job has {total} records; a batch inference job needs at least {MIN_RECORDS}."
        out_bucket, out_key = parse_s3_uri(job["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"])
        prefix = f"{out_key.rstrip('/')}/{job['jobId']}/".lstrip("/")
        counts = {"totalRecordCount": total, "processedRecordCount": 0, "successRecordCount": 0,
                  "errorRecordCount": 0, "inputTokenCount": 0, "outputTokenCount": 0}  # fmt: skip
        for name, records in lines.items():
            results = [self._record(job, line, counts) for line in records]
            body = "".join(json.dumps(r) + "\n" for r in results).encode()
            self.s3.write(out_bucket, prefix + name.rsplit("/", 1)[-1] + ".out", body)
        self.s3.write(out_bucket, prefix + "manifest.json.out", json.dumps(counts).encode())
        job["counts"] = counts
        return None

    def _record(self, job: dict, line: str, counts: dict) -> dict:
        counts["processedRecordCount"] += 1
        try:
            record = json.loads(line)
            model_input = record["modelInput"]
        except (ValueError, KeyError, TypeError):
            counts["errorRecordCount"] += 1
            return {"error": {"errorCode": 400, "errorMessage": "The record is not JSON with a modelInput."}}
        result = {"recordId": record.get("recordId", ""), "modelInput": model_input}
        try:
            output, usage = self._invoke(job, model_input)
        except AwsError as error:
            counts["errorRecordCount"] += 1
            return {**result, "error": {"errorCode": error.status, "errorMessage": error.message}}
        counts["successRecordCount"] += 1
        counts["inputTokenCount"] += usage["inputTokens"]
        counts["outputTokenCount"] += usage["outputTokens"]
        return {**result, "modelOutput": output}

    def _invoke(self, job: dict, model_input: dict) -> tuple[dict, dict]:
        name = job["baseModel"]
        converse = job["modelInvocationType"] == "Converse"
        request = model_input if converse else bedrock_bodies.to_converse(name, model_input)
        if not isinstance(request, dict):
            raise AwsError(INVALID, 400, "modelInput must be a JSON object.")
        where = {"region": job["region"], "account": job["account"], "metered": False}
        reply = self.runtime.answer(name, request, time.monotonic(), **where)
        output = {k: reply[k] for k in ("output", "stopReason", "usage", "metrics")} if converse else None
        return output or bedrock_bodies.from_converse(name, reply), reply["usage"]


def _validated(request: dict) -> dict:
    for key in ("jobName", "roleArn", "modelId", "inputDataConfig", "outputDataConfig"):
        if not request.get(key):
            raise AwsError(INVALID, 400, f"1 validation error detected: Value at '{key}' failed to satisfy "
                           "constraint: Member must not be null")  # fmt: skip
    if not JOB_NAME.match(request["jobName"]):
        raise AwsError(INVALID, 400, f"jobName {request['jobName']!r} is not valid.")
    if not ROLE_ARN.match(request["roleArn"]):
        raise AwsError(INVALID, 400, f"roleArn {request['roleArn']!r} is not an IAM role ARN.")
    model_id = request["modelId"]
    name = model_id.rsplit("/", 1)[-1]
    name = name[len(next((p for p in PROFILE_PREFIXES if name.startswith(p)), "")) :]
    if name not in MODELS:
        raise AwsError(INVALID, 400, f"The model {model_id} does not support batch inference.")
    for side, key in (("inputDataConfig", "s3InputDataConfig"), ("outputDataConfig", "s3OutputDataConfig")):
        parse_s3_uri((request[side].get(key) or {}).get("s3Uri"))
    kind = request.get("modelInvocationType", "InvokeModel")
    if kind not in ("InvokeModel", "Converse"):
        raise AwsError(INVALID, 400, "modelInvocationType must be InvokeModel or Converse.")
    hours = request.get("timeoutDurationInHours", 24)
    if not isinstance(hours, int) or not 24 <= hours <= 168:
        raise AwsError(INVALID, 400, "timeoutDurationInHours must be from 24 to 168.")
    kept = ("jobName", "roleArn", "modelId", "clientRequestToken", "inputDataConfig", "outputDataConfig")
    return {**{k: request[k] for k in kept if k in request}, "baseModel": name, "modelInvocationType": kind,
            "timeoutDurationInHours": hours}  # fmt: skip


def _status(job: dict) -> str:
    """The job's status now; the caller holds the job's lock."""
    status = (job.get("stop") or job["life"]).status()
    if status == "Completed" and (job.get("counts") or {}).get("errorRecordCount"):
        return "PartiallyCompleted"
    return status


def _describe(job: dict) -> dict:
    with job["lock"]:
        status = _status(job)
    life: Lifecycle = job["life"]
    latest: Lifecycle = job.get("stop") or life  # what last changed the status
    fields = ("jobArn", "jobName", "modelId", "roleArn", "clientRequestToken", "inputDataConfig",
              "outputDataConfig", "timeoutDurationInHours", "modelInvocationType")  # fmt: skip
    out = {k: job[k] for k in fields if k in job}
    out.update(status=status, submitTime=_iso(life.created_at), lastModifiedTime=_iso(latest.updated_at),
               jobExpirationTime=_iso(life.created_at + timedelta(hours=job["timeoutDurationInHours"])))  # fmt: skip
    if life.failure_reason:
        out["message"] = life.failure_reason
    if status in ENDED:
        out["endTime"] = _iso(latest.updated_at)
        out.update({k: v for k, v in (job.get("counts") or {}).items() if k.endswith("RecordCount")})
    return out


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
