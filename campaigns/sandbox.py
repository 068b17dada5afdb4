"""The Jinja2 sandbox that runs tenant templates, with limits on time, size and nesting.

Jinja's sandbox stops a template reaching Python internals, but not asking for a billion characters, a billion
loop turns or a call that never returns. Here every operation that could make something big checks the size it
would make *before* making it, every loop turn, call and operation counts against a step budget and a clock, and
nesting is bounded both in the source and at run time. A template that hits a limit fails with a TemplateProblem
naming it. Pure Python, no Django: `check_in_child` runs this module as a resource-limited child process, so a
hole in these limits on save costs a child, never the web worker.
"""

import functools
import json
import os
import re
import string
import subprocess
import sys
import time
from contextvars import ContextVar
from itertools import islice
from pathlib import Path

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, nodes, pass_context
from jinja2.compiler import CodeGenerator
from jinja2.ext import Extension
from jinja2.filters import FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Namespace, generate_lorem_ipsum

MAX_TEMPLATE_CHARS = 20_000
MAX_OUTPUT_CHARS = 40_000
MAX_SIZE = MAX_OUTPUT_CHARS  # characters of any one string, items of any one list, while rendering
MAX_MADE = 1_000_000  # characters and items made or looked through in one render, all values together
MAX_STEPS = 20_000  # loop turns, calls and operations in one render; the default prompt takes about 100
MAX_SECONDS = 1.0  # per render; a prompt takes well under a millisecond
MAX_CALL_DEPTH = 30  # a macro, block or recursive loop calling itself
MAX_NESTING = 10  # brackets and blocks in the source
MAX_INT_DIGITS = 4300  # as Python's own limit for turning an int into text
CHECK_MEMORY_BYTES = 512 * 2**20  # the save-time check's child process
CHECK_SECONDS = 5
_ROOT = Path(__file__).resolve().parent.parent


class TemplateProblem(ValueError):
    pass


class LimitExceeded(SecurityError):
    """A template asked for more than a limit allows."""


class _Budget:
    __slots__ = ("deadline", "steps", "made", "depth")

    def __init__(self) -> None:
        self.deadline = time.monotonic() + MAX_SECONDS
        self.steps = self.made = self.depth = 0


# The render in progress on this thread; None while compiling (constant folding checks sizes, counts nothing).
_BUDGET: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


def _step() -> None:
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.steps += 1
    if budget.steps > MAX_STEPS:
        raise LimitExceeded(
            f"the template takes more than {MAX_STEPS} steps (loop turns, calls, operations); the limit is {MAX_STEPS}"
        )
    if time.monotonic() > budget.deadline:
        raise LimitExceeded(f"the template took longer than {MAX_SECONDS} s to render; the limit is {MAX_SECONDS} s")


def size_of(value, limit: int = MAX_SIZE) -> int:
    """Characters and items in a value, through nested lists, dicts and namespaces, counting a part held twice
    twice (as printing or comparing it would); stops counting once past `limit`."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, int):
            total += _digits(item)
        elif isinstance(item, Namespace):
            stack.append(object.__getattribute__(item, "_Namespace__attrs"))
        elif isinstance(item, (list, tuple, set, frozenset, dict)):
            total += len(item) + 1
            if total <= limit:
                stack.extend(item.items() if isinstance(item, dict) else item)
        else:
            total += 1
    return total


def _digits(number: int) -> int:
    return int(abs(number).bit_length() * 0.30103) + 1


def _made(size: int, what: str) -> None:
    """Refuse a value of more than MAX_SIZE before it is made, and count it against the render's total."""
    if size > MAX_SIZE:
        raise LimitExceeded(f"{what} would make {size} characters or items; the limit is {MAX_SIZE}")
    budget = _BUDGET.get()
    if budget is not None:
        budget.made += size
        if budget.made > MAX_MADE:
            raise LimitExceeded(
                f"the template makes or looks through more than {MAX_MADE} characters in all; the limit is {MAX_MADE}"
            )


