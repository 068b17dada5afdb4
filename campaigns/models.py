"""Prompt templates, campaigns, their runs, and the emails a run generates (with their review state)."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.utils import timezone

from tenants.scoping import TenantOwned


class PromptTemplate(TenantOwned):
    name = models.CharField(max_length=100)
    system = models.TextField(blank=True, help_text="System prompt (Jinja2). Empty: the built-in one.")
    body = models.TextField(help_text="User prompt (Jinja2, sandboxed).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="template_unique_name")]

    def __str__(self):
        return self.name

    def clean(self):
        from campaigns.prompting import TemplateProblem, check_template

        for field in ("system", "body"):
            try:
                check_template(getattr(self, field))
            except TemplateProblem as exc:
                raise ValidationError({field: str(exc)}) from exc


class SubjectMode(models.TextChoices):
    PICK = "pick", "The reviewer picks one"
    AB = "ab", "A/B split across contacts"


class Campaign(TenantOwned):
    name = models.CharField(max_length=200)
    # RESTRICT, not PROTECT: a template in use stays, unless its campaigns go in the same delete (their tenant's).
    template = models.ForeignKey(
        PromptTemplate, null=True, blank=True, on_delete=models.RESTRICT, help_text="Empty: the built-in template."
    )
    goal = models.CharField(max_length=300, blank=True, help_text="One line for the copywriter, e.g. 'weekend binge'.")
    audience = models.JSONField(
        default=dict,
        blank=True,
        help_text='Who each run writes to, worked out afresh at every run. {} is everyone; {"kind": "filter", '
        '"min_age": 18, "max_age": 34, "gender": "female", "locale": "en_US", "attributes": {"plan": "gold"}, '
        '"favorite_genre": "Comedy"}; {"kind": "not_emailed", "days": 30}; {"kind": "active_since_last_run"} '
        "(both also take the filter keys). Unsubscribed contacts are never in it.",
    )
    n_items = models.PositiveSmallIntegerField(default=3)
    review_required = models.BooleanField(default=True)
    task = models.CharField(max_length=50, default="marketing_email", help_text="Routing task name.")
    # Which picks a contact may get (mirroring Personalize filters and promotions).
    include_genres = models.JSONField(default=list, blank=True, help_text="Only items with one of these genres.")
    exclude_genres = models.JSONField(default=list, blank=True, help_text="No items with any of these genres.")
    max_maturity = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1 G, 2 PG, 3 PG-13, 4 R.")
    maturity_by_age = models.BooleanField(default=False, help_text="Under 13: PG at most; under 17: PG-13.")
    skip_emailed_days = models.PositiveSmallIntegerField(
        default=0, help_text="Skip items sent to the contact in the last N days."
    )
    promotion_share = models.FloatField(default=0.0, help_text="Share of the picks for promoted items (0 to 1).")
    # Subject-line variants (campaigns.subjects): 1 keeps the body's own subject; 2-5 that many candidates per email,
    # written on the "subject" route; the reviewer picks one ("pick", the first by default) or contacts are split
    # across them by a hash of their id ("ab"), and each email keeps the index it went out with.
    subject_variants = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="Subject lines per email: 1, or 2-5 candidates written by the model.",
    )
    subject_mode = models.CharField(max_length=10, choices=SubjectMode.choices, default=SubjectMode.PICK)
    # The hours emails go out, in each contact's own time (an end before the start spans midnight); blank: any time.
    send_window_start = models.TimeField(null=True, blank=True)
    send_window_end = models.TimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="campaign_unique_name"),
            models.CheckConstraint(
                condition=models.Q(promotion_share__gte=0, promotion_share__lte=1), name="campaign_promotion_share_0_1"
            ),
            models.CheckConstraint(condition=models.Q(n_items__gte=1, n_items__lte=10), name="campaign_n_items_1_10"),
            models.CheckConstraint(
                condition=models.Q(subject_variants__gte=1, subject_variants__lte=5),
                name="campaign_subject_variants_1_5",
            ),
        ]

    def __str__(self):
        return self.name

    # What shapes the emails a run writes: its chunks read these as they go, so while a run is active they stay as
    # they were when it started (one run, one set of rules). The name and the send window may change any time.
    RUN_SHAPING_FIELDS = ("template", "goal", "audience", "n_items", "review_required", "task", "include_genres",
                          "exclude_genres", "max_maturity", "maturity_by_age", "skip_emailed_days", "promotion_share",
                          "subject_variants", "subject_mode")  # fmt: skip

    def active_run(self) -> "CampaignRun | None":
        return (
            CampaignRun.objects.for_tenant(self.tenant_id).filter(campaign=self, status__in=ACTIVE_RUN_STATUSES).first()
        )

    def change_refused(self, changes: dict) -> str:
        """Why `changes` (field → new value) may not be made now, or "": a field that shapes what a run writes may
        not change while a run of the campaign is active."""
        changed = [name for name in self.RUN_SHAPING_FIELDS if name in changes and changes[name] != getattr(self, name)]
        run = self.active_run() if changed else None
        if run is None:
            return ""
        return (
            f"run #{run.pk} of this campaign is {run.status}: {', '.join(changed)} may not change until it ends "
            "(or is cancelled); the name may"
        )


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class RunMode(models.TextChoices):
    ON_DEMAND = "on_demand", "on-demand calls"
    BATCH = "batch", "Bedrock batch inference"


class CampaignRun(TenantOwned):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    generated = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    progress_at = models.DateTimeField(null=True, blank=True, help_text="When the counts were last refreshed.")
    rate_per_s = models.FloatField(default=0, help_text="Emails written per second since the run started.")
    eta_at = models.DateTimeField(null=True, blank=True, help_text="When the run should finish at that rate.")
    mode = models.CharField(max_length=10, choices=RunMode.choices, default=RunMode.ON_DEMAND)
    mode_reason = models.CharField(max_length=500, blank=True, help_text="Why the run is written this way.")
    batch_job_arn = models.CharField(max_length=300, blank=True)
    batch_status = models.CharField(max_length=40, blank=True)
    # The emails of the tenant's monthly quota this run holds: reserved at launch, trued up to what it wrote once it
    # has ended (quota_settled), so what it did not use is given back exactly once.
    quota_reserved = models.PositiveIntegerField(default=0)
    quota_settled = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign"],
                condition=models.Q(status__in=ACTIVE_RUN_STATUSES),
                name="one_active_run_per_campaign",
            )
        ]

    def __str__(self):
        return f"{self.campaign} run #{self.pk} ({self.status})"

    @property
    def processed(self) -> int:
        return self.generated + self.failed

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES

    @property
    def percent(self) -> float:
        if not self.total:
            return 0.0 if self.is_active else 100.0
        return round(100 * min(self.processed, self.total) / self.total, 1)

    @property
    def eta_seconds(self) -> int | None:
        """Seconds from now until eta_at; None once the run has finished or while there is no rate yet."""
        if self.eta_at is None or not self.is_active:
            return None
        return max(0, round((self.eta_at - timezone.now()).total_seconds()))


class TickOutcome(models.TextChoices):
    LAUNCHED = "launched"
    SKIPPED = "skipped"  # a run of the campaign was still active
    FAILED = "failed"  # nothing launched: no audience, no quota left, ...


class CampaignTick(TenantOwned):
    """One firing of a campaign's schedule and what came of it: a run, or why there was none."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="ticks")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    outcome = models.CharField(max_length=10, choices=TickOutcome.choices)
    run = models.ForeignKey(CampaignRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("-at", "-pk")

    def __str__(self):
        return f"{self.campaign} at {self.at:%Y-%m-%d %H:%M:%S}: {self.outcome}"


class BatchRecord(TenantOwned):
    """A contact's prompt in a run's Bedrock batch job, kept from submission until its email is stored: the
    answer is checked against the picks it was written for, which may have changed by the time the job ends."""

    run = models.ForeignKey(CampaignRun, on_delete=models.CASCADE, related_name="batch_records")
    contact = models.ForeignKey("datasets.Contact", on_delete=models.CASCADE, related_name="+")
    fields = models.JSONField(help_text="The email's fields so far: items, favorite_genre, prompt, model, route.")
    system = models.TextField(blank=True)
    # Which collecting task is judging and storing this record, and until when its claim holds (a task killed
    # half-way leaves its claim to run out): two tasks never pay twice for the same rewrites and screening.
    claim = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "contact"], name="one_batch_record_per_contact")]

    def __str__(self):
        return f"run {self.run_id} contact {self.contact_id}"


