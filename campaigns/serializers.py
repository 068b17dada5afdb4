"""API representations of templates, campaigns, runs and generated emails."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.audiences import AudienceError, audience_check
from campaigns.models import Campaign, CampaignRun, CampaignTick, GeneratedEmail, PromptTemplate, SubjectMode
from campaigns.prompting import TemplateProblem, check_template
from campaigns.subject_test import RATE_BASES, Verdict
from saas.rows import ApiModelSerializer
from tenants.serializers import TenantModelSerializer, TenantPrimaryKeyField


class PromptTemplateSerializer(TenantModelSerializer):
    unique_in_tenant = ("name",)

    class Meta:
        model = PromptTemplate
        fields = ["id", "name", "system", "body", "updated_at"]

    def _check(self, value: str) -> str:
        try:
            check_template(value)
        except TemplateProblem as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value

    validate_system = _check
    validate_body = _check


class CampaignSerializer(TenantModelSerializer):
    unique_in_tenant = ("name",)
    template = TenantPrimaryKeyField(PromptTemplate, required=False, allow_null=True)
    n_items = serializers.IntegerField(min_value=1, max_value=10, default=3)
    include_genres = serializers.ListField(child=serializers.CharField(max_length=50), max_length=30, required=False)
    exclude_genres = serializers.ListField(child=serializers.CharField(max_length=50), max_length=30, required=False)
    promotion_share = serializers.FloatField(min_value=0, max_value=1, required=False)
    skip_emailed_days = serializers.IntegerField(min_value=0, max_value=365, required=False)
    subject_variants = serializers.IntegerField(
        min_value=1, max_value=5, required=False,
        help_text="Subject lines per email: 1 (the body's own), or 2-5 candidates written by the model.",
    )  # fmt: skip

    class Meta:
        model = Campaign
        fields = ["id", "name", "template", "goal", "audience", "n_items", "review_required", "task", "include_genres",
                  "exclude_genres", "max_maturity", "maturity_by_age", "skip_emailed_days", "promotion_share",
                  "subject_variants", "subject_mode", "created_at", "schedule", "last_tick"]  # fmt: skip

    schedule = serializers.SerializerMethodField(help_text="The campaign's beat schedule, or null.")
    last_tick = serializers.SerializerMethodField(help_text="What the schedule's latest firing did, or null.")

    @extend_schema_field({"allOf": [{"$ref": "#/components/schemas/ScheduleState"}], "nullable": True})
    def get_schedule(self, campaign) -> dict | None:
        from campaigns.schedules import campaign_schedule_get

        schedule = campaign_schedule_get(campaign=campaign) if campaign.pk else None
        return schedule.as_dict() if schedule else None

    @extend_schema_field({"allOf": [{"$ref": "#/components/schemas/CampaignTick"}], "nullable": True})
    def get_last_tick(self, campaign) -> dict | None:
        if not campaign.pk:
            return None
        tick = CampaignTick.objects.for_tenant(campaign.tenant).filter(campaign=campaign).first()
        return CampaignTickSerializer(tick).data if tick else None

    def validate_audience(self, value):
        try:
            return audience_check(value)
        except AudienceError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class CampaignRunSerializer(ApiModelSerializer):
    campaign = serializers.PrimaryKeyRelatedField(read_only=True)
    sending = serializers.SerializerMethodField(
        help_text="The run's emails by sending state: approved (not asked to be sent), queued, waiting (paused, "
        "outside the send window or over the frequency cap, until send_after), sending, sent, failed, unknown, "
        "suppressed, skipped."
    )

    class Meta:
        model = CampaignRun
        fields = ["id", "campaign", "status", "total", "generated", "failed", "processed", "percent", "rate_per_s",
                  "eta_at", "eta_seconds", "progress_at", "input_tokens", "output_tokens", "cost_usd", "created_at",
                  "started_at", "finished_at", "error", "mode", "mode_reason", "batch_status", "sending"]  # fmt: skip
        # Not the batch job's ARN: it names the platform's AWS account, which is none of a tenant's business.
        read_only_fields = fields

    def get_sending(self, run) -> dict[str, int]:
        from campaigns.sending import run_send_states

        return run_send_states(run=run)


class GeneratedEmailSerializer(ApiModelSerializer):
    contact = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    run = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = GeneratedEmail
        fields = ["id", "run", "contact", "items", "favorite_genre", "subject", "body", "edited", "status",
                  "failure_reason", "reject_reason", "model_key", "route_reason", "attempts", "input_tokens",
                  "output_tokens", "cost_usd", "latency_ms", "reviewed_by", "reviewed_at", "sent_at", "created_at",
                  "send_claimed_at", "message_id", "send_after", "send_error", "send_resolved_by",
                  "send_resolved_at", "judge_score", "judge_reasons", "judged_at", "judge_model",
                  "subject_candidates", "subject_variant"]  # fmt: skip
        read_only_fields = fields

    subject_candidates = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="The subject variants written (empty: none)."
    )


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class RegenerateSerializer(serializers.Serializer):
    feedback = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class SubjectPickSerializer(serializers.Serializer):
    variant = serializers.IntegerField(min_value=0, max_value=4, help_text="The index in subject_candidates.")


class EditSerializer(serializers.Serializer):
    subject = serializers.CharField(max_length=300)
    body = serializers.CharField(max_length=20000)


class LaunchSerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, required=False)


class ScheduleSerializer(serializers.Serializer):
    """Either {"cron": "0 9 * * 1", "timezone": "Europe/Paris"} or {"every": 2, "period": "hours"}."""

    cron = serializers.CharField(max_length=100, required=False)
    timezone = serializers.CharField(max_length=50, default="UTC")
    every = serializers.IntegerField(min_value=1, max_value=100_000, required=False)
    period = serializers.ChoiceField(choices=["seconds", "minutes", "hours", "days"], default="minutes")

    def validate(self, attrs):
        if ("cron" in attrs) == ("every" in attrs):
            raise serializers.ValidationError(
                'give either "cron" (with an optional "timezone") or "every" (with a "period"), not both'
            )
        return attrs


class CampaignTickSerializer(ApiModelSerializer):
    run = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = CampaignTick
        fields = ["id", "at", "outcome", "run", "detail"]
        read_only_fields = fields


class ScheduleStateSerializer(serializers.Serializer):
    """A campaign's schedule as it stands (answer of GET/POST …/schedule/, pause and resume)."""

    kind = serializers.ChoiceField(choices=["cron", "interval"])
    enabled = serializers.BooleanField(help_text="false while paused")
    cron = serializers.CharField(allow_null=True)
    timezone = serializers.CharField(allow_null=True)
    every = serializers.IntegerField(allow_null=True)
    period = serializers.CharField(allow_null=True)
    last_run_at = serializers.DateTimeField(allow_null=True)
    total_run_count = serializers.IntegerField()
    text = serializers.CharField(help_text='e.g. "cron 0 9 * * 1 (Europe/Paris)" or "every 2 hours, paused"')


