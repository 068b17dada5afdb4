"""The complaint guard, on driven data: complaints on 3 of a tenant's last 1,000 sent emails pause its sending (2
do not; older sends are outside the window); the owners are emailed once and the dashboard and the tenant's page
say so; reviewing goes on; an owner resumes sending from the admin, recorded with who and when."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from campaigns.guard import complaint_figures, sending_paused
from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail, ReportKind
from campaigns.reports import report_record
from datasets.models import Contact
from tenants.models import Role, Tenant
from tenants.services import membership_add


def sent_emails(tenant, n: int) -> list[GeneratedEmail]:
    """n emails sent one a minute, the newest last."""
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="weekly")
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status="completed", total=n)
    contacts = Contact.dangerously_unscoped.bulk_create(
        Contact(tenant=tenant, external_id=f"g{i}", email=f"reader{i}@example.com") for i in range(n)
    )
    start = timezone.now() - timedelta(minutes=n + 10)
    return GeneratedEmail.dangerously_unscoped.bulk_create(
        GeneratedEmail(
            tenant=tenant,
            run=run,
            contact=c,
            subject="Picks",
            body="Hi",
            status=EmailStatus.SENT,
            sent_at=start + timedelta(minutes=i),
            message_id=f"<m{i}@acme.example>",
            provider_message_id=f"ses-{tenant.slug}-{i}",
        )  # fmt: skip
        for i, c in enumerate(contacts)
    )


def complain(email: GeneratedEmail):
    return report_record(provider="ses", kind=ReportKind.COMPLAINT, address=email.contact.email,
                         event_id=f"sns-{email.pk}", provider_message_id=email.provider_message_id)  # fmt: skip


@pytest.fixture
def owners(tenant):
    ana = membership_add(tenant=tenant, username="ana", role=Role.OWNER, password="pw-ana-123").user
    ana.email = "ana@acme.example"
    ana.save()
    olga = membership_add(tenant=tenant, username="olga", role=Role.OWNER).user
    olga.email = "olga@acme.example"
    olga.save()
    rita = membership_add(tenant=tenant, username="rita", role=Role.MARKETER, password="pw-rita-123").user
    rita.email = "rita@acme.example"
    rita.save()
    return ana, olga, rita


@pytest.fixture
def window(settings):
    settings.COMPLAINT_GUARD_WINDOW, settings.COMPLAINT_GUARD_RATE = 1000, 0.003
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def test_three_complaints_in_a_thousand_sends_pause_sending_and_tell_the_owners(tenant, owners, window):
    emails = sent_emails(tenant, 1000)
    assert sending_paused(tenant) == ""
    assert not complain(emails[10]).paused and not complain(emails[500]).paused
    assert sending_paused(tenant) == "" and mail.outbox == []
    recorded = complain(emails[999])
    assert complaint_figures(tenant_id=tenant.pk) == (3, 1000)
    reason = sending_paused(tenant)
    assert recorded.paused == reason
    assert "3 complaints among the last 1000 emails sent (0.30%)" in reason and "0.30% of 1000 (3)" in reason
    tenant.refresh_from_db()
    assert tenant.sending_paused_at is not None and tenant.sending_paused_reason == reason
    assert sorted(m.to[0] for m in mail.outbox) == ["ana@acme.example", "olga@acme.example"]  # owners only
    assert all(reason in m.body and "Sending is paused" in m.subject for m in mail.outbox)
    complain(emails[998])  # paused already: the owners were told once
    assert len(mail.outbox) == 2


def test_two_complaints_do_not_pause(tenant, owners, window):
    emails = sent_emails(tenant, 1000)
    complain(emails[1])
    complain(emails[2])
    complain(emails[2])  # the same event again counts once
    assert sending_paused(tenant) == "" and mail.outbox == []


def test_only_the_last_window_of_sends_counts(tenant, owners, window):
    emails = sent_emails(tenant, 1003)
    for email in emails[:3]:  # the three oldest: outside the last 1,000
        complain(email)
    assert complaint_figures(tenant_id=tenant.pk) == (0, 1000)
    assert sending_paused(tenant) == ""


def test_another_tenants_complaints_never_pause_this_one(tenant, other_tenant, owners, window):
    sent_emails(tenant, 50)
    theirs = sent_emails(other_tenant, 1000)
    for email in theirs[:3]:
        complain(email)
    assert sending_paused(other_tenant) and sending_paused(tenant) == ""
    assert mail.outbox == []  # the other tenant has no owners with an address here


def test_the_pause_shows_review_goes_on_and_an_owner_resumes(tenant, owners, window, client):
    emails = sent_emails(tenant, 1000)
    draft = emails[0]
    GeneratedEmail.dangerously_unscoped.filter(pk=draft.pk).update(status=EmailStatus.DRAFT, sent_at=None)
    for email in emails[-3:]:
        complain(email)
    reason = sending_paused(tenant)
    assert reason
    ana, _, rita = owners
    client.force_login(rita)
    dashboard = client.get(reverse("admin:index")).content.decode()
    assert "Sending is paused for <strong>Acme Video</strong>" in dashboard and "3 complaints" in dashboard
    draft.refresh_from_db()
    draft.approve(by="rita")  # nothing else stops
    assert draft.status == EmailStatus.APPROVED
    changelist = reverse("admin:tenants_tenant_changelist")
    assert 'value="resume_sending"' not in client.get(changelist).content.decode()  # only owners
    client.post(changelist, {"action": "resume_sending", "_selected_action": [tenant.pk], "index": 0})
    assert sending_paused(tenant) == reason
    client.force_login(ana)
    page = client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk])).content.decode()
    assert "Sending is paused for Acme Video" in page
    assert 'value="resume_sending"' in client.get(changelist).content.decode()
    reply = client.post(changelist, {"action": "resume_sending", "_selected_action": [tenant.pk], "index": 0},
                        follow=True)  # fmt: skip
    assert "sending resumed" in reply.content.decode()
    assert sending_paused(tenant) == "" and Tenant.objects.get(pk=tenant.pk).sending_paused_reason == ""
    entry = LogEntry.objects.get(object_id=str(tenant.pk), change_message__startswith="Resumed sending")
    assert entry.user == ana and reason in entry.change_message and entry.action_time is not None
    assert "Sending is paused" not in client.get(reverse("admin:index")).content.decode()


def test_an_owner_cannot_resume_another_tenant(tenant, other_tenant, owners, window, client):
    for email in sent_emails(other_tenant, 1000)[:3]:
        complain(email)
    client.force_login(owners[0])
    changelist = reverse("admin:tenants_tenant_changelist")
    client.post(changelist, {"action": "resume_sending", "_selected_action": [other_tenant.pk], "index": 0})
    assert sending_paused(other_tenant)
    assert "Globex" not in client.get(reverse("admin:index")).content.decode()
