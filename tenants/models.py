"""Tenants (a customer account on a plan), their members and roles, and their API keys."""

import hashlib
import hmac
import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")
ROLE_ARN = RegexValidator(r"^arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$", "Enter an IAM role ARN.")


class Plan(models.TextChoices):
    """The plans the product is seeded with; the plans themselves (and any the operator adds) are routing.Plan."""

    BASIC = "basic", "Basic"
    PRO = "pro", "Pro"


class GuardrailUse(models.TextChoices):
    MODEL_CALLS = "model_calls", "on every Bedrock model call (guardrailConfig)"
    DRAFTS = "drafts", "on every validated draft (ApplyGuardrail), whatever model wrote it"


class RoutingStrategy(models.TextChoices):
    """How each prompt finds its model on a Pro plan (routing.dynamic); a plan of the small tier routes statically."""

    STATIC = "static", "Static: the plan's route for the task"
    SEMANTIC = "semantic", "Semantic: nearest reference prompt (embeddings)"
    CLASSIFIER = "classifier", "Classifier: a small model labels the prompt"
    HYBRID = "hybrid", "Hybrid: semantic, the classifier when the match is weak"
    PROMPT_ROUTER = "prompt_router", "Bedrock Intelligent Prompt Routing"


class EmailProvider(models.TextChoices):
    DEFAULT = "", "The platform's (EMAIL_BACKEND)"
    SMTP = "smtp", "SMTP"
    SES = "ses", "Amazon SES"


class CapAction(models.TextChoices):
    WAIT = "wait", "Wait until the contact is under the cap"
    SKIP = "skip", "Skip the email, with the reason"


