"""Value types that cross the LLM gateway: what we ask a model, and what it answered."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LLMRequest:
    model_id: str  # the provider's model id (Bedrock model or inference-profile id, or a local model name)
    system: str
    prompt: str
    max_tokens: int = 700
    temperature: float = 0.7
    top_p: float = 0.9
    stop: tuple[str, ...] = ()
    guardrail_id: str = ""  # a Bedrock guardrail (id or ARN) to screen the prompt and the answer; "" for none
    guardrail_version: str = ""  # "" for the working draft
    cache_system: bool = True  # a prompt-cache checkpoint after the system prompt, where the model supports it


@dataclass(frozen=True)
class LLMResponse:
    text: str
    input_tokens: int
    output_tokens: int
    latency_ms: int
    stop_reason: str = "end_turn"
    invoked_model_id: str = ""  # the model that actually answered (prompt routers, fallbacks)
    raw: dict = field(default_factory=dict, compare=False, repr=False)
    cache_read_tokens: int = 0  # input tokens served from the prompt cache (billed at a discount)
    cache_write_tokens: int = 0  # input tokens written to it (billed at a premium)