class EmailStatus(models.TextChoices):
    DRAFT = "draft"
    APPROVED = "approved"
    REJECTED = "rejected"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # generation failed; failure_reason says why
    SUPPRESSED = "suppressed"  # the contact unsubscribed before sending
    SEND_FAILED = "send_failed", "Send failed"  # refused for good (address, SMTP 5xx); send_error says why
    # A send was cut off after the message may have reached the SMTP server (a lost reply, a worker that died):
    # whether it was delivered cannot be known, so a person marks it sent or sends it again.
    SEND_UNKNOWN = "send_unknown", "Send unknown"
    REGENERATING = "regenerating"  # being written again by a task; regenerating_since says since when
    SKIPPED = "skipped"  # not sent by a rule the tenant chose (the frequency cap); send_error says why


REGENERATABLE = (EmailStatus.FAILED, EmailStatus.REJECTED, EmailStatus.DRAFT)


SUBJECT_MAX, BODY_MAX, REASON_MAX = 300, 20_000, 500
BULK_CHUNK = 500  # drafts per transaction in a bulk decision


class InvalidTransition(Exception):
    pass


# A new text's verdict fields (an edit, a regeneration): a judge task still at the old text loses its claim too.
JUDGE_CLEAR = {"judge_score": None, "judge_reasons": [], "judged_at": None, "judge_model": "",
               "judge_claim": "", "judge_claimed_until": None}  # fmt: skip