def validate_timezone(name: str) -> None:
    """An IANA time zone name (Europe/Paris), as zoneinfo knows it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            "%(name)s is not a time zone name (e.g. Europe/Paris, America/New_York).", params={"name": repr(name)}
        ) from None  # a param: DRF %-formats messages


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MARKETER = "marketer", "Marketer"
    REVIEWER = "reviewer", "Reviewer"


class KeyScope(models.TextChoices):
    """What an API key may do on top of its role: read-only keys are refused every unsafe method."""

    READ_WRITE = "read-write", "Read and write (what its role allows)"
    READ_ONLY = "read-only", "Read only"


def default_reject_reasons() -> list[str]:
    return ["Wrong tone for the brand", "Recommends the wrong items", "Factual error about an item", "Too long",
            "Too pushy or salesy", "Mentions price or offers we don't make"]  # fmt: skip


class Tenant(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    plan = models.CharField(max_length=50, default=Plan.BASIC, help_text="The slug of one of the plans (routing.Plan).")
    brand_name = models.CharField(max_length=200, blank=True)
    sender_name = models.CharField(max_length=200, blank=True)
    sender_email = models.EmailField(blank=True)
    reply_to_email = models.EmailField(blank=True, help_text="Where replies go. Blank: the sender address.")
    postal_address = models.CharField(max_length=400, blank=True, help_text="Shown in every email footer.")
    recommender = models.CharField(
        max_length=20, choices=[("embedded", "Embedded"), ("personalize", "Amazon Personalize")], default="embedded"
    )
    personalize_recommender_arn = models.CharField(max_length=300, blank=True)
    personalize_filter_arn = models.CharField(max_length=300, blank=True)
    # Written by personalize_sync: the dataset group it reuses, and how far the interactions export has got.
    personalize_dataset_group_arn = models.CharField(max_length=300, blank=True)
    personalize_exported_through = models.BigIntegerField(default=0, help_text="The last interaction id imported.")
    personalize_synced_at = models.DateTimeField(null=True, blank=True)
    personalize_bucket = models.CharField(max_length=63, blank=True, help_text="Blank: the platform's bucket.")
    personalize_role_arn = models.CharField(
        max_length=300, blank=True, validators=[ROLE_ARN], help_text="The role Personalize assumes to read the bucket."
    )
    # AWS: the tenant's region, and for a tenant that brings its own account, the role we assume there.
    aws_region = models.CharField(max_length=30, blank=True, help_text="Blank: the platform's AWS_REGION.")
    aws_role_arn = models.CharField(max_length=300, blank=True, validators=[ROLE_ARN])
    aws_external_id = models.CharField(max_length=200, blank=True, help_text="What the role's trust policy requires.")
    bedrock_guardrail_id = models.CharField(max_length=300, blank=True, help_text="Applied to every generation.")
    bedrock_guardrail_version = models.CharField(max_length=20, blank=True, help_text="Blank: DRAFT.")
    guardrail_use = models.CharField(
        max_length=12, choices=GuardrailUse.choices, default=GuardrailUse.MODEL_CALLS,
        help_text="Where the guardrail screens: inside each Bedrock call, or each finished draft (also for models "
        "outside Bedrock, such as the local one).",
    )  # fmt: skip
    routing_strategy = models.CharField(
        max_length=20, choices=RoutingStrategy.choices, default=RoutingStrategy.STATIC, blank=True,
        help_text="Pro plans: how each prompt is routed between the plan's models. Basic plans route statically.",
    )  # fmt: skip
    # The draft judge (issue 13): the brand's voice it checks drafts against, and the safety (1 - risk) at or above
    # which it approves a draft itself (never one that failed an exact check). Blank: a person approves every draft.
    brand_tone = models.TextField(
        blank=True, help_text="How the brand sounds, e.g. 'warm, plain, no exclamation marks'."
    )
    judge_auto_approve_at = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text="Approve drafts the judge rates at least this safe (0.5 to 1). Blank: never.",
    )  # fmt: skip
    # Per-task model overrides, e.g. {"marketing_email": "bedrock/nova-lite"}: catalog keys of the plan's tier, set
    # by platform staff only, each change recorded (routing.OverrideChange: who, when, why).
    model_overrides = models.JSONField(default=dict, blank=True)
    monthly_email_quota = models.PositiveIntegerField(null=True, blank=True, help_text="Blank: the plan's.")
    monthly_budget_usd = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="Model spend per month. Blank: the plan's."
    )
    reject_reasons = models.JSONField(
        default=default_reject_reasons, blank=True,
        help_text="The reasons a reviewer picks from when rejecting a draft (one key each, 1 to 9); free text too.",
    )  # fmt: skip
    # Delivery (issue 11): which provider sends, from where, how fast, when and how often.
    email_provider = models.CharField(max_length=10, choices=EmailProvider.choices, blank=True)
    sending_domain = models.CharField(
        max_length=253, blank=True, help_text="The domain mail is sent from (SPF, DKIM); List-Id names it. "
        "Blank: the sender address's domain.",
    )  # fmt: skip
    send_rate_per_second = models.PositiveIntegerField(
        default=0, help_text="Emails handed to the provider per second at most. 0: the platform's rate."
    )
    timezone = models.CharField(
        max_length=64, default="UTC", validators=[validate_timezone],
        help_text="For send windows, when a contact's own time zone is not known.",
    )  # fmt: skip
    frequency_cap = models.PositiveSmallIntegerField(
        default=0, help_text="At most this many marketing emails per contact per period, across campaigns. 0: none."
    )
    frequency_period_days = models.PositiveSmallIntegerField(default=7)
    frequency_cap_action = models.CharField(max_length=4, choices=CapAction.choices, default=CapAction.WAIT)
    sending_paused_at = models.DateTimeField(null=True, blank=True, help_text="Set by the complaint guard.")
    sending_paused_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name

    def clean(self):
        # The external id keeps another customer from pointing us at this tenant's role (the confused deputy).
        if self.aws_role_arn and not self.aws_external_id:
            raise ValidationError({"aws_external_id": "A role in your own AWS account needs an external id."})
        reasons = self.reject_reasons
        if not isinstance(reasons, list) or not all(isinstance(r, str) and r.strip() for r in reasons):
            raise ValidationError({"reject_reasons": "A list of reasons, each a non-empty text."})
        if len(reasons) > 9 or any(len(r) > 200 for r in reasons):
            raise ValidationError({"reject_reasons": "At most 9 reasons (keys 1 to 9), each at most 200 characters."})
        self.sending_domain = (self.sending_domain or "").strip().rstrip(".").lower()
        if self.sending_domain:
            domain = self.sending_domain
            if not DOMAIN.match(domain):
                raise ValidationError({"sending_domain": f"{domain[:80]!r} is not a domain name (e.g. mail.acme.com)."})
            sender = (self.sender_email or "").strip().lower()
            if not sender:
                raise ValidationError({"sender_email": f"With the sending domain {domain}, set a sender address "
                                       f"in it (e.g. hello@{domain}): the platform's address is not in it."})  # fmt: skip
            at = sender.rpartition("@")[2]
            if at != domain and not at.endswith("." + domain):
                raise ValidationError({"sender_email": f"{self.sender_email} is not in the sending domain {domain}: "
                                       f"use an address @{domain} or @a subdomain of it (SPF and DKIM vouch only "
                                       "for that domain)."})  # fmt: skip
        self.clean_routing()

    def clean_routing(self):
        """The plan is one of the plans; each override names an enabled catalog model of the plan's tier."""
        from routing.catalog import get_model, get_plan
        from routing.models import tier_allows

        try:
            plan = get_plan(self.plan)
        except KeyError as exc:
            raise ValidationError({"plan": exc.args[0]}) from None
        overrides = self.model_overrides
        if not isinstance(overrides, dict) or not all(isinstance(v, str) for v in overrides.values()):
            raise ValidationError({"model_overrides": 'A map of task to model key, e.g. {"marketing_email": "…"}.'})
        for task, key in overrides.items():
            try:
                model = get_model(key)
            except KeyError as exc:
                raise ValidationError({"model_overrides": f"task {task!r}: {exc.args[0]}"}) from None
            if not tier_allows(plan.tier, model.tier):
                raise ValidationError({"model_overrides": f"task {task!r}: {key} is a {model.tier}-tier model; "
                                       f"plan {plan.name} is on the {plan.tier} tier."})  # fmt: skip
        if self.routing_strategy != RoutingStrategy.STATIC and plan.tier != "large":
            raise ValidationError({"routing_strategy": f"Dynamic routing is a Pro option; plan {plan.name} routes "
                                   "statically."})  # fmt: skip

    @property
    def email_quota(self) -> int:
        """Emails per month: the tenant's own quota, or its plan's."""
        if self.monthly_email_quota is not None:
            return self.monthly_email_quota
        from routing.catalog import get_plan

        return get_plan(self.plan).monthly_email_quota

    @property
    def budget_usd(self):
        """Model spend per month (a Decimal), or None for no limit: the tenant's own budget, or its plan's."""
        if self.monthly_budget_usd is not None:
            return self.monthly_budget_usd
        from routing.catalog import get_plan

        return get_plan(self.plan).monthly_budget_usd

    @property
    def brand(self) -> str:
        return self.brand_name or self.name

    @property
    def signoff(self) -> str:
        return f"{self.sender_name} from {self.brand}" if self.sender_name else f"The {self.brand} team"

    @property
    def from_email(self) -> str:
        address = self.sender_email or settings.DEFAULT_FROM_EMAIL
        return f"{self.sender_name or self.brand} <{address}>"


