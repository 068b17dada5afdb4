"""Which role may do what: the one table the API (tenants.auth) and the admin (tenants.admin) both read.

Reviewers review (approve, reject, edit a draft, regenerate it with feedback); marketers also change the data
(contacts, items, interactions, templates, campaigns, recommender settings, consent) and run campaigns (launch,
schedule, cancel, send, and settle a send that was cut off); owners also manage members, keys and the tenant."""

from enum import StrEnum

from tenants.models import Role


class Capability(StrEnum):
    REVIEW = "review"
    CHANGE_DATA = "change data"
    RUN = "launch, schedule and send"
    MANAGE_ACCOUNT = "manage members and keys"


ROLES_WITH: dict[Capability, tuple[str, ...]] = {
    Capability.REVIEW: (Role.OWNER, Role.MARKETER, Role.REVIEWER),
    Capability.CHANGE_DATA: (Role.OWNER, Role.MARKETER),
    Capability.RUN: (Role.OWNER, Role.MARKETER),
    Capability.MANAGE_ACCOUNT: (Role.OWNER,),
}


def role_can(role: str | None, capability: Capability) -> bool:
    return role in ROLES_WITH[capability]


RANK = {Role.REVIEWER: 1, Role.MARKETER: 2, Role.OWNER: 3}


def role_within(role: str, ceiling: str) -> bool:
    """Whether `role` grants no more than `ceiling` (a key may not be created above its creator's role)."""
    return RANK.get(role, 99) <= RANK.get(ceiling, 0)
