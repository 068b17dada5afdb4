"""One routed model call for tests: the request built for the route's model, its usage record saved."""

from routing.catalog import get_model
from routing.gateway import llm_invoke, llm_request, route_for


def llm_call(*, tenant, task: str, system: str, prompt: str, max_tokens: int = 700):
    """One routed call, its usage record saved; failures are recorded, then raised."""
    route = route_for(tenant=tenant, task=task)
    request = llm_request(tenant, get_model(route.model_key).model_id, system, prompt, max_tokens=max_tokens)
    response, record, error = llm_invoke(tenant=tenant, task=task, route=route, request=request)
    record.save()
    if error is not None:
        raise error
    return response, record