class Membership(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MARKETER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="one_membership_per_tenant")]

    def __str__(self):
        return f"{self.user} ({self.role}) in {self.tenant}"


def _digest(secret: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), secret.encode(), hashlib.sha256).hexdigest()


class ApiKeyManager(models.Manager):
    def issue(
        self, *, tenant: Tenant, name: str, role: str = Role.MARKETER, scope: str = KeyScope.READ_WRITE
    ) -> tuple["ApiKey", str]:
        """Create a key; the plain key is returned once and never stored."""
        prefix = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        plain = f"ms_{prefix}_{secret}"
        key = self.create(tenant=tenant, name=name, role=role, scope=scope, prefix=prefix, digest=_digest(plain))
        return key, plain

    def for_tenant(self, tenant: Tenant):
        """The tenant's keys (the API's base view reads every model through this)."""
        return self.filter(tenant=tenant)

    def authenticate(self, plain: str) -> "ApiKey | None":
        parts = plain.split("_", 2)
        if len(parts) != 3 or parts[0] != "ms":
            return None
        key = self.filter(prefix=parts[1], revoked_at__isnull=True).select_related("tenant").first()
        if key is None or not hmac.compare_digest(key.digest, _digest(plain)):
            return None
        return key


class ApiKey(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MARKETER)
    scope = models.CharField(max_length=10, choices=KeyScope.choices, default=KeyScope.READ_WRITE)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The admin renders help text as HTML: no angle brackets in it.
    revoked_by = models.CharField(max_length=200, blank=True, help_text="Who revoked the key: admin:USER in the "
                                  "admin, api-key:NAME through the API.")  # fmt: skip

    objects = ApiKeyManager()
    dangerously_unscoped = models.Manager()  # what the schema generator reads, with no tenant

    class Meta:
        verbose_name, verbose_name_plural = "API key", "API keys"

    def __str__(self):
        return f"{self.name} (ms_{self.prefix}_…)"

    def revoke(self, *, actor: str) -> bool:
        """Revoke the key at once (the next request with it is refused), recording who and when: one UPDATE, the
        copy in memory set to what it wrote. False if it was revoked already: the first revocation's time and actor
        stay, and are read into this copy."""
        now = timezone.now()
        if ApiKey.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=now, revoked_by=actor):
            self.revoked_at, self.revoked_by = now, actor
            return True
        self.refresh_from_db(fields=["revoked_at", "revoked_by"])
        return False


class QuotaUsage(models.Model):
    """How much of a tenant's monthly email quota is taken in one month: reserved by runs at launch (and trued up to
    what they wrote when they end) and by regenerations. Kept apart from the emails and usage records, which a
    tenant can delete: deleting them frees nothing."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="quota_usage")
    month = models.DateField(help_text="The first day of the month.")
    reserved = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "month"], name="one_quota_usage_per_month")]

    def __str__(self):
        return f"{self.tenant} {self.month:%Y-%m}: {self.reserved}"
