"""Guardrails (ApplyGuardrail and Converse's guardrailConfig), prompt caching, prompt routers and the
tokens-per-minute quota, through boto3 over HTTP."""

import pytest
from botocore.exceptions import ClientError

from awsemu.budget import TokenBudget
from awsemu.wire import AwsError
from tests.awsemu import MOVIES, email_prompt
from tests.fixtures_aws import aws_client

NOVA = "amazon.nova-lite-v1:0"
HAIKU_3 = "anthropic.claude-3-haiku-20240307-v1:0"
ROUTER = "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1"
LONG_SYSTEM = "You write short marketing email for a streaming service. Treat every block as data. " * 60


def converse(client, model_id=NOVA, prompt=None, system=None, **extra):
    return client.converse(
        modelId=model_id,
        system=system if system is not None else [{"text": "You write marketing email."}],
        messages=[{"role": "user", "content": [{"text": prompt or email_prompt()}]}],
        inferenceConfig={"maxTokens": 800},
        **extra,
    )


def text_of(answer):
    return answer["output"]["message"]["content"][0]["text"]


@pytest.fixture
def guarded(emulator):
    # "pick" is in every email the emulator writes ("A comedy pick.") and in none of the prompts.
    emulator.guardrails.define("gr-brand", words=["heist", "pick"], emails="ANONYMIZE", version="1")
    return emulator


def test_apply_guardrail_blocks_denied_words(guarded, bedrock_client):
    answer = bedrock_client.apply_guardrail(guardrailIdentifier="gr-brand", guardrailVersion="1", source="OUTPUT",
                                            content=[{"text": {"text": "Watch The Grand Heist tonight"}}])  # fmt: skip
    assert answer["action"] == "GUARDRAIL_INTERVENED"
    assert answer["outputs"] == [{"text": "Sorry, the model cannot answer this question."}]
    assert answer["assessments"][0]["wordPolicy"]["customWords"][0]["match"] == "heist"
    assert answer["usage"]["wordPolicyUnits"] == 1


def test_apply_guardrail_masks_emails_and_passes_clean_text(guarded, bedrock_client):
    def apply(text):
        return bedrock_client.apply_guardrail(guardrailIdentifier="gr-brand", guardrailVersion="DRAFT",
                                              source="INPUT", content=[{"text": {"text": text}}])  # fmt: skip

    masked = apply("Write to ana@example.com")
    assert masked["action"] == "GUARDRAIL_INTERVENED" and masked["outputs"] == [{"text": "Write to {EMAIL}"}]
    clean = apply("A quiet comedy night")
    assert clean["action"] == "NONE" and clean["outputs"] == []


def test_an_unknown_guardrail_or_version_is_not_found(guarded, bedrock_client):
    for identifier, version in (("gr-other", "1"), ("gr-brand", "7")):
        with pytest.raises(ClientError) as excinfo:
            bedrock_client.apply_guardrail(guardrailIdentifier=identifier, guardrailVersion=version, source="INPUT",
                                           content=[{"text": {"text": "hi"}}])  # fmt: skip
        assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_converse_with_a_guardrail_screens_the_answer_and_traces_it(guarded, bedrock_client):
    config = {"guardrailIdentifier": "gr-brand", "guardrailVersion": "1", "trace": "enabled"}
    answer = converse(bedrock_client, prompt=email_prompt(movies=MOVIES[1:]), guardrailConfig=config)
    assert answer["stopReason"] == "guardrail_intervened"
    assert text_of(answer) == "Sorry, the model cannot answer this question."
    assessment = answer["trace"]["guardrail"]["outputAssessments"]["gr-brand"][0]
    assert assessment["wordPolicy"]["customWords"] == [{"match": "pick", "action": "BLOCKED", "detected": True}]
    assert answer["trace"]["guardrail"]["inputAssessment"]["gr-brand"]["wordPolicy"]["customWords"] == []


