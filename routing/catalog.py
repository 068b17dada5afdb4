"""The models we can route to, with their prices (USD per 1,000 tokens, on-demand, us-east-1) and whether
Bedrock runs them as batch inference jobs; and the lookup of a model by any id Bedrock names it with, so that
a call a prompt router answered is priced at the model that answered."""

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class ModelSpec:
    key: str  # our stable name, stored on usage records
    provider: str  # "bedrock" or "local"
    model_id: str  # the provider's id (inference profile id where Bedrock requires one)
    input_per_1k: Decimal
    output_per_1k: Decimal
    tier: str  # "small" or "large": what the plan policy asks for
    max_tokens: int = 700  # answer budget per email
    temperature: float = 0.7
    batch: bool = False  # Bedrock batch inference (CreateModelInvocationJob) accepts it

    def cost(self, input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0,
             batch: bool = False) -> Decimal:  # fmt: skip
        """Prompt-cache reads bill at a tenth of the input price and writes at 1.25 times it (Bedrock's terms
        for the models that cache); `input_tokens` excludes both, as Converse reports it. `batch`: the
        price of a batch inference record."""
        cached = CACHE_READ * cache_read + CACHE_WRITE * cache_write
        cost = (self.input_per_1k * (input_tokens + cached) + self.output_per_1k * output_tokens) / 1000
        return cost * BATCH_PRICE if batch else cost


CACHE_READ, CACHE_WRITE = Decimal("0.1"), Decimal("1.25")
PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.")  # cross-region inference profiles
BATCH_PRICE = Decimal("0.5")  # Bedrock bills batch inference at half the on-demand price for these models

CATALOG: dict[str, ModelSpec] = {
    spec.key: spec
    for spec in (
        ModelSpec("bedrock/nova-micro", "bedrock", "us.amazon.nova-micro-v1:0", Decimal("0.000035"), Decimal("0.00014"), "small", batch=True),
        ModelSpec("bedrock/nova-lite", "bedrock", "us.amazon.nova-lite-v1:0", Decimal("0.00006"), Decimal("0.00024"), "small", batch=True),
        ModelSpec("bedrock/nova-pro", "bedrock", "us.amazon.nova-pro-v1:0", Decimal("0.0008"), Decimal("0.0032"), "large", batch=True),
        ModelSpec("bedrock/claude-3-haiku", "bedrock", "anthropic.claude-3-haiku-20240307-v1:0", Decimal("0.00025"), Decimal("0.00125"), "small", batch=True),
        ModelSpec("bedrock/claude-3.5-sonnet", "bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", Decimal("0.003"), Decimal("0.015"), "large", batch=True),
        ModelSpec("bedrock/claude-3.5-haiku", "bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0", Decimal("0.0008"), Decimal("0.004"), "small", batch=True),
        ModelSpec("bedrock/claude-3.7-sonnet", "bedrock", "us.anthropic.claude-3-7-sonnet-20250219-v1:0", Decimal("0.003"), Decimal("0.015"), "large", batch=True),
        ModelSpec("local/qwen2.5-1.5b", "local", "qwen2.5-coder-1.5b-instruct-q4_k_m", Decimal("0"), Decimal("0"), "small",
                  max_tokens=400, temperature=0.4),  # measured: cooler and shorter avoids runaway answers
    )
}  # fmt: skip


# Bedrock Guardrails, USD per 1,000 text units (a unit: up to 1,000 characters), by the policy ApplyGuardrail's
# `usage` counts them under; word filters and the free sensitive-information units cost nothing.
GUARDRAIL_KEY = "bedrock/guardrail"  # the usage records' model key for a screening
GUARDRAIL_PRICES_PER_1K_UNITS = {
    "topicPolicyUnits": Decimal("0.15"), "contentPolicyUnits": Decimal("0.15"),
    "contextualGroundingPolicyUnits": Decimal("0.10"), "sensitiveInformationPolicyUnits": Decimal("0.10"),
}  # fmt: skip


def guardrail_cost(usage: dict) -> Decimal:
    return sum((price * int(usage.get(name) or 0) / 1000 for name, price in GUARDRAIL_PRICES_PER_1K_UNITS.items()),
               Decimal(0))  # fmt: skip


class UnknownModel(KeyError):
    pass


def get_model(key: str) -> ModelSpec:
    try:
        return CATALOG[key]
    except KeyError:
        raise UnknownModel(f"unknown model {key!r}; known: {', '.join(sorted(CATALOG))}") from None


def model_for_id(model_id: str) -> ModelSpec | None:
    """The catalog's entry for the model behind an id, inference profile id or ARN (as a prompt router names the
    model that answered), or None for a model we do not list."""
    base = base_model_id(model_id)
    return next((spec for spec in CATALOG.values() if base_model_id(spec.model_id) == base), None)


def base_model_id(model_id: str) -> str:
    """The model's own id: "anthropic.claude-3-haiku-20240307-v1:0" for itself, its cross-region profile
    "us.anthropic…", and the ARN of either; Bedrock prices a profile's tokens as the model's."""
    name = model_id.rsplit("/", 1)[-1]
    return name[len(next((p for p in PROFILE_PREFIXES if name.startswith(p)), "")) :]
