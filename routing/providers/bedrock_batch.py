"""Bedrock batch inference: many prompts as one JSONL file in S3, one job, the answers collected by recordId.
About half the on-demand price, for campaigns that can wait hours; failures leave as ProviderError, in the terms
of tenants/aws_errors.

Each record's modelInput is the Converse body the on-demand provider sends (job type "Converse"), so a prompt
is written once for both ways of running it.
"""

import json
import time
from dataclasses import dataclass, field

from routing.errors import ProviderError
from routing.providers.bedrock import converse_body, response_from
from routing.types import LLMRequest, LLMResponse
from tenants.aws import aws_call, s3_object_get, s3_object_keys, s3_object_put
from tenants.aws_errors import retryable_status

MIN_RECORDS = 100  # Bedrock refuses smaller jobs
FINISHED = ("Completed", "PartiallyCompleted")
STOPPED = ("Failed", "Stopped", "Expired")
OVER = (*FINISHED, *STOPPED, "Stopping")  # nothing left to stop


@dataclass(frozen=True)
class BatchJob:
    arn: str
    status: str  # Submitted, Validating, Scheduled, InProgress, Completed, PartiallyCompleted, Failed, ...
    message: str
    output_uri: str  # the folder the results land in: <output>/<job id>/
    model_id: str = ""
    counts: dict = field(default_factory=dict)  # totalRecordCount, successRecordCount, errorRecordCount, ...

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def stopped(self) -> bool:
        return self.status in STOPPED


def batch_job_submit(*, tenant=None, name: str, model_id: str, requests: dict[str, LLMRequest], input_uri: str,
                     output_uri: str, role_arn: str) -> str:  # fmt: skip
    """Write the requests (by record id) as JSONL to `input_uri` and start the job; returns the job ARN.

    `name` doubles as the idempotency token, so submitting the same job twice starts it once.
    """
    if len(requests) < MIN_RECORDS:
        raise ProviderError(f"a batch job needs at least {MIN_RECORDS} records, not {len(requests)}", permanent=True)
    lines = [json.dumps({"recordId": record_id, "modelInput": converse_body(request)})
             for record_id, request in requests.items()]  # fmt: skip
    s3_object_put(
        tenant=tenant, uri=input_uri, body="\n".join(lines).encode() + b"\n", content_type="application/jsonl"
    )
    answer = _call(
        tenant, "create_model_invocation_job", jobName=name, clientRequestToken=name, roleArn=role_arn,
        modelId=model_id, modelInvocationType="Converse",
        inputDataConfig={"s3InputDataConfig": {"s3Uri": input_uri, "s3InputFormat": "JSONL"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": output_uri}},
    )  # fmt: skip
    return answer["jobArn"]


def batch_job_status(*, tenant=None, job_arn: str) -> BatchJob:
    answer = _call(tenant, "get_model_invocation_job", jobIdentifier=job_arn)
    output = answer["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"].rstrip("/")
    counts = {key: value for key, value in answer.items() if key.endswith("RecordCount")}
    job_id = job_arn.rsplit("/", 1)[-1]
    status, message = answer.get("status", ""), answer.get("message", "")
    return BatchJob(job_arn, status, message, f"{output}/{job_id}/", answer.get("modelId", ""), counts)


def batch_job_stop(*, tenant=None, job_arn: str) -> str:
    """Stop the job, so it bills no further; returns "Stopping", or the status of a job that had already ended
    (or was stopping), which is no error."""
    try:
        _call(tenant, "stop_model_invocation_job", jobIdentifier=job_arn)
    except ProviderError as exc:
        if exc.code != "ValidationException":
            raise
        # What Bedrock says when the job is over; any other invalid request is a failure.
        status = batch_job_status(tenant=tenant, job_arn=job_arn).status
        if status not in OVER:
            raise
        return status
    return "Stopping"


def batch_job_results(*, tenant=None, job_arn: str) -> dict[str, LLMResponse | ProviderError]:
    """Every record's answer, or the error that record got, by record id; the job must have finished."""
    job = batch_job_status(tenant=tenant, job_arn=job_arn)
    if not job.finished:
        raise ProviderError(f"batch job {job_arn} is {job.status}: {job.message}".rstrip(": "),
                            permanent=job.stopped, code="BatchJobNotFinished")  # fmt: skip
    keys = [key for key in s3_object_keys(tenant=tenant, uri=job.output_uri) if key.endswith(".jsonl.out")]
    bucket = job.output_uri.removeprefix("s3://").split("/", 1)[0]
    results = {}
    for key in keys:
        for line in s3_object_get(tenant=tenant, uri=f"s3://{bucket}/{key}").decode().splitlines():
            if line.strip():
                record = json.loads(line)
                results[record.get("recordId", "")] = _result(record, job.model_id)
    return results


def _result(record: dict, model_id: str) -> LLMResponse | ProviderError:
    if "modelOutput" in record:
        return response_from(record["modelOutput"], model_id, time.monotonic())
    return record_error(record.get("error") or {})


def record_error(error: dict) -> ProviderError:
    """A failed record's error (an HTTP status as errorCode, and a message), as the on-demand call would say it."""
    status = int(error.get("errorCode") or 0)
    return ProviderError(f"batch record failed: {error.get('errorMessage', 'no reason given')}",
                         permanent=not retryable_status(status), code=str(status))  # fmt: skip


def _call(tenant, operation: str, **params) -> dict:
    return aws_call("bedrock", operation, tenant=tenant, doing=f"Bedrock batch {operation}", **params)