class GeneratedEmail(TenantOwned):
    run = models.ForeignKey(CampaignRun, on_delete=models.CASCADE, related_name="emails")
    contact = models.ForeignKey("datasets.Contact", on_delete=models.CASCADE, related_name="emails")
    items = models.JSONField(default=list, help_text="The recommended items: [{id, title}] in rank order.")
    favorite_genre = models.CharField(max_length=100, blank=True)
    prompt = models.TextField(blank=True)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    edited = models.BooleanField(default=False)
    # What the model wrote, kept when a person edits the email (subject and body then hold the person's text).
    original_subject = models.CharField(max_length=300, blank=True)
    original_body = models.TextField(blank=True)
    feedback = models.TextField(blank=True, help_text="What the reviewer asked for when it was last regenerated.")
    # What the checks found on the way: one entry per answer refused (validation, guardrail, model errors).
    checks = models.JSONField(default=list, blank=True)
    # Subject-line variants: the candidates the model wrote (empty: the body's own subject only) and the index of
    # the one in `subject` (the reviewer's pick, or the contact's A/B arm); reports compare rates per index.
    subject_candidates = models.JSONField(default=list, blank=True)
    subject_variant = models.PositiveSmallIntegerField(null=True, blank=True)
    screened = models.BooleanField(default=False, help_text="The tenant's guardrail screened the finished draft.")
    status = models.CharField(max_length=20, choices=EmailStatus.choices, default=EmailStatus.DRAFT, db_index=True)
    failure_reason = models.TextField(blank=True)
    reject_reason = models.TextField(blank=True)
    model_key = models.CharField(max_length=100, blank=True)
    route_reason = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=8, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    reviewed_by = models.CharField(max_length=150, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    send_claimed_at = models.DateTimeField(null=True, blank=True)
    regenerating_since = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=300, blank=True)
    provider_message_id = models.CharField(
        max_length=200, blank=True, db_index=True, help_text="The id the provider gave the message (SES's MessageId)."
    )
    send_after = models.DateTimeField(
        null=True, blank=True, help_text="Approved, waiting for its send window or the frequency cap until then."
    )
    send_error = models.TextField(blank=True)
    send_resolved_by = models.CharField(max_length=150, blank=True, help_text="Who marked it sent or sent it again.")
    send_resolved_at = models.DateTimeField(null=True, blank=True)
    # The draft judge (campaigns.judge): its risk, 0 safe to 1 needs a person, and why ({code, message} each).
    judge_score = models.FloatField(null=True, blank=True, help_text="The judge's risk: 0 safe, 1 needs a person.")
    judge_reasons = models.JSONField(default=list, blank=True)
    judged_at = models.DateTimeField(null=True, blank=True)
    judge_model = models.CharField(max_length=100, blank=True)
    # Which judge task is judging the draft, and until when its claim holds (campaigns.judge.emails_judge): two tasks
    # given the same drafts pay for each once.
    judge_claim = models.CharField(max_length=64, blank=True)
    judge_claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "contact"], name="one_email_per_contact_per_run")]

    def __str__(self):
        return f"{self.subject or '(no subject)'} → {self.contact_id} [{self.status}]"

    def _transition(self, allowed: tuple[str, ...], also: models.Q | None = None, *, event: str, by: str = "",
                    detail: dict | None = None, **changes) -> None:  # fmt: skip
        """Conditional UPDATE: two reviewers (or a reviewer and the sender) can never both win. The winner's change
        and its line in the audit log are written together."""
        condition = models.Q(status__in=allowed)
        if also is not None:
            condition |= also
        with transaction.atomic():
            updated = type(self).dangerously_unscoped.filter(condition, pk=self.pk).update(**changes)
            if updated:
                EmailEvent.record(self, event, by=by, status=changes.get("status", ""), detail=detail)
        if not updated:
            current = type(self).dangerously_unscoped.values_list("status", flat=True).get(pk=self.pk)
            if current == EmailStatus.REGENERATING:
                raise InvalidTransition(f"email {self.pk} is being regenerated; try again once it is a draft")
            raise InvalidTransition(f"email {self.pk} is {current}; only {'/'.join(allowed)} emails can do this")
        for name, value in changes.items():
            setattr(self, name, value)

    def approve(self, *, by: str) -> None:
        self._transition(
            (EmailStatus.DRAFT,), event=EventKind.APPROVED, by=by, status=EmailStatus.APPROVED, reviewed_by=by,
            reviewed_at=timezone.now(),
        )  # fmt: skip

    def reject(self, *, by: str, reason: str) -> None:
        if not reason.strip():
            raise ValidationError("a rejection needs a reason")
        reason = reason.strip()[:REASON_MAX]
        self._transition(
            (EmailStatus.DRAFT, EmailStatus.APPROVED), event=EventKind.REJECTED, by=by, detail={"reason": reason},
            status=EmailStatus.REJECTED, reject_reason=reason, reviewed_by=by, reviewed_at=timezone.now(),
        )  # fmt: skip

    @classmethod
    def review_many(cls, pks, *, action: str, by: str, reason: str = "") -> list[int]:
        """Approve or reject many drafts at once (the desk's bulk decision): in chunks, each locking its rows so
        that a reviewer deciding one of them meanwhile either wins before (the row is no longer a draft and is
        left out) or waits and then loses, as with single decisions. Returns the ids changed, each with its line
        in the audit log."""
        if action == "reject":
            if not reason.strip():
                raise ValidationError("a rejection needs a reason")
            reason = reason.strip()[:REASON_MAX]
            kind, status, detail = EventKind.REJECTED, EmailStatus.REJECTED, {"reason": reason}
            changes = {"reject_reason": reason}
        elif action == "approve":
            kind, status, detail, changes = EventKind.APPROVED, EmailStatus.APPROVED, {}, {}
        else:
            raise ValueError(f"action must be approve or reject, not {action!r}")
        pks, changed = sorted(set(pks)), []
        for start in range(0, len(pks), BULK_CHUNK):
            with transaction.atomic():
                rows = cls.dangerously_unscoped.select_for_update().filter(
                    pk__in=pks[start : start + BULK_CHUNK], status=EmailStatus.DRAFT
                )
                tenants = dict(rows.values_list("pk", "tenant_id"))
                cls.dangerously_unscoped.filter(pk__in=tenants).update(
                    status=status, reviewed_by=by, reviewed_at=timezone.now(), **changes
                )
                EmailEvent.record_many(tenants, kind, by=by, status=status, detail=detail)
            changed.extend(tenants)
        return changed

    def edit_and_approve(self, *, by: str, subject: str, body: str) -> None:
        """The person's text replaces the model's, which is kept (the first edit's original: a draft is edited
        once, since editing approves it)."""
        subject, body = subject.strip(), body.strip()
        if not subject or not body:
            raise ValidationError("an edited email needs a subject and a body")
        if len(subject) > SUBJECT_MAX:
            raise ValidationError(f"the subject is {len(subject)} characters; at most {SUBJECT_MAX}")
        if len(body) > BODY_MAX:
            raise ValidationError(f"the body is {len(body)} characters; at most {BODY_MAX}")
        # As stored, not as this instance holds it (a form may have set the person's text on it already).
        stored = type(self).dangerously_unscoped.values("subject", "body", "original_subject", "original_body")
        stored = stored.get(pk=self.pk)
        if subject == stored["subject"] and body == stored["body"]:
            return self.approve(by=by)
        self._transition(
            (EmailStatus.DRAFT,), event=EventKind.EDITED, by=by,
            detail={"subject": subject != stored["subject"], "body": body != stored["body"]},
            original_subject=stored["original_subject"] or stored["subject"],
            original_body=stored["original_body"] or stored["body"],
            subject=subject, body=body, edited=True, status=EmailStatus.APPROVED, reviewed_by=by,
            reviewed_at=timezone.now(), **JUDGE_CLEAR,
        )  # fmt: skip
        if settings.JUDGE_DRAFTS:  # the person's text is judged afresh (the score then describes what is sent)
            from campaigns import tasks

            pk, tenant_id = self.pk, self.tenant_id
            transaction.on_commit(lambda: tasks.emails_judge.delay(tenant_id, [pk]))

    def subject_pick(self, *, by: str, index: int) -> None:
        """The reviewer's choice among the subject candidates: a recorded edit of a draft (it stays a draft)."""
        if not self.subject_candidates:
            raise ValidationError("this email has no subject variants to pick from")
        if self.run.campaign.subject_mode == SubjectMode.AB:
            raise ValidationError("this campaign splits its subject variants A/B across contacts: none is picked")
        if not 0 <= index < len(self.subject_candidates):
            raise ValidationError(f"variant must be 0 to {len(self.subject_candidates) - 1}")
        self._transition(
            (EmailStatus.DRAFT,), event=EventKind.SUBJECT_PICKED, by=by,
            detail={"from": self.subject_variant, "to": index}, subject=self.subject_candidates[index],
            subject_variant=index,
        )  # fmt: skip

    def regenerate_claim(self, *, by: str = "", feedback: str = "", exclude: tuple[str, ...] = ()) -> None:
        """Mark the email as being written again by a task. A claim older than any task may live was left by a
        worker that died: it can be taken again, so that no email stays regenerating for ever."""
        now = timezone.now()
        lapsed = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
        stale = models.Q(status=EmailStatus.REGENERATING, regenerating_since__lt=lapsed)
        detail = {"feedback": feedback, "exclude": list(exclude)}
        self._transition(
            REGENERATABLE, also=stale, event=EventKind.REGENERATE_REQUESTED, by=by, detail=detail,
            status=EmailStatus.REGENERATING, regenerating_since=now, feedback=feedback,
        )  # fmt: skip

    def regenerate_finish(self, **fields) -> None:
        """Store what the regeneration wrote (a new draft, or a failure and its reason), as an unreviewed email."""
        reset = dict.fromkeys(("subject", "body", "failure_reason", "reject_reason", "reviewed_by", "original_subject",
                               "original_body"), "")  # fmt: skip
        reset.update(edited=False, reviewed_at=None, regenerating_since=None, checks=[], screened=False, **JUDGE_CLEAR)
        changes = {**reset, **fields}
        detail = {"reason": changes["failure_reason"]} if changes.get("failure_reason") else None
        self._transition((EmailStatus.REGENERATING,), event=EventKind.REGENERATED, detail=detail, **changes)

    def mark_sent(self, *, by: str) -> None:
        """A person found that an email whose send was cut off did arrive (its Message-ID in the server's log)."""
        now = timezone.now()
        self._transition(
            (EmailStatus.SEND_UNKNOWN,),
            event=EventKind.MARKED_SENT,
            by=by,
            status=EmailStatus.SENT,
            sent_at=self.send_claimed_at or now,
            send_resolved_by=by,
            send_resolved_at=now,
        )

    def send_again(self, *, by: str) -> None:
        """Approve an email whose send failed or was cut off for one more send, asked to be sent now (the caller
        dispatches it; the beat's sweep would, were the task lost)."""
        now = timezone.now()
        self._transition(
            (EmailStatus.SEND_UNKNOWN, EmailStatus.SEND_FAILED),
            event=EventKind.SENT_AGAIN,
            by=by,
            status=EmailStatus.APPROVED,
            send_resolved_by=by,
            send_resolved_at=now,
            send_after=now,
        )

    @property
    def unsubscribe_url(self) -> str:
        from campaigns.unsubscribe import unsubscribe_url

        return unsubscribe_url(self.tenant_id, self.contact_id)


