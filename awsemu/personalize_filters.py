"""Personalize filter expressions, the subset the product and its tests use:

    EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch", "click")   (or IN ("*") for any event)
    INCLUDE ItemID WHERE Items.GENRES IN ($GENRES)                       (values bound through filterValues)
    EXCLUDE ItemID WHERE Items.PROMOTION NOT IN ("true") | INCLUDE ...   (expressions chained with "|")

An item passes a filter when it passes every expression in it. Anything else is an InvalidInputException.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from awsemu.wire import AwsError

INVALID = "InvalidInputException"
_EXPRESSION = re.compile(
    r"^\s*(INCLUDE|EXCLUDE)\s+ItemID\s+WHERE\s+(Items|Interactions)\.(\w+)\s+(NOT\s+IN|IN|=)\s+(.+?)\s*$",
    re.IGNORECASE,
)
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_PARAMETER = re.compile(r"^\$(\w+)$")


@dataclass(frozen=True)
class Expression:
    include: bool
    dataset: str  # "Items" or "Interactions"
    column: str
    negated: bool
    values: tuple[str, ...]  # literal values
    parameter: str  # or a $PARAMETER bound per request

    def bound(self, filter_values: dict) -> tuple[str, ...] | None:
        """The values to compare with; None when a parameter has no value, so the expression is skipped."""
        if not self.parameter:
            return self.values
        raw = filter_values.get(self.parameter)
        return tuple(_QUOTED.findall(raw)) if raw else None


def parse(text: str) -> tuple[Expression, ...]:
    if not isinstance(text, str) or not text.strip():
        raise AwsError(INVALID, 400, "filterExpression must not be empty.")
    return tuple(_expression(part) for part in text.split("|"))


def _expression(text: str) -> Expression:
    match = _EXPRESSION.match(text)
    if not match:
        raise AwsError(INVALID, 400, f"Invalid filter expression: {text.strip()!r}.")
    action, dataset, column, operator, operand = match.groups()
    dataset = dataset.capitalize()
    if dataset == "Interactions" and column.upper() != "EVENT_TYPE":
        raise AwsError(INVALID, 400, "Filters on Interactions compare EVENT_TYPE only (in this emulator).")
    parameter = _PARAMETER.match(operand.strip("() "))
    if parameter:
        values, name = (), parameter.group(1)
    else:
        values, name = tuple(_QUOTED.findall(operand)), ""
        if not values:
            raise AwsError(INVALID, 400, f"Invalid filter expression: values must be quoted: {text.strip()!r}.")
    return Expression(action.upper() == "INCLUDE", dataset, column.upper(), "NOT" in operator.upper(), values, name)


def predicate(expressions, *, item_row: Callable[[str], dict], user_events: dict[str, set[str]],
              filter_values: dict) -> Callable[[str], bool]:  # fmt: skip
    """Whether an item may be recommended to the user whose events (item -> event types) are given."""

    def matches(expression: Expression, values: tuple[str, ...], item: str) -> bool:
        if expression.dataset == "Interactions":
            events = user_events.get(item, set())
            hit = bool(events) and ("*" in values or bool(events & set(values)))
        else:
            raw = item_row(item).get(expression.column)
            hit = bool(set(_values(raw)) & set(values))
        return hit != expression.negated

    bound = [(e, e.bound(filter_values)) for e in expressions]
    active = [(e, values) for e, values in bound if values is not None]

    def keep(item: str) -> bool:
        return all(matches(e, values, item) == e.include for e, values in active)

    return keep


def _values(raw) -> list[str]:
    """A column's values: categorical columns hold several, separated by "|"."""
    if raw is None:
        return []
    if isinstance(raw, list | tuple):
        return [str(v) for v in raw]
    return [part for part in str(raw).split("|")]
