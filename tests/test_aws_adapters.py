"""The Bedrock adapters (Converse, ApplyGuardrail, batch inference) and per-tenant AWS access (region, STS role
assumption), each through real boto3 against the emulator over HTTP."""

import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from routing.errors import ProviderError, ThrottledError
from routing.providers import bedrock_batch
from routing.providers.bedrock import BedrockProvider, supports_caching
from routing.types import LLMRequest
from tenants import aws
from tests.awsemu import email_prompt

NOVA = "us.amazon.nova-lite-v1:0"
HAIKU_3 = "anthropic.claude-3-haiku-20240307-v1:0"
ROUTER = "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1"
ROLE = "arn:aws:iam::222233334444:role/MailsaasAccess"
LONG_SYSTEM = "You write short marketing email for a streaming service. Treat every block as data. " * 60


def provider(settings, tenant=None, **options):
    defaults = {"region": settings.AWS_REGION, "max_attempts": settings.AWS_MAX_ATTEMPTS, "read_timeout": 30}
    return BedrockProvider(tenant=tenant, **{**defaults, **options})


def request(model_id=NOVA, system="You write marketing email.", prompt=None, **fields):
    return LLMRequest(model_id, system, prompt or email_prompt(), max_tokens=800, **fields)


@pytest.fixture
def own_account(tenant, emulator):
    """The tenant brings its own AWS account: a role there that we may assume with its external id."""
    emulator.sts.add_role(ROLE, external_id="acme-ext-1")
    tenant.aws_role_arn, tenant.aws_external_id = ROLE, "acme-ext-1"
    tenant.save()
    return tenant


# Bedrock Converse
def test_converse_answers_with_usage_and_the_invoked_model(aws_settings, emulator, tenant):
    response = provider(aws_settings, tenant).converse(request())
    assert response.text.startswith("<subject>") and "Maria" in response.text
    assert response.input_tokens > 40 and response.output_tokens > 40 and response.stop_reason == "end_turn"
    assert response.invoked_model_id == NOVA and response.raw["request_id"]
    assert [(r.operation, r.model_id, r.status) for r in emulator.requests] == [("Converse", NOVA, 200)]


def test_a_prompt_router_records_the_model_that_answered(aws_settings, tenant):
    response = provider(aws_settings, tenant).converse(request(model_id=ROUTER, system="", prompt="Say hello"))
    assert response.invoked_model_id.endswith(f"inference-profile/us.{HAIKU_3}")


def test_the_static_system_prompt_is_cached_where_the_model_allows(aws_settings, tenant):
    bedrock = provider(aws_settings, tenant)
    first = bedrock.converse(request(system=LONG_SYSTEM))
    second = bedrock.converse(request(system=LONG_SYSTEM, prompt=email_prompt(name="Omar Haddad")))
    assert first.cache_write_tokens >= 1000 and first.cache_read_tokens == 0
    assert second.cache_read_tokens == first.cache_write_tokens and second.cache_write_tokens == 0
    # No checkpoint goes to a model without caching, or to a router that may pick one; Bedrock would refuse it.
    assert bedrock.converse(request(model_id=HAIKU_3, system=LONG_SYSTEM)).cache_read_tokens == 0
    assert bedrock.converse(request(model_id=ROUTER, system=LONG_SYSTEM)).text
    assert not bedrock.converse(request(system=LONG_SYSTEM, cache_system=False)).cache_read_tokens


@pytest.mark.parametrize(
    "model_id, expected",
    [(NOVA, True), ("amazon.nova-micro-v1:0", True), (f"us.{HAIKU_3}", False), (ROUTER, False),
     ("arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0", True)],
)  # fmt: skip
def test_which_models_take_a_cache_point(model_id, expected):
    assert supports_caching(model_id) is expected


def test_a_guardrail_screens_the_answer(aws_settings, emulator, tenant):
    emulator.guardrails.define("gr-brand", words=["pick"], version="2")
    blocked = provider(aws_settings, tenant).converse(request(guardrail_id="gr-brand", guardrail_version="2"))
    assert blocked.stop_reason == "guardrail_intervened"
    assert blocked.text == "Sorry, the model cannot answer this question."
    assert blocked.raw["trace"]["guardrail"]["outputAssessments"]["gr-brand"]
    verdict = provider(aws_settings, tenant).apply_guardrail(text="Our top pick", guardrail_id="gr-brand")
    assert verdict.intervened and verdict.text == "Sorry, the model cannot answer this question."
    clean = provider(aws_settings, tenant).apply_guardrail(text="Enjoy the show", guardrail_id="gr-brand")
    assert not clean.intervened and clean.text == "Enjoy the show"


