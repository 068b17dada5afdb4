"""Bedrock batch inference through boto3 over HTTP: JSONL in S3, a job that walks its statuses, results out."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from tests.awsemu import email_prompt
from tests.fixtures_aws import aws_client

ROLE = "arn:aws:iam::123456789012:role/BedrockBatch"
NOVA = "amazon.nova-lite-v1:0"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture
def s3(emulator):
    client = aws_client(emulator, "s3")
    client.create_bucket(Bucket="batch")
    emulator.configure(status_step_ms=5)
    return client


@pytest.fixture
def bedrock(emulator):
    return aws_client(emulator, "bedrock")


def converse_record(n):
    return {"recordId": f"r{n:03}", "modelInput": {
        "messages": [{"role": "user", "content": [{"text": email_prompt(name=f"Person{n} Smith")}]}],
        "inferenceConfig": {"maxTokens": 800}}}  # fmt: skip


def put_jsonl(s3, key, records):
    s3.put_object(Bucket="batch", Key=key, Body="".join(json.dumps(r) + "\n" for r in records).encode())


def submit(bedrock, model_id=NOVA, kind="Converse", name="job-1", **extra):
    return bedrock.create_model_invocation_job(
        jobName=name, roleArn=ROLE, modelId=model_id, modelInvocationType=kind,
        inputDataConfig={"s3InputDataConfig": {"s3Uri": "s3://batch/in/records.jsonl", "s3InputFormat": "JSONL"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://batch/out/"}}, **extra,
    )["jobArn"]  # fmt: skip


def settle(bedrock, arn):
    seen = []
    for _ in range(500):
        status = bedrock.get_model_invocation_job(jobIdentifier=arn)["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("Completed", "PartiallyCompleted", "Failed"):
            return seen
        time.sleep(0.002)
    raise AssertionError(seen)


def output_lines(s3, arn, name="records.jsonl.out"):
    job_id = arn.rsplit("/", 1)[-1]
    body = s3.get_object(Bucket="batch", Key=f"out/{job_id}/{name}")["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def test_a_converse_job_answers_every_record_by_id(s3, bedrock, emulator):
    emulator.configure(status_step_ms=200)
    put_jsonl(s3, "in/records.jsonl", [converse_record(n) for n in range(100)])
    arn = submit(bedrock)
    seen = settle(bedrock, arn)
    # In Bedrock's order; a poller on a busy machine may sleep through a middle status, never the ends.
    lifecycle = ["Submitted", "Validating", "Scheduled", "InProgress", "Completed"]
    assert (seen[0], seen[-1]) == ("Submitted", "Completed") and seen == sorted(seen, key=lifecycle.index)
    assert len(seen) >= 4
    job = bedrock.get_model_invocation_job(jobIdentifier=arn)
    assert (job["totalRecordCount"], job["successRecordCount"], job["errorRecordCount"]) == (100, 100, 0)
    assert job["endTime"] >= job["submitTime"] and job["modelInvocationType"] == "Converse"
    lines = {line["recordId"]: line for line in output_lines(s3, arn)}
    assert len(lines) == 100
    assert "Person7" in lines["r007"]["modelOutput"]["output"]["message"]["content"][0]["text"]
    manifest = json.loads(
        s3.get_object(Bucket="batch", Key=f"out/{arn.rsplit('/', 1)[-1]}/manifest.json.out")["Body"].read()
    )
    assert manifest["successRecordCount"] == 100 and manifest["inputTokenCount"] > 100 * 100


def test_an_invoke_model_job_takes_native_bodies(s3, bedrock):
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 300,
            "messages": [{"role": "user", "content": email_prompt()}]}  # fmt: skip
    records = [{"recordId": f"r{n}", "modelInput": body} for n in range(99)]
    records.append({"recordId": "bad", "modelInput": {"prompt": "Llama style"}})
    put_jsonl(s3, "in/records.jsonl", records)
    arn = submit(bedrock, model_id=HAIKU, kind="InvokeModel")
    assert settle(bedrock, arn)[-1] == "PartiallyCompleted"
    lines = {line["recordId"]: line for line in output_lines(s3, arn)}
    assert lines["r0"]["modelOutput"]["type"] == "message"
    assert lines["bad"]["error"]["errorCode"] == 400 and "Malformed input" in lines["bad"]["error"]["errorMessage"]


def test_fewer_than_100_records_fail_the_job(s3, bedrock):
    put_jsonl(s3, "in/records.jsonl", [converse_record(n) for n in range(3)])
    arn = submit(bedrock)
    assert settle(bedrock, arn)[-1] == "Failed"
    assert "at least 100" in bedrock.get_model_invocation_job(jobIdentifier=arn)["message"]


def test_a_missing_input_file_fails_the_job(s3, bedrock):
    arn = submit(bedrock)
    assert settle(bedrock, arn)[-1] == "Failed"
    assert "Unable to read the input data" in bedrock.get_model_invocation_job(jobIdentifier=arn)["message"]


def test_create_validates_and_is_idempotent(s3, bedrock):
    put_jsonl(s3, "in/records.jsonl", [converse_record(n) for n in range(100)])
    with pytest.raises(ClientError) as excinfo:
        submit(bedrock, model_id="amazon.nova-ultra-v9:0")
    assert excinfo.value.response["Error"]["Code"] == "ValidationException"
    first = submit(bedrock, clientRequestToken="token-1")
    assert submit(bedrock, clientRequestToken="token-1") == first
    with pytest.raises(ClientError) as excinfo:
        submit(bedrock, clientRequestToken="token-2")
    assert excinfo.value.response["Error"]["Code"] == "ConflictException"
    assert bedrock.get_model_invocation_job(jobIdentifier=first.rsplit("/", 1)[-1])["jobArn"] == first


def test_an_unknown_job_is_not_found(bedrock):
    with pytest.raises(ClientError) as excinfo:
        bedrock.get_model_invocation_job(jobIdentifier="arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/x")
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_running_job_stops_and_writes_nothing(s3, bedrock, emulator):
    emulator.configure(status_step_ms=500)  # a status lasts long enough to be seen between two calls
    put_jsonl(s3, "in/records.jsonl", [converse_record(n) for n in range(100)])
    arn = submit(bedrock)
    answer = bedrock.stop_model_invocation_job(jobIdentifier=arn.rsplit("/", 1)[-1])  # by id, or by ARN
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200 and set(answer) == {"ResponseMetadata"}
    assert answer["ResponseMetadata"]["HTTPHeaders"].get("content-length") == "0"
    assert bedrock.get_model_invocation_job(jobIdentifier=arn)["status"] == "Stopping"
    with pytest.raises(ClientError) as excinfo:  # already on its way to Stopped
        bedrock.stop_model_invocation_job(jobIdentifier=arn)
    assert excinfo.value.response["Error"]["Code"] == "ValidationException"
    for _ in range(500):
        job = bedrock.get_model_invocation_job(jobIdentifier=arn)
        if job["status"] != "Stopping":
            break
        time.sleep(0.01)
    assert job["status"] == "Stopped" and job["endTime"] >= job["submitTime"]
    assert "totalRecordCount" not in job  # the emulator had processed none
    time.sleep(2.1)  # past the moment the job would have completed
    assert bedrock.get_model_invocation_job(jobIdentifier=arn)["status"] == "Stopped"
    assert s3.list_objects_v2(Bucket="batch", Prefix="out/")["KeyCount"] == 0


@pytest.mark.parametrize("records", [100, 3], ids=["completed", "failed"])
def test_a_job_that_ended_cannot_be_stopped(s3, bedrock, emulator, records):
    put_jsonl(s3, "in/records.jsonl", [converse_record(n) for n in range(records)])
    arn = submit(bedrock)
    ended = settle(bedrock, arn)[-1]
    with pytest.raises(ClientError) as excinfo:
        bedrock.stop_model_invocation_job(jobIdentifier=arn)
    error = excinfo.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("ValidationException", 400)
    assert ended in error["Error"]["Message"]
    assert bedrock.get_model_invocation_job(jobIdentifier=arn)["status"] == ended
    assert [(r.operation, r.status) for r in emulator.requests.filter(operation="StopModelInvocationJob")] == [
        ("StopModelInvocationJob", 400)
    ]


def test_stopping_an_unknown_job_is_not_found(bedrock):
    with pytest.raises(ClientError) as excinfo:
        bedrock.stop_model_invocation_job(jobIdentifier="arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/x")
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
