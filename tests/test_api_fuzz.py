"""Schemathesis against the schema the app serves: every operation, a bounded number of generated requests each
(valid and invalid ones), sent to the app in-process (WSGI) with a real API key of a tenant that has data. No answer
may be a 5xx, and every answer must be one the schema documents (status, content type and body)."""

import os
import random

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from campaigns.models import (
    Campaign,
    CampaignRun,
    DeliveryReport,
    EmailEvent,
    EmailStatus,
    GeneratedEmail,
    PromptTemplate,
)
from datasets.models import Interaction, Suppression
from datasets.suppression import address_suppress
from tenants.models import ApiKey, Role
from webhooks.models import WebhookEndpoint

# Generated requests per operation and mode (valid, invalid), on top of the schema's own examples; more to explore.
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "6"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CONFIG = schemathesis.Config.from_dict(
    {
        # The same requests on every run, so CI does not flake; API_FUZZ_SEED=n explores others.
        "seed": int(os.environ.get("API_FUZZ_SEED", "12")),
        "generation": {"max-examples": EXAMPLES, "mode": "all"},
    }
)
DERANDOMIZE = "API_FUZZ_SEED" not in os.environ
app = get_wsgi_application()


@pytest.fixture
def in_process_requests():
    """Requests run in the test's transaction, as Django's test client runs them: the app must not close the
    connection at the end of each one (it would, seeing the transaction open)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db, in_process_requests):
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", app, config=CONFIG)


@pytest.fixture
def tenant_data(tenant, catalog, other_tenant, other_catalog):
    """Something of every kind for the key's tenant (and the other tenant's, which it must never reach)."""
    template = PromptTemplate.objects.for_tenant(tenant).create(
        tenant=tenant, name="t", body="Hi {{ contact.first_name }}"
    )
    campaign = Campaign.objects.for_tenant(tenant).create(tenant=tenant, name="c", template=template)
    run = CampaignRun.objects.for_tenant(tenant).create(tenant=tenant, campaign=campaign, status="completed", total=2)
    emails = [
        GeneratedEmail.objects.for_tenant(tenant).create(
            tenant=tenant, run=run, contact=contact, subject="s", body="b", status=status, model_key="nova-lite"
        )
        for contact, status in zip(catalog[0], (EmailStatus.DRAFT, EmailStatus.APPROVED, EmailStatus.SEND_UNKNOWN),
                                   strict=False)
    ]  # fmt: skip
    address_suppress(tenant_id=tenant.pk, address="gone@example.com", reason="complaint", source="api", by="t")
    report = DeliveryReport.objects.for_tenant(tenant).create(
        tenant=tenant, email=emails[0], address="gone@example.com", kind="complaint", provider="fuzz"
    )
    hook = WebhookEndpoint.objects.for_tenant(tenant).create(tenant=tenant, url="https://crm.example/hooks")
    other_key, _ = ApiKey.objects.issue(tenant=tenant, name="another", role=Role.MARKETER)
    fuzz_key, plain = ApiKey.objects.issue(tenant=tenant, name="fuzz", role=Role.OWNER)
    # Far from any id a generator makes up, so that no generated revoke takes the fuzzer's own key away.
    ApiKey.objects.filter(pk=fuzz_key.pk).update(id=7_316_523_901)
    event = EmailEvent.record(emails[0], "approved", by="fuzz", status=EmailStatus.APPROVED)
    ids = {
        "contacts": [c.external_id for c in catalog[0]],
        "items": [i.external_id for i in catalog[1]],
        "interactions": list(Interaction.objects.for_tenant(tenant).values_list("pk", flat=True)[:3]),
        "templates": [template.pk],
        "campaigns": [campaign.pk],
        "runs": [run.pk],
        "emails": [e.pk for e in emails],
        "suppressions": list(Suppression.objects.for_tenant(tenant).values_list("pk", flat=True)),
        "delivery-reports": [report.pk],
        "webhooks": [hook.pk],
        "audit-log": [event.pk],
        "api-keys": [other_key.pk],
    }
    return {"key": plain, "ids": ids}


def fuzz(operation, strategy, key: str, ids: dict, sent: list) -> None:
    """Send `EXAMPLES` cases of one strategy (no shrinking: the first failure is reported as it came)."""
    chooser = random.Random(operation.label)

    @given(case=strategy)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])  # fmt: skip
    def run(case):
        resource = case.path.split("/")[3]
        for name in ("id", "external_id"):  # half the requests name one of the tenant's own objects
            if case.path_parameters and name in case.path_parameters and chooser.random() < 0.5:
                case.path_parameters[name] = chooser.choice(ids[resource])
        sent.append(operation.label)
        case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)

    run()


def test_the_api_under_generated_requests(api_schema, tenant_data):
    failures, sent, operations = {}, [], 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        strategies = [operation.as_strategy(generation_mode=mode) for mode in GenerationMode]
        strategies += operation.get_strategies_from_examples()  # the schema's own examples, as a client copies them
        for strategy in strategies:
            try:
                fuzz(operation, strategy, tenant_data["key"], tenant_data["ids"], sent)
            except (Exception, BaseExceptionGroup) as exc:  # every operation is tried; all failures are reported
                failures.setdefault(operation.label, str(exc)[:3000])
    print(f"schemathesis: {operations} operations, {len(sent)} requests, {len(failures)} failing operations")
    assert operations >= 50 and len(sent) >= operations * EXAMPLES
    assert not failures, "\n\n".join(f"{label}:\n{why}" for label, why in failures.items())