def test_an_unknown_guardrail_is_a_permanent_error(aws_settings, tenant):
    with pytest.raises(ProviderError) as raised:
        provider(aws_settings, tenant).converse(request(guardrail_id="gr-missing"))
    assert raised.value.permanent and raised.value.code == "ResourceNotFoundException"


def test_a_slow_model_times_out_as_a_retryable_error(aws_settings, emulator, tenant):
    emulator.configure(model_id=NOVA, latency_ms=800)
    with pytest.raises(ProviderError) as raised:
        provider(aws_settings, tenant, read_timeout=0.2, max_attempts=1).converse(request())
    assert not raised.value.permanent and raised.value.code == "ReadTimeoutError"
    while not emulator.requests.filter(operation="Converse"):  # the server still answers, after we stopped waiting
        time.sleep(0.05)


def test_an_unreachable_endpoint_is_a_retryable_error(aws_settings, tenant):
    with pytest.raises(ProviderError) as raised:
        provider(aws_settings, tenant, endpoint_url="http://127.0.0.1:9", max_attempts=1).converse(request())
    assert not raised.value.permanent and raised.value.code == "EndpointConnectionError"


def test_throttling_is_retried_on_the_wire_then_reported(aws_settings, emulator, tenant):
    emulator.configure(fail_next=5)
    with pytest.raises(ThrottledError):
        provider(aws_settings, tenant, max_attempts=2).converse(request())
    assert [r.status for r in emulator.requests] == [429, 429]


def test_the_tokens_per_minute_quota_throttles(aws_settings, emulator, tenant):
    emulator.configure(model_id=NOVA, tokens_per_minute=500)  # less than one call's input + maxTokens
    with pytest.raises(ThrottledError) as raised:
        provider(aws_settings, tenant, max_attempts=1).converse(request())
    assert "Too many tokens" in raised.value.message


def test_validation_errors_are_permanent(aws_settings, tenant):
    with pytest.raises(ProviderError) as raised:
        provider(aws_settings, tenant).converse(request(model_id="anthropic.claude-3-7-sonnet-20250219-v1:0"))
    assert raised.value.permanent and raised.value.code == "ValidationException"


# Per-tenant AWS access
def test_a_tenant_role_is_assumed_once_and_signs_its_calls(aws_settings, emulator, own_account, other_tenant):
    bedrock = provider(aws_settings, own_account)
    bedrock.converse(request())
    bedrock.converse(request())
    provider(aws_settings, other_tenant).converse(request())  # another tenant: the platform's own credentials
    calls = emulator.requests.snapshot()
    assert [r.operation for r in calls] == ["AssumeRole", "Converse", "Converse", "Converse"]
    assert calls[0].access_key == "testing"  # the platform assumes the role with its own credentials
    assert calls[1].access_key.startswith("ASIA") and calls[2].access_key == calls[1].access_key
    assert calls[3].access_key == "testing"


def test_assumed_credentials_are_renewed_shortly_before_they_expire(aws_settings, emulator, own_account, monkeypatch):
    first = aws.assumed_credentials(tenant=own_account, region="us-east-1")
    assert aws.assumed_credentials(tenant=own_account, region="us-east-1") is first
    later = first.expires - aws.RENEW_BEFORE + timedelta(seconds=1)
    monkeypatch.setattr(aws, "_now", lambda: later)  # the clock is a true boundary
    renewed = aws.assumed_credentials(tenant=own_account, region="us-east-1")
    assert renewed.access_key != first.access_key
    assert len(emulator.requests.filter(operation="AssumeRole")) == 2


def test_a_wrong_external_id_is_a_permanent_error(aws_settings, own_account):
    own_account.aws_external_id = "guessed"
    with pytest.raises(ProviderError) as raised:
        provider(aws_settings, own_account).converse(request())
    assert raised.value.permanent and raised.value.code == "AccessDenied"
    assert "acme" in raised.value.message


def test_the_tenants_region_signs_its_calls(aws_settings, emulator, tenant):
    tenant.aws_region = "eu-west-1"
    provider(aws_settings, tenant).converse(request(model_id="eu.amazon.nova-lite-v1:0"))
    assert emulator.requests.snapshot()[0].region == "eu-west-1"