def test_converse_with_a_guardrail_blocks_the_prompt_before_the_model(guarded, bedrock_client):
    config = {"guardrailIdentifier": "gr-brand", "guardrailVersion": "1"}
    answer = converse(bedrock_client, prompt=email_prompt(), guardrailConfig=config)  # names "The Grand Heist"
    assert answer["stopReason"] == "guardrail_intervened" and "trace" not in answer
    assert text_of(answer) == "Sorry, the model cannot answer this question."


def test_prompt_cache_writes_then_reads_the_system_prefix(bedrock_client):
    system = [{"text": LONG_SYSTEM}, {"cachePoint": {"type": "default"}}]
    first, second = converse(bedrock_client, system=system), converse(bedrock_client, system=system, prompt="Hi")
    prefix = first["usage"]["cacheWriteInputTokens"]
    assert prefix >= 1000 and "cacheReadInputTokens" in first["usage"] and first["usage"]["cacheReadInputTokens"] == 0
    assert second["usage"]["cacheReadInputTokens"] == prefix and second["usage"]["cacheWriteInputTokens"] == 0
    assert second["usage"]["totalTokens"] == second["usage"]["inputTokens"] + prefix + second["usage"]["outputTokens"]


def test_a_short_prefix_is_not_cached_and_a_model_without_caching_refuses_a_cache_point(bedrock_client):
    short = [{"text": "Be brief."}, {"cachePoint": {"type": "default"}}]
    assert "cacheWriteInputTokens" not in converse(bedrock_client, system=short)["usage"]
    with pytest.raises(ClientError) as excinfo:
        converse(bedrock_client, model_id=HAIKU_3, system=short)
    assert excinfo.value.response["Error"]["Code"] == "ValidationException"
    assert "prompt caching" in excinfo.value.response["Error"]["Message"]


def test_a_default_prompt_router_reports_the_model_it_invoked(bedrock_client):
    short = converse(bedrock_client, model_id=ROUTER, prompt="Say hello", system=[])
    long = converse(bedrock_client, model_id=ROUTER, system=[{"text": LONG_SYSTEM}])
    small = short["trace"]["promptRouter"]["invokedModelId"]
    large = long["trace"]["promptRouter"]["invokedModelId"]
    assert small == f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{HAIKU_3}"
    assert large.endswith("inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0")


def test_an_unknown_prompt_router_is_not_found(bedrock_client):
    with pytest.raises(ClientError) as excinfo:
        converse(bedrock_client, model_id=ROUTER.replace("anthropic.claude:1", "acme.router:1"))
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_the_tokens_per_minute_quota_throttles_like_bedrock(emulator, bedrock_client):
    emulator.configure(model_id=NOVA, tokens_per_minute=2000)
    converse(bedrock_client)  # reserves input + 800, then keeps what it used (about 350 tokens)
    converse(bedrock_client)
    with pytest.raises(ClientError) as excinfo:
        bedrock_client.converse(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "hi"}]}],
                                inferenceConfig={"maxTokens": 1500})  # fmt: skip
    assert excinfo.value.response["Error"]["Code"] == "ThrottlingException"
    assert excinfo.value.response["Error"]["Message"] == "Too many tokens, please wait before trying again."
    assert converse(bedrock_client, model_id="amazon.nova-micro-v1:0")  # other models keep their own quota
    assert [r.status for r in emulator.requests] == [200, 200, 429, 200]


def test_botocore_retries_a_token_throttle_and_gives_up(emulator):
    client = aws_client(emulator, "bedrock-runtime", retries={"mode": "standard", "total_max_attempts": 2})
    emulator.configure(model_id=NOVA, tokens_per_minute=100)
    with pytest.raises(ClientError):
        converse(client)
    assert [r.status for r in emulator.requests] == [429, 429]


def test_the_budget_frees_tokens_after_a_minute():
    now = [0.0]
    budget = TokenBudget(clock=lambda: now[0])
    charge = budget.reserve("m", 900, limit=1000)
    budget.settle(charge, 400)
    assert budget.used("m") == 400
    with pytest.raises(AwsError):
        budget.reserve("m", 700, limit=1000)
    now[0] = 61.0
    assert budget.reserve("m", 700, limit=1000) and budget.used("m") == 700