def _within(size: int, what: str) -> None:
    """Refuse a value already there that is too big to print or compare (a namespace can grow after it is used);
    looking through it counts against the render's total, as making it does."""
    if size > MAX_SIZE:
        raise LimitExceeded(f"{what} holds more than {MAX_SIZE} characters or items; the limit is {MAX_SIZE}")
    _made(size, what)


def _made_value(value, what: str):
    _made(size_of(value), what)
    return value


def _number(bits: int, what: str) -> None:
    digits = int(bits * 0.30103) + 1
    if digits > MAX_INT_DIGITS:
        raise LimitExceeded(f"{what} would have about {digits} digits; the limit is {MAX_INT_DIGITS} digits")


# Size estimates, each an upper bound of what the operation makes, computed before it runs.
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def printf_size(text: str, args) -> int:
    specs = _PRINTF.findall(text)
    widths = [int(n) for spec in specs for n in spec if n.isdigit()]
    if any("*" in spec for spec in specs):
        widths += [abs(a) for a in (args if isinstance(args, tuple) else (args,)) if isinstance(a, int)]
    return len(text) + len(specs) * (max(widths, default=0) + size_of(args))


def format_size(text: str, args, kwargs) -> int:
    """str.format: the literal text plus, per field, the widest width or precision and every argument."""
    fields, widest = 0, 0
    for _, field, spec, _ in string.Formatter().parse(text):
        if field is not None:
            fields += 1
            widest = max([widest, *(int(n) for n in re.findall(r"\d+", spec or ""))])
            if "{" in (spec or ""):  # a width taken from the arguments
                widest = max([widest, *(abs(a) for a in (*args, *kwargs.values()) if isinstance(a, int))])
    return len(text) + fields * (widest + size_of(args) + size_of(kwargs))


def replace_size(text: str, old, new, count=None) -> int:
    text, old, new = str(text), str(old), str(new)
    found = len(text) + 1 if old == "" else text.count(old)
    if count is not None and count >= 0:
        found = min(found, count)
    return len(text) + found * len(new)


def _materialized(iterable) -> list:
    """An iterable as a list, refused beyond MAX_SIZE items, so a join can be sized before it runs."""
    items = list(islice(iter(iterable), MAX_SIZE + 1))
    if len(items) > MAX_SIZE:
        raise LimitExceeded(
            f"joining more than {MAX_SIZE} items would make more than {MAX_SIZE} characters; the limit is {MAX_SIZE}"
        )
    return items


def join_size(separator, items: list) -> int:
    return sum(size_of(item) for item in items) + max(len(items) - 1, 0) * len(str(separator))


def _wrapped_lines(text: str, width: int) -> int:
    """At most one line per `width` characters, plus one per word a line break pushes on."""
    return len(text) // max(width, 1) + text.count(" ") + text.count("\n") + 1


def _width(width) -> int:
    return len(width) if isinstance(width, str) else int(width)