class RunSendSerializer(serializers.Serializer):
    detail = serializers.CharField()
    run = serializers.IntegerField()
    emails = serializers.DictField(child=serializers.IntegerField(), help_text="The run's emails counted by status.")


class PreviewRequestSerializer(serializers.Serializer):
    contact = serializers.CharField(max_length=200, help_text="The contact's external_id (or its numeric id).")
    sample = serializers.BooleanField(
        default=True,
        help_text="Have the tenant's routed model write a sample email, as the admin's preview does (a model call, "
        "recorded in usage); false: only the picks and the rendered prompt.",
    )


class PreviewPickSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    external_id = serializers.CharField()
    title = serializers.CharField()
    year = serializers.IntegerField(allow_null=True)
    genres = serializers.ListField(child=serializers.CharField())
    plot = serializers.CharField()
    score = serializers.FloatField()
    why = serializers.CharField(help_text="Why it was picked, in words a marketer reads.")


class PreviewSerializer(serializers.Serializer):
    """A campaign's email for one contact, as a run would write it; no run, no email, no quota held."""

    contact = serializers.CharField(source="contact.external_id", help_text="The contact's external_id.")
    favorite_genre = serializers.CharField(help_text="From the contact's history; blank if none.")
    picks = PreviewPickSerializer(many=True)
    system = serializers.CharField(help_text="The rendered system prompt.")
    prompt = serializers.CharField(help_text="The rendered prompt the model is given.")
    ok = serializers.BooleanField(help_text="Whether a sample email was written and passed the run's checks.")
    subject = serializers.CharField(help_text="The sample's subject (blank without a sample).")
    body = serializers.CharField(help_text="The sample's body (blank without a sample).")
    problem = serializers.CharField(help_text="Why there is no sample: no picks, a template error, the model's answer "
                                    "refused, the model unreachable; blank otherwise.")  # fmt: skip
    model_key = serializers.CharField(help_text="The model the tenant's plan routes this campaign's task to.")
    route_reason = serializers.CharField()
    attempts = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=14, decimal_places=8, help_text="What the sample cost, in dollars.")
    latency_ms = serializers.IntegerField()