class EventKind(models.TextChoices):
    APPROVED = "approved"
    REJECTED = "rejected"
    EDITED = "edited", "Edited and approved"
    SUBJECT_PICKED = "subject_picked", "Subject variant picked"
    REGENERATE_REQUESTED = "regenerate_requested", "Regeneration asked for"
    REGENERATED = "regenerated"
    SENDING = "sending"
    SENT = "sent"
    SEND_FAILED = "send_failed", "Send failed"
    SEND_UNKNOWN = "send_unknown", "Send unknown"
    SEND_DEFERRED = "send_deferred", "Send deferred"
    SUPPRESSED = "suppressed"
    MARKED_SENT = "marked_sent", "Marked sent"
    SENT_AGAIN = "sent_again", "Sent again"
    TEST_SENT = "test_sent", "Test sent"
    SEND_WAITING = "send_waiting", "Waiting to send"  # outside its window, or over the frequency cap
    SKIPPED = "skipped"
    DELIVERED = "delivered"  # the provider's reports, after the send
    SOFT_BOUNCED = "soft_bounced", "Soft bounce"
    BOUNCED = "bounced", "Hard bounce"
    COMPLAINED = "complained", "Complaint"
    OPENED = "opened"  # the recipient opened it (the provider's tracking pixel); never suppresses anything
    CLICKED = "clicked"  # the recipient followed a tracked link