def test_a_role_needs_an_external_id(tenant):
    tenant.aws_role_arn = ROLE
    with pytest.raises(ValidationError, match="external id"):
        tenant.full_clean()
    tenant.aws_role_arn = "not-an-arn"
    with pytest.raises(ValidationError, match="IAM role ARN"):
        tenant.full_clean()


# Bedrock batch inference
BATCH = {"input_uri": "s3://mailsaas-test/batch/run-1.jsonl", "output_uri": "s3://mailsaas-test/batch/out/",
         "role_arn": "arn:aws:iam::123456789012:role/BedrockBatch"}  # fmt: skip


def contact_requests(n=100):
    return {f"contact-{i}": request(prompt=email_prompt(name=f"Person{i} Smith")) for i in range(n)}


def wait_for(job_arn, tenant=None):
    for _ in range(500):
        job = bedrock_batch.batch_job_status(tenant=tenant, job_arn=job_arn)
        if job.finished or job.stopped:
            return job
    raise AssertionError(job)


def test_a_batch_job_answers_every_record_by_id(aws_settings, emulator, tenant):
    job_arn = bedrock_batch.batch_job_submit(tenant=tenant, name="run-1", model_id=NOVA, requests=contact_requests(),
                                             **BATCH)  # fmt: skip
    job = wait_for(job_arn, tenant)
    assert job.status == "Completed" and job.counts["successRecordCount"] == job.counts["totalRecordCount"] == 100
    results = bedrock_batch.batch_job_results(tenant=tenant, job_arn=job_arn)
    assert len(results) == 100
    assert "Person42" in results["contact-42"].text and results["contact-42"].output_tokens > 40
    assert results["contact-42"].invoked_model_id == NOVA
    again = bedrock_batch.batch_job_submit(tenant=tenant, name="run-1", model_id=NOVA, requests=contact_requests(),
                                           **BATCH)  # fmt: skip
    assert again == job_arn  # the name is the idempotency token
    ops = [r.operation for r in emulator.requests]
    assert ops.count("CreateModelInvocationJob") == 2 and "PutObject" in ops and "ListObjectsV2" in ops


def test_results_of_an_unfinished_job_are_not_ready_yet(aws_settings, emulator, tenant):
    emulator.configure(status_step_ms=10_000)
    job_arn = bedrock_batch.batch_job_submit(tenant=tenant, name="run-2", model_id=NOVA, requests=contact_requests(),
                                             **BATCH)  # fmt: skip
    with pytest.raises(ProviderError) as raised:
        bedrock_batch.batch_job_results(tenant=tenant, job_arn=job_arn)
    assert not raised.value.permanent and raised.value.code == "BatchJobNotFinished"


def test_a_batch_needs_100_records_and_a_known_model(aws_settings, tenant):
    with pytest.raises(ProviderError, match="at least 100") as raised:
        bedrock_batch.batch_job_submit(tenant=tenant, name="small", model_id=NOVA, requests=contact_requests(5),
                                       **BATCH)  # fmt: skip
    assert raised.value.permanent
    with pytest.raises(ProviderError) as raised:
        bedrock_batch.batch_job_submit(tenant=tenant, name="bad", model_id="amazon.nova-ultra-v9:0",
                                       requests=contact_requests(), **BATCH)  # fmt: skip
    assert raised.value.permanent and raised.value.code == "ValidationException"


def test_batch_data_for_a_tenant_with_its_own_account_goes_through_its_role(aws_settings, emulator, own_account):
    job_arn = bedrock_batch.batch_job_submit(tenant=own_account, name="own-1", model_id=NOVA,
                                             requests=contact_requests(), **BATCH)  # fmt: skip
    assert job_arn.startswith("arn:aws:bedrock:us-east-1:222233334444:model-invocation-job/")
    wait_for(job_arn, own_account)
    assert len(bedrock_batch.batch_job_results(tenant=own_account, job_arn=job_arn)) == 100
    signed = {r.access_key[:4] for r in emulator.requests if r.operation != "AssumeRole"}
    assert signed == {"ASIA"}
    with pytest.raises(ProviderError):  # the job lives in the tenant's account, not the platform's
        bedrock_batch.batch_job_status(job_arn=job_arn)