class CampaignCancelSerializer(serializers.Serializer):
    runs_cancelled = serializers.ListField(child=serializers.IntegerField(), help_text="The runs stopped now.")
    schedule_paused = serializers.BooleanField(help_text="The schedule was ticking and is paused now (kept).")
    campaign = serializers.IntegerField()


class TestSendSerializer(serializers.Serializer):
    to = serializers.EmailField(max_length=254, help_text="Where the test goes, e.g. the marketer's own address.")


class TestSentSerializer(serializers.Serializer):
    sent_to = serializers.EmailField()
    email = GeneratedEmailSerializer(help_text="The email, unchanged by the test.")


class SubjectArmSerializer(serializers.Serializer):
    variant = serializers.IntegerField(help_text="The subject variant's index (0 is the first candidate).")
    label = serializers.CharField(help_text="Its name in the verdicts and the admin: A for index 0, B for 1, …")
    subjects = serializers.ListField(child=serializers.CharField(), help_text="Its most common subject texts (up to "
                                     "3; personalized subjects differ per contact).")  # fmt: skip
    subject_count = serializers.IntegerField(help_text="How many different subject texts the arm's emails have.")
    emails = serializers.IntegerField(help_text="Emails written with this variant, whatever their status.")
    sent = serializers.IntegerField(help_text="Emails sent.")
    delivered = serializers.IntegerField(help_text="Emails a provider reported delivered.")
    opened = serializers.IntegerField(help_text="Emails opened at least once (unique opens).")
    clicked = serializers.IntegerField(help_text="Emails with at least one click (unique clicks).")
    open_rate = serializers.FloatField(allow_null=True, help_text="opened / the rate base (null: none in it).")
    click_rate = serializers.FloatField(allow_null=True, help_text="clicked / the rate base (null: none in it).")
    edited = serializers.IntegerField(help_text="Emails whose subject and body a reviewer rewrote.")
    picked = serializers.IntegerField(allow_null=True, help_text='"pick" campaigns: emails a reviewer moved to '
                                      'this variant (the rest kept the default); null for "ab".')  # fmt: skip


class SubjectVerdictSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Verdict.choices, help_text="winner: the best variant beats every "
                                      "other; no_winner: the differences could be chance; not_enough_data: below the "
                                      "minimum sample; not_tested: a pick campaign, or no variants.")  # fmt: skip
    best = serializers.IntegerField(allow_null=True, help_text="The variant with the highest rate, once tested.")
    p_value = serializers.FloatField(allow_null=True, help_text="The largest Holm-adjusted p-value of the best "
                                     "variant against each other (two-proportion test).")  # fmt: skip
    p_values = serializers.DictField(child=serializers.FloatField(), help_text="The adjusted p-value of the best "
                                     "variant against each other variant, by that variant's index.")  # fmt: skip
    detail = serializers.CharField(help_text="The verdict in words.")


class SubjectTestSerializer(serializers.Serializer):
    campaign = serializers.IntegerField()
    run = serializers.IntegerField(allow_null=True, help_text="The run, when the test is one run's; else null.")
    mode = serializers.ChoiceField(choices=SubjectMode.choices)
    variants = serializers.IntegerField(help_text="The campaign's subject_variants now.")
    rate_base = serializers.ChoiceField(choices=RATE_BASES, help_text="What the rates divide by: delivered emails "
                                        "when the provider reports deliveries, else sent emails.")  # fmt: skip
    min_per_arm = serializers.IntegerField(help_text="Emails each variant needs in the rate base before a verdict.")
    alpha = serializers.FloatField(help_text="The significance level.")
    without_variants = serializers.IntegerField(help_text="Emails with the body's own subject (no variants).")
    arms = SubjectArmSerializer(many=True, help_text="One per variant index, in order.")
    opens = SubjectVerdictSerializer(help_text="Is the best open rate ahead by more than chance?")
    clicks = SubjectVerdictSerializer(help_text="Is the best click rate ahead by more than chance?")