class EmailEvent(TenantOwned):
    """The audit log: every decision on an email (who approved, edited, rejected and why, asked for a rewrite)
    and every step of its sending, in order. Written by the product in the same transaction as the change."""

    email = models.ForeignKey(GeneratedEmail, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=EventKind.choices)
    status = models.CharField(max_length=20, blank=True, help_text="The email's status after the event.")
    actor = models.CharField(max_length=150, blank=True, help_text="The person; blank for the product's own steps.")
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["tenant", "kind", "at"])]

    def __str__(self):
        return f"{self.get_kind_display()} by {self.actor or 'the product'} on email {self.email_id}"

    @classmethod
    def record(cls, email: GeneratedEmail, kind: str, *, by: str = "", status: str = "", detail=None) -> "EmailEvent":
        from webhooks.events import email_events

        event = cls.dangerously_unscoped.create(
            tenant_id=email.tenant_id, email_id=email.pk, kind=kind, actor=by, status=status, detail=detail or {}
        )
        email_events(email.tenant_id, kind, [email.pk], by=by, detail=detail)  # delivered once this commits
        return event

    @classmethod
    def record_many(
        cls, tenant_ids_by_email: dict[int, int], kind: str, *, by: str = "", status: str = "", detail=None
    ) -> None:
        from webhooks.events import email_events

        cls.dangerously_unscoped.bulk_create(
            cls(tenant_id=tenant_id, email_id=pk, kind=kind, actor=by, status=status, detail=detail or {})
            for pk, tenant_id in tenant_ids_by_email.items()
        )
        by_tenant: dict[int, list[int]] = {}
        for pk, tenant_id in tenant_ids_by_email.items():
            by_tenant.setdefault(tenant_id, []).append(pk)
        for tenant_id, pks in by_tenant.items():
            email_events(tenant_id, kind, pks, by=by, detail=detail)


