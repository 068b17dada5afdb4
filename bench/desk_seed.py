"""A tenant with a finished run of N drafts to review, written straight into the database (the desk is what is
measured, not the model): contacts with demographics and a watch history, a catalog, and drafts with picks, checks
and usage like the pipeline's. Used by bench/review.py; `python bench/desk_seed.py N` seeds the default database."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

GENRES = ["Comedy", "Drama", "Thriller", "Animation", "Sci-Fi", "Romance", "Documentary", "Horror"]
FIRST = ["Ana", "Ben", "Chloé", "Dev", "Eitan", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lena", "Miguel", "Nia"]
LAST = ["Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Tran", "Ueda", "Varga", "Weber", "Xu", "Young", "Zhou"]
WORDS = "moody quiet bright gripping tender sharp witty slow-burning cosy bold strange lovely".split()


def seed(*, n_drafts: int, slug: str = "desk-bench", username: str = "rita", password: str = "pw-rita-123"):
    """Returns (tenant, run). Idempotent per slug: an existing tenant of that slug is removed first."""
    from campaigns.models import Campaign, CampaignRun, EmailStatus, GeneratedEmail, RunStatus
    from datasets.models import Contact, Interaction, Item
    from tenants.models import Role, Tenant
    from tenants.services import membership_add

    rng = random.Random(7)
    Tenant.objects.filter(slug=slug).delete()
    tenant = Tenant.objects.create(slug=slug, name="Northwind Films", brand_name="Northwind Films",
                                   sender_name="Maya", sender_email="maya@northwind.example",
                                   postal_address="1 Harbour Street, Bristol")  # fmt: skip
    membership_add(tenant=tenant, username=username, role=Role.MARKETER, password=password)
    items = Item.dangerously_unscoped.bulk_create(
        Item(
            tenant=tenant,
            external_id=f"m{i}",
            title=f"The {rng.choice(WORDS).title()} {noun(rng)} {i}",
            year=1980 + i % 44,
            genres=rng.sample(GENRES, 2),
            promotion=i % 17 == 0,
            plot=f"A {rng.choice(WORDS)} story of a {noun(rng).lower()} who must choose between home and the road; "
            f"{rng.choice(WORDS)} performances and a {rng.choice(WORDS)} ending.",
        )  # fmt: skip
        for i in range(max(60, n_drafts // 4))
    )
    contacts = Contact.dangerously_unscoped.bulk_create(
        Contact(
            tenant=tenant,
            external_id=f"c{i}",
            email=f"contact{i}@example.com",
            first_name=rng.choice(FIRST),
            last_name=rng.choice(LAST),
            age=rng.randint(18, 75),
            gender=rng.choice(["female", "male", ""]),
            locale=rng.choice(["en_GB", "en_US", "fr_FR", "de_DE"]),
        )  # fmt: skip
        for i in range(n_drafts)
    )
    start = datetime(2026, 10, 1, tzinfo=UTC)
    Interaction.dangerously_unscoped.bulk_create(
        Interaction(
            tenant=tenant,
            contact=contact,
            item=rng.choice(items),
            event_type="watch",
            timestamp=start + timedelta(days=k, minutes=i),
        )  # fmt: skip
        for i, contact in enumerate(contacts)
        for k in range(6)
    )
    campaign = Campaign.dangerously_unscoped.create(tenant=tenant, name="Weekend picks", goal="weekend binge")
    run = CampaignRun.dangerously_unscoped.create(tenant=tenant, campaign=campaign, status=RunStatus.COMPLETED,
                                                  total=n_drafts, generated=n_drafts)  # fmt: skip
    emails = []
    for i, contact in enumerate(contacts):
        picks = rng.sample(items, 3)
        genre = picks[0].genres[0]
        titles = ", ".join(p.title for p in picks[:-1]) + f" and {picks[-1].title}"
        body = (f"Hi {contact.first_name},\n\nYour weekend is sorted. Since you love {genre.lower()}, we picked "
                f"{titles} for you.\n\n{picks[0].title} is {rng.choice(WORDS)} and {rng.choice(WORDS)}: the kind of "
                f"film you finish at midnight and keep thinking about.\n\nHappy watching,\nMaya from Northwind Films")  # fmt: skip
        refused = (
            [{"attempt": 1, "problem": "the email names a title that is not among the picks"}] if i % 9 == 0 else []
        )
        emails.append(GeneratedEmail(
            tenant=tenant, run=run, contact=contact, status=EmailStatus.DRAFT, favorite_genre=genre,
            items=[{"id": p.external_id, "title": p.title, "score": round(0.9 - 0.1 * r, 3)} for r, p in enumerate(picks)],
            subject=f"{contact.first_name}, three {genre.lower()} picks for your weekend", body=body,
            prompt=f"Write a short, warm email to {contact.first_name} recommending: {titles}.",
            model_key="local/qwen2.5-1.5b", route_reason="basic plan: the local model for marketing_email",
            attempts=1 + len(refused), input_tokens=420 + i % 50, output_tokens=160 + i % 40,
            cost_usd=Decimal("0"), latency_ms=900 + i % 300, checks=refused,
        ))  # fmt: skip
    GeneratedEmail.dangerously_unscoped.bulk_create(emails, batch_size=500)
    return tenant, run


def noun(rng) -> str:
    return rng.choice(["Lighthouse", "Garden", "Stranger", "Orchard", "Signal", "Harbour", "Winter", "Parade"])


if __name__ == "__main__":
    import sys

    from benchdb import setup_django

    setup_django(migrate=False)
    tenant, run = seed(n_drafts=int(sys.argv[1]) if len(sys.argv) > 1 else 30)
    print(f"run {run.pk} of {tenant.name}: /admin/campaigns/generatedemail/desk/?run={run.pk} (rita / pw-rita-123)")
