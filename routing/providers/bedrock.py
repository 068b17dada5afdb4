"""Amazon Bedrock through boto3's bedrock-runtime: Converse (system prompt, inference settings, an optional
guardrail, a prompt-cache checkpoint after the static system prompt, inference profiles and prompt routers),
ApplyGuardrail and text embeddings (InvokeModel on Titan Text Embeddings V2). The only module that calls bedrock-runtime; every failure leaves it as a ProviderError, in the
terms of tenants/aws_errors."""

import json
import time
from dataclasses import dataclass, field

from routing.catalog import base_model_id
from routing.types import LLMRequest, LLMResponse
from tenants.aws import aws_call

# Models that accept a `cachePoint`; Bedrock refuses one sent to any other model. A prefix shorter than the
# model's minimum (1,000 to 2,048 tokens) is simply not cached, so the checkpoint costs nothing there.
CACHING_MODELS = (
    "amazon.nova-micro", "amazon.nova-lite", "amazon.nova-pro", "amazon.nova-premier",
    "anthropic.claude-3-5-haiku", "anthropic.claude-3-7-sonnet", "anthropic.claude-sonnet-4", "anthropic.claude-opus-4",
)  # fmt: skip


@dataclass(frozen=True)
class GuardrailVerdict:
    intervened: bool
    text: str  # the text to use: unchanged, masked, or the guardrail's blocked message
    reason: str = ""
    usage: dict = field(default_factory=dict)  # text units by policy, as Bedrock bills them
    latency_ms: int = 0


@dataclass(frozen=True)
class Embedding:
    vector: list[float]
    input_tokens: int
    latency_ms: int


class BedrockProvider:
    def __init__(self, *, region: str, endpoint_url: str | None = None, max_attempts: int = 4,
                 read_timeout: float = 120, tenant=None):  # fmt: skip
        # With a tenant, calls act in its region and, if it brings its own AWS account, with its role.
        self.tenant = tenant
        self._options = {"region": region, "endpoint_url": endpoint_url or "", "max_attempts": max_attempts,
                         "read_timeout": read_timeout}  # fmt: skip

    def converse(self, request: LLMRequest) -> LLMResponse:
        started = time.monotonic()
        answer = self._call("converse", modelId=request.model_id, **converse_body(request))
        return response_from(answer, request.model_id, started)

    def apply_guardrail(self, *, text: str, guardrail_id: str, guardrail_version: str = "",
                        source: str = "OUTPUT") -> GuardrailVerdict:  # fmt: skip
        """Screen a text (an email draft: source OUTPUT) with a guardrail, without calling a model."""
        started = time.monotonic()
        answer = self._call(
            "apply_guardrail", guardrailIdentifier=guardrail_id, guardrailVersion=guardrail_version or "DRAFT",
            source=source, content=[{"text": {"text": text}}],
        )  # fmt: skip
        intervened = answer.get("action") == "GUARDRAIL_INTERVENED"
        outputs = answer.get("outputs") or []
        shown = outputs[0].get("text", text) if intervened and outputs else text
        latency_ms = int((time.monotonic() - started) * 1000)
        return GuardrailVerdict(
            intervened, shown, answer.get("actionReason", ""), answer.get("usage") or {}, latency_ms
        )

    def embed(self, text: str, *, model_id: str, dimensions: int = 1024) -> Embedding:
        """A normalised embedding of `text` (Titan Text Embeddings V2's native InvokeModel body)."""
        started = time.monotonic()
        body = json.dumps({"inputText": text, "dimensions": dimensions, "normalize": True})
        answer = self._call("invoke_model", modelId=model_id, body=body, contentType="application/json",
                            accept="application/json")  # fmt: skip
        reply = json.loads(answer["body"].read())
        latency_ms = int((time.monotonic() - started) * 1000)
        return Embedding(reply["embedding"], int(reply.get("inputTextTokenCount", 0)), latency_ms)

    def _call(self, operation: str, **params) -> dict:
        doing = f"Bedrock {operation} {params.get('modelId') or params.get('guardrailIdentifier', '')}".rstrip()
        return aws_call("bedrock-runtime", operation, tenant=self.tenant, client=self._options, doing=doing, **params)


def converse_body(request: LLMRequest) -> dict:
    """Converse's parameters other than modelId; batch inference writes the same body as a record's modelInput."""
    inference = {"maxTokens": request.max_tokens, "temperature": request.temperature, "topP": request.top_p}
    if request.stop:
        inference["stopSequences"] = list(request.stop)
    body = {"messages": [{"role": "user", "content": [{"text": request.prompt}]}], "inferenceConfig": inference}
    if request.system:
        body["system"] = [{"text": request.system}]
        if request.cache_system and supports_caching(request.model_id):
            body["system"].append({"cachePoint": {"type": "default"}})
    if request.guardrail_id:
        body["guardrailConfig"] = {"guardrailIdentifier": request.guardrail_id,
                                   "guardrailVersion": request.guardrail_version or "DRAFT", "trace": "enabled"}  # fmt: skip
    return body


def supports_caching(model_id: str) -> bool:
    """Whether the model behind an id, inference profile or model ARN takes a cachePoint; a prompt router may
    pick a model that does not, so it never gets one."""
    if "prompt-router/" in model_id:
        return False
    return base_model_id(model_id).startswith(CACHING_MODELS)


def response_from(answer: dict, model_id: str, started: float) -> LLMResponse:
    """An LLMResponse from a Converse answer (on-demand, or a batch record's modelOutput)."""
    content = answer.get("output", {}).get("message", {}).get("content", [])
    usage = answer.get("usage", {})
    trace = answer.get("trace", {})
    return LLMResponse(
        text="".join(block.get("text", "") for block in content),
        input_tokens=int(usage.get("inputTokens", 0)),
        output_tokens=int(usage.get("outputTokens", 0)),
        latency_ms=int(answer.get("metrics", {}).get("latencyMs") or (time.monotonic() - started) * 1000),
        stop_reason=answer.get("stopReason", ""),
        # A prompt router names the model that answered in its trace; that is the model we were billed for.
        invoked_model_id=trace.get("promptRouter", {}).get("invokedModelId") or model_id,
        raw={"request_id": answer.get("ResponseMetadata", {}).get("RequestId", ""), "trace": trace},
        cache_read_tokens=int(usage.get("cacheReadInputTokens", 0)),
        cache_write_tokens=int(usage.get("cacheWriteInputTokens", 0)),
    )