class ReportKind(models.TextChoices):
    DELIVERED = "delivered"
    SOFT_BOUNCE = "soft_bounce", "Soft bounce"
    HARD_BOUNCE = "hard_bounce", "Hard bounce"
    COMPLAINT = "complaint"
    OPENED = "opened"
    CLICKED = "clicked"


class DeliveryReport(TenantOwned):
    """What a provider said about a message after it took it: delivered, bounced (soft or hard), complained of,
    opened or clicked, through SES's notifications (SNS) or the plain report endpoint. One row per provider event (a
    notification delivered twice is stored once); a hard bounce or complaint suppresses the address, soft bounces
    are counted, opens and clicks are only counted (campaigns.subject_test compares them per subject variant)."""

    email = models.ForeignKey(
        GeneratedEmail, null=True, blank=True, on_delete=models.SET_NULL, related_name="delivery_reports"
    )
    address = models.CharField(max_length=254, help_text="Lower-cased.")
    kind = models.CharField(max_length=20, choices=ReportKind.choices)
    provider = models.CharField(max_length=40, help_text="ses, or the name the reporting system gave.")
    event_id = models.CharField(max_length=200, blank=True, help_text="The provider's id of this event.")
    message_id = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True, help_text="What the provider said (diagnostic, type).")
    at = models.DateTimeField(default=timezone.now, db_index=True, help_text="When the provider says it happened.")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider", "event_id"], condition=~models.Q(event_id=""),
                name="delivery_report_once_per_event",
            )
        ]  # fmt: skip
        indexes = [models.Index(fields=["tenant", "address", "kind"])]

    def __str__(self):
        return f"{self.get_kind_display()} for {self.address}"