# Filters that can make far more than they are given, and what they would make (the filter's own arguments).
FILTER_SIZES = {
    "center": lambda s, width=80: max(len(str(s)), int(width)),
    "indent": lambda s, width=4, first=False, blank=False: len(str(s)) + (str(s).count("\n") + 1) * _width(width),
    "wordwrap": lambda s, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True: (
        len(str(s)) + _wrapped_lines(str(s), int(width)) * len(wrapstring or "\n")
    ),
    "format": lambda value, *args, **kwargs: printf_size(str(value), kwargs or args),
    "replace": replace_size,
    "join": lambda value, d="", attribute=None: join_size(d, value),
    "truncate": lambda s, length=255, killwords=False, end="...", leeway=None: len(str(s)) + len(str(end)),
    "batch": lambda value, linecount, fill_with=None: int(linecount),
    "slice": lambda value, slices, fill_with=None: int(slices),
    "tojson": lambda value, indent=None: size_of(value) * (6 + 2 * int(indent or 0)),
    "urlize": lambda value, trim_url_limit=None, nofollow=False, target=None, rel=None, extra_schemes=None: (
        3 * len(str(value)) + (len(str(value)) // 4 + 1) * (64 + len(target or "") + len(rel or ""))
    ),
}
# str (and bytes) methods likewise, given the string and the call's arguments.
METHOD_SIZES = {
    "center": lambda s, width, fill=" ": max(len(s), int(width)),
    "ljust": lambda s, width, fill=" ": max(len(s), int(width)),
    "rjust": lambda s, width, fill=" ": max(len(s), int(width)),
    "zfill": lambda s, width: max(len(s), int(width)),
    "expandtabs": lambda s, tabsize=8: len(s) + s.count("\t" if isinstance(s, str) else b"\t") * int(tabsize),
    "replace": lambda s, old, new, count=-1: len(s) + (len(s) + 1 if not old else s.count(old)) * len(new),
    "join": lambda s, items: join_size(s, items),
    "translate": lambda s, table: len(s) * (1 + max((size_of(v) for v in getattr(table, "values", list)()), default=1)),
    "format": lambda s, *args, **kwargs: format_size(s, args, kwargs),
    "format_map": lambda s, mapping: format_size(s, (), dict(mapping)),
}


def _sized_filter(name: str, func):
    """A filter that checks what it is given, what it would make, and what it made."""
    passes_arg = hasattr(func, "jinja_pass_arg")
    estimate = FILTER_SIZES.get(name)

    @functools.wraps(func)
    def sized(*args, **kwargs):
        _step()
        given = list(args[1:] if passes_arg else args)
        _within(size_of([given, kwargs]), f"the {name} filter's input")
        if name == "join" and given:
            given[0] = _materialized(given[0])
            args = (*args[:1], *given) if passes_arg else tuple(given)
        if estimate is not None:
            _made(estimate(*given, **kwargs), f"the {name} filter")
        return _made_value(func(*args, **kwargs), f"the {name} filter")

    return sized


def _stepped_test(test):
    """A test (`is odd`), which `select` and `reject` run once per item: every run is a step."""

    @functools.wraps(test)
    def stepped(*args, **kwargs):
        _step()
        return test(*args, **kwargs)

    return stepped


@pass_context
def _counted(context, iterable):
    """A for loop's iterable: every turn is a step."""
    for item in iterable:
        _step()
        yield item


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002 (Jinja's names)
    _made(int(n) * int(max) * 12, f"lipsum({n})")
    return generate_lorem_ipsum(n, html, min, max)


_BLOCK_TAGS = {"for", "if", "macro", "call", "filter", "with", "block", "autoescape"}


class _NestingLimit(Extension):
    """Brackets and blocks nested deeper than MAX_NESTING are refused while the source is read: Jinja's parser and
    Python's compiler recurse once per level and fail with a RecursionError long before a 20,000-character
    template runs out."""

    def filter_stream(self, stream):
        brackets = blocks = 0
        tag_next = False
        for token in stream:
            if token.type in ("lparen", "lbracket", "lbrace"):
                brackets += 1
            elif token.type in ("rparen", "rbracket", "rbrace"):
                brackets -= 1
            elif tag_next and token.type == "name":
                blocks += (token.value in _BLOCK_TAGS) - (token.value[3:] in _BLOCK_TAGS and token.value[:3] == "end")
            tag_next = token.type == "block_begin"
            if brackets > MAX_NESTING or blocks > MAX_NESTING:
                raise TemplateSyntaxError(
                    f"brackets or blocks nest more than {MAX_NESTING} deep; the limit is {MAX_NESTING}",
                    token.lineno,
                    stream.name,
                    stream.filename,
                )
            yield token


class _Generator(CodeGenerator):
    """Jinja's code generator, routing the operations the sandbox hooks do not see through ones that check."""

    def visit_Concat(self, node, frame):  # `a ~ b`
        self.write("environment.join_operands((")
        for operand in node.nodes:
            self.visit(operand, frame)
            self.write(", ")
        self.write("))")

    def visit_Template(self, node, frame=None):
        for loop in node.find_all(nodes.For):  # before the generator collects the filters a template uses
            loop.iter = nodes.Filter(loop.iter, "_counted", [], [], None, None, lineno=loop.lineno)
        super().visit_Template(node, frame)

    def _literal(self, visit, node, frame):
        self.write("environment.literal(")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node, frame):
        self._literal(super().visit_List, node, frame)

    def visit_Dict(self, node, frame):
        self._literal(super().visit_Dict, node, frame)

    def visit_Tuple(self, node, frame):
        if node.ctx == "load":  # not the targets of `{% for a, b in … %}`
            self._literal(super().visit_Tuple, node, frame)
        else:
            super().visit_Tuple(node, frame)


class _Sandbox(ImmutableSandboxedEnvironment):
    """Immutable, so a template cannot grow a list in place (append, extend) where no size check sees it."""

    code_generator_class = _Generator
    intercepted_binops = frozenset(["+", "*", "**", "%"])

    def __init__(self, **options) -> None:
        super().__init__(extensions=[_NestingLimit], finalize=self.written, **options)
        self.filters = {name: _sized_filter(name, func) for name, func in FILTERS.items()}
        self.filters["_counted"] = _counted
        self.tests = {name: _stepped_test(test) for name, test in self.tests.items()}
        self.globals["lipsum"] = _lipsum

    def concat(self, pieces) -> str:
        """Every buffer a template writes (its output, a macro's, a `{% set %}` block's), refused past the limit
        before it is joined."""
        kept, size = [], 0
        for piece in pieces:
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                raise LimitExceeded(
                    f"the template writes more than {MAX_OUTPUT_CHARS} characters; the limit is {MAX_OUTPUT_CHARS}"
                )
            kept.append(piece)
        _made(size, "the template's text")
        return "".join(kept)

    @staticmethod
    def written(value):
        """`{{ value }}`: printing a list that holds a list many times over could take for ever."""
        _step()
        _within(size_of(value), "a value written")
        return value

    def join_operands(self, operands) -> str:
        _step()
        texts, size = [], 0
        for operand in operands:
            _made(size + size_of(operand), "joining with ~")
            texts.append(str(operand))
            size += len(texts[-1])
        return "".join(texts)

    def literal(self, value):
        _step()
        _made(size_of(value), "a list or dict")
        return value

    def getattr(self, obj, attribute):
        _step()
        return super().getattr(obj, attribute)

    def getitem(self, obj, argument):
        _step()
        return super().getitem(obj, argument)

    def call_binop(self, context, operator, left, right):
        _step()
        if operator == "**":
            _power(left, right)
        elif operator == "*":
            _product(left, right)
        elif operator == "+" and isinstance(left, (str, list, tuple)):
            _made(size_of(left) + size_of(right), "joining with +")
        elif operator == "%" and isinstance(left, str):
            _made(printf_size(left, right), "% formatting")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's own signature)
        _step()
        args = _sized_call(__obj, args, kwargs)
        budget = _BUDGET.get()
        if budget is not None:
            budget.depth += 1
            if budget.depth > MAX_CALL_DEPTH:
                raise LimitExceeded(
                    f"calls nest more than {MAX_CALL_DEPTH} deep (does a macro call itself?); "
                    f"the limit is {MAX_CALL_DEPTH}"
                )
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            if budget is not None:
                budget.depth -= 1
        return _made_value(result, f"{getattr(__obj, '__name__', 'the call')}()")


def _power(left, right) -> None:
    if isinstance(right, int) and abs(right) > 100:
        raise LimitExceeded("exponent too large: the limit is 100")
    if isinstance(left, int) and isinstance(right, int) and right > 0:
        _number(max(left.bit_length(), 1) * right, "the power")


def _product(left, right) -> None:
    if isinstance(left, int) and isinstance(right, (str, list, tuple)):
        left, right = right, left
    if isinstance(left, (str, list, tuple)) and isinstance(right, int):
        size = size_of(left) * max(right, 0)
        if size > MAX_SIZE:
            raise LimitExceeded(f"repetition too large: it would make {size} characters; the limit is {MAX_SIZE}")
        _made(size, "repetition")
    elif isinstance(left, int) and isinstance(right, int):
        _number(left.bit_length() + right.bit_length(), "the product")


def _sized_call(func, args: tuple, kwargs: dict) -> tuple:
    """Check a call of a str or bytes method that can make more than it is given (the sandbox's str.format
    arrives wrapped); returns the arguments, a join's iterable made a list so it can be sized."""
    method = getattr(func, "__wrapped__", func)
    owner = getattr(method, "__self__", None)
    estimate = METHOD_SIZES.get(getattr(method, "__name__", ""))
    if isinstance(owner, int) and not isinstance(owner, bool) and method.__name__ == "to_bytes":
        _made(int(args[0] if args else kwargs.get("length", 1)), "int.to_bytes()")
    if not isinstance(owner, (str, bytes)) or estimate is None:
        return args
    if method.__name__ == "join" and args:
        args = (_materialized(args[0]),)
    _within(size_of([args, kwargs]), f"the arguments of {method.__name__}()")
    _made(estimate(owner, *args, **kwargs), f"{method.__name__}()")
    return args


_ENV = _Sandbox(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True
)


@functools.lru_cache(maxsize=256)
def compile_template(source: str):
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(f"template is {len(source)} characters; the limit is {MAX_TEMPLATE_CHARS}")
    try:
        return _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error on line {exc.lineno}: {exc.message}") from exc
    except (RecursionError, SyntaxError) as exc:  # nesting the token filter does not count, e.g. `not not … x`
        raise TemplateProblem(f"template is nested too deeply to compile; the limit is {MAX_NESTING} levels") from exc
    except MemoryError as exc:
        raise TemplateProblem("template needs more memory to compile than the check's limit allows") from exc
    except TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from exc


def render(source: str, context: dict) -> str:
    """The template rendered with `context`, within every limit above; any failure is a TemplateProblem."""
    template = compile_template(source)
    token = _BUDGET.set(_Budget())
    try:
        return template.render(context)
    except LimitExceeded as exc:
        raise TemplateProblem(f"template exceeds a limit: {exc}") from exc
    except SecurityError as exc:
        raise TemplateProblem(f"template refused by the sandbox: {exc}") from exc
    except TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from exc
    except RecursionError as exc:
        raise TemplateProblem(
            f"template nests values or calls too deeply; the limit is {MAX_CALL_DEPTH} calls"
        ) from exc
    except MemoryError as exc:
        raise TemplateProblem(
            f"template needs more memory than a render may use; the limit is {MAX_MADE} characters"
        ) from exc
    except (TypeError, ValueError, ArithmeticError, LookupError, RuntimeError) as exc:
        # What tenant code can raise; not everything (a worker's soft time limit must still stop the task).
        raise TemplateProblem(f"template failed while rendering: {exc}") from exc
    finally:
        _BUDGET.reset(token)


def check_in_child(
    source: str, context: dict, *, memory_bytes: int = CHECK_MEMORY_BYTES, seconds: float = CHECK_SECONDS
) -> None:
    """Render once in a child process held to `memory_bytes` and `seconds`, for the check on save: should a
    template find a way past the limits above, the child dies and the web worker answers with the reason."""
    request = json.dumps({"source": source, "context": context, "memory_bytes": memory_bytes, "seconds": seconds})
    try:
        done = subprocess.run(
            [sys.executable, "-m", "campaigns.sandbox"],
            input=request,
            capture_output=True,
            text=True,
            timeout=seconds,
            cwd=_ROOT,
            env={"PATH": os.defpath},
        )
    except subprocess.TimeoutExpired as exc:
        raise TemplateProblem(f"checking the template took longer than {seconds} s; the limit is {seconds} s") from exc
    try:
        answer = json.loads(done.stdout) if done.returncode == 0 else None
    except ValueError:  # cut short by the memory limit
        answer = None
    if answer is None:
        raise TemplateProblem(
            f"checking the template needed more than {memory_bytes // 2**20} MB of memory or "
            f"{seconds} s of CPU; the limits are {memory_bytes // 2**20} MB and {seconds} s"
        )
    if answer["problem"]:
        raise TemplateProblem(answer["problem"])


def _child_main() -> None:
    import resource

    request = json.load(sys.stdin)
    memory, cpu = request["memory_bytes"], max(int(request["seconds"]), 1)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    try:
        render(request["source"], request["context"])
    except TemplateProblem as exc:
        json.dump({"problem": str(exc)}, sys.stdout)
    else:
        json.dump({"problem": None}, sys.stdout)


if __name__ == "__main__":
    _child_main()
