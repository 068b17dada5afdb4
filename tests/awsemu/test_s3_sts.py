"""S3 (path-style uploads and downloads) and STS (AssumeRole, session credentials) through boto3 over HTTP."""

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.fixtures_aws import DUMMY_CREDENTIALS, REGION, aws_client

ROLE = "arn:aws:iam::222233334444:role/MailsaasAccess"


@pytest.fixture
def s3(emulator):
    client = aws_client(emulator, "s3")
    client.create_bucket(Bucket="exports")
    return client


def code_of(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_put_get_head_and_list(emulator, s3):
    s3.put_object(Bucket="exports", Key="acme/users.csv", Body=b"USER_ID\nu1\n", ContentType="text/csv")
    s3.put_object(Bucket="exports", Key="acme/items.csv", Body=b"ITEM_ID\ni1\n")
    s3.put_object(Bucket="exports", Key="globex/users.csv", Body=b"USER_ID\n")
    got = s3.get_object(Bucket="exports", Key="acme/users.csv")
    assert got["Body"].read() == b"USER_ID\nu1\n" and got["ContentType"] == "text/csv"
    head = s3.head_object(Bucket="exports", Key="acme/users.csv")
    assert head["ContentLength"] == 11 and head["ETag"] == got["ETag"]
    listed = s3.list_objects_v2(Bucket="exports", Prefix="acme/")
    assert [o["Key"] for o in listed["Contents"]] == ["acme/items.csv", "acme/users.csv"]
    assert listed["KeyCount"] == 2 and not listed["IsTruncated"]
    folders = s3.list_objects_v2(Bucket="exports", Delimiter="/")
    assert [p["Prefix"] for p in folders["CommonPrefixes"]] == ["acme/", "globex/"]
    assert [r.operation for r in emulator.requests][-3:] == ["HeadObject", "ListObjectsV2", "ListObjectsV2"]


def test_listing_pages_with_continuation_tokens(s3):
    for n in range(5):
        s3.put_object(Bucket="exports", Key=f"k{n}", Body=b"x")
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="exports", PaginationConfig={"PageSize": 2}))
    assert [len(p["Contents"]) for p in pages] == [2, 2, 1]


def test_missing_keys_and_buckets(s3):
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket="exports", Key="nope")
    assert code_of(excinfo) == "NoSuchKey"
    with pytest.raises(ClientError) as excinfo:
        s3.head_object(Bucket="exports", Key="nope")
    assert code_of(excinfo) == "404"
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket="elsewhere", Key="k", Body=b"x")
    assert code_of(excinfo) == "NoSuchBucket"
    with pytest.raises(ClientError) as excinfo:
        s3.create_bucket(Bucket="No_Such_Name")
    assert code_of(excinfo) == "InvalidBucketName"


def test_checksums_are_checked_and_returned(s3):
    s3.put_object(Bucket="exports", Key="k", Body=b"payload", ChecksumAlgorithm="CRC32")
    got = s3.get_object(Bucket="exports", Key="k", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] and got["Body"].read() == b"payload"  # botocore validated it on the way


def test_delete_object(s3):
    s3.put_object(Bucket="exports", Key="k", Body=b"x")
    s3.delete_object(Bucket="exports", Key="k")
    assert "Contents" not in s3.list_objects_v2(Bucket="exports")


def test_s3_faults_are_s3_errors_and_botocore_retries_them(emulator):
    client = aws_client(emulator, "s3", retries={"mode": "standard", "total_max_attempts": 3})
    client.create_bucket(Bucket="exports")
    emulator.configure(model_id="PutObject", fail_next=1)
    client.put_object(Bucket="exports", Key="k", Body=b"x")
    assert [(r.operation, r.status) for r in emulator.requests][1:] == [("PutObject", 503), ("PutObject", 200)]


def test_global_knobs_leave_s3_alone(emulator, s3):
    emulator.configure(throttle_rate=1.0)  # the global knobs are for model calls
    s3.put_object(Bucket="exports", Key="k", Body=b"x")


def test_assume_role_issues_session_credentials_in_the_roles_account(emulator):
    emulator.sts.add_role(ROLE, external_id="ext-123")
    sts = aws_client(emulator, "sts")
    answer = sts.assume_role(RoleArn=ROLE, RoleSessionName="mailsaas-acme", ExternalId="ext-123")
    credentials = answer["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA") and credentials["SessionToken"]
    assert answer["AssumedRoleUser"]["Arn"] == "arn:aws:sts::222233334444:assumed-role/MailsaasAccess/mailsaas-acme"
    assumed = boto3.client("sts", endpoint_url=emulator.url, region_name=REGION,
                           aws_access_key_id=credentials["AccessKeyId"],
                           aws_secret_access_key=credentials["SecretAccessKey"],
                           aws_session_token=credentials["SessionToken"])  # fmt: skip
    assert assumed.get_caller_identity()["Account"] == "222233334444"
    assert sts.get_caller_identity()["Account"] == "123456789012"
    assert emulator.requests.filter(operation="GetCallerIdentity")[0].access_key == credentials["AccessKeyId"]


@pytest.mark.parametrize("external_id", [None, "wrong"])
def test_the_external_id_must_match(emulator, external_id):
    emulator.sts.add_role(ROLE, external_id="ext-123")
    extra = {"ExternalId": external_id} if external_id else {}
    with pytest.raises(ClientError) as excinfo:
        aws_client(emulator, "sts").assume_role(RoleArn=ROLE, RoleSessionName="mailsaas-acme", **extra)
    assert code_of(excinfo) == "AccessDenied"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_unregistered_role_cannot_be_assumed(emulator):
    with pytest.raises(ClientError) as excinfo:
        aws_client(emulator, "sts").assume_role(RoleArn=ROLE, RoleSessionName="mailsaas-acme")
    assert code_of(excinfo) == "AccessDenied"


def test_a_session_token_the_emulator_never_issued_is_refused(emulator):
    forged = boto3.client("s3", endpoint_url=emulator.url, region_name=REGION, aws_access_key_id="ASIAFORGED",
                          aws_secret_access_key="x", aws_session_token="not-issued")  # fmt: skip
    with pytest.raises(ClientError) as excinfo:
        forged.create_bucket(Bucket="exports")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_signed_region_and_key_are_logged(emulator):
    client = boto3.client("s3", endpoint_url=emulator.url, region_name="eu-west-1", **DUMMY_CREDENTIALS)
    client.create_bucket(Bucket="exports", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with pytest.raises(ClientError) as excinfo:  # outside us-east-1 S3 says you already own it
        client.create_bucket(Bucket="exports", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert code_of(excinfo) == "BucketAlreadyOwnedByYou"
    record = emulator.requests.snapshot()[0]
    assert (record.operation, record.access_key, record.region) == ("CreateBucket", "testing", "eu-west-1")
