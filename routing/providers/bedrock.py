"""Amazon Bedrock through boto3's bedrock-runtime Converse API. The only module that talks to Bedrock."""

import time
from functools import lru_cache

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from routing.errors import ProviderError, ThrottledError
from routing.types import LLMRequest, LLMResponse

RETRYABLE_CODES = {
    "ThrottlingException", "ServiceUnavailableException", "InternalServerException", "ModelTimeoutException",
    "ModelNotReadyException", "TooManyRequestsException",
}  # fmt: skip


@lru_cache(maxsize=16)
def _client(region: str, endpoint_url: str | None, max_attempts: int, read_timeout: int):
    # boto3 clients are thread-safe; one per configuration keeps connection pools warm.
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        read_timeout=read_timeout,
        connect_timeout=10,
        max_pool_connections=50,
    )
    return boto3.session.Session().client(
        "bedrock-runtime", region_name=region, endpoint_url=endpoint_url or None, config=config
    )


class BedrockProvider:
    def __init__(self, *, region: str, endpoint_url: str | None = None, max_attempts: int = 4, read_timeout: int = 120):
        self.client = _client(region, endpoint_url, max_attempts, read_timeout)

    def converse(self, request: LLMRequest) -> LLMResponse:
        inference = {"maxTokens": request.max_tokens, "temperature": request.temperature, "topP": request.top_p}
        if request.stop:
            inference["stopSequences"] = list(request.stop)
        started = time.monotonic()
        try:
            answer = self.client.converse(
                modelId=request.model_id,
                system=[{"text": request.system}],
                messages=[{"role": "user", "content": [{"text": request.prompt}]}],
                inferenceConfig=inference,
            )
        except ClientError as exc:
            raise _map_client_error(exc) from exc
        except (ReadTimeoutError, ConnectionError) as exc:
            raise ProviderError(f"Bedrock unreachable or timed out: {exc}", permanent=False, code="Timeout") from exc
        except BotoCoreError as exc:
            raise ProviderError(f"Bedrock client error: {exc}", permanent=True, code=type(exc).__name__) from exc
        return _response(answer, request, started)


def _map_client_error(exc: ClientError) -> ProviderError:
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "Unknown"), error.get("Message", str(exc))
    if code in ("ThrottlingException", "TooManyRequestsException"):
        return ThrottledError(f"Bedrock throttled the request: {message}", code=code)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    retryable = code in RETRYABLE_CODES or status >= 500 or status in (408, 429)
    return ProviderError(f"Bedrock {code}: {message}", permanent=not retryable, code=code)


def _response(answer: dict, request: LLMRequest, started: float) -> LLMResponse:
    content = answer.get("output", {}).get("message", {}).get("content", [])
    usage = answer.get("usage", {})
    return LLMResponse(
        text="".join(block.get("text", "") for block in content),
        input_tokens=int(usage.get("inputTokens", 0)),
        output_tokens=int(usage.get("outputTokens", 0)),
        latency_ms=int(answer.get("metrics", {}).get("latencyMs") or (time.monotonic() - started) * 1000),
        stop_reason=answer.get("stopReason", ""),
        invoked_model_id=request.model_id,
        raw={"ResponseMetadata": answer.get("ResponseMetadata", {}).get("RequestId", "")},
    )
