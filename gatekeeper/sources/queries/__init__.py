"""Built-in PromQL templates per mesh or ingress, and the rendering of any query template.

The templates are data (one YAML file per provider beside this module), kept apart from the
code that runs them. Placeholders:

- ``{{selector}}``: the label matchers of the side being fetched (``version="v2"``);
- ``{{matchers}}``: the provider's labels (those whose placeholders are set) and the selector;
- ``{{interval}}``: the query step as a Prometheus duration (``30s``);
- ``{{service}}``, ``{{namespace}}``: escaped for a PromQL string literal;
- ``{{service_re}}``, ``{{namespace_re}}``: escaped for a regular expression inside one.

Substituted values are escaped, so a service named ``x"} or vector(1) #`` stays inside its
string literal; selectors are checked to be label matchers and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from gatekeeper.stats.results import MetricKind

PROVIDERS = ("generic", "istio", "linkerd", "nginx", "gateway-api")
PLACEHOLDERS = frozenset(
    {"selector", "matchers", "interval", "service", "namespace", "service_re", "namespace_re"}
)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")
_MATCHER = r'\s*[A-Za-z_][A-Za-z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\\n]|\\.)*"\s*'
_SELECTOR = re.compile(rf"^{_MATCHER}(?:,{_MATCHER})*,?\s*$")
ROLES = {
    MetricKind.RATIO: ("bad", "total"),
    MetricKind.VALUES: ("query",),
    MetricKind.HISTOGRAM: ("buckets",),
}


@dataclass(frozen=True, slots=True)
class Template:
    """A built-in metric: its kind and its queries by role (bad/total, query, buckets)."""

    name: str
    kind: MetricKind
    queries: dict[str, str]


@dataclass(frozen=True, slots=True)
class Provider:
    """A mesh's or ingress's labels and templates."""

    name: str
    requires: tuple[str, ...]
    labels: tuple[str, ...]
    templates: dict[str, Template]


@cache
def provider(name: str) -> Provider:
    """Load a provider's catalogue: one of :data:`PROVIDERS`."""
    if name not in PROVIDERS:
        raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}, got {name!r}")
    text = resources.files(__package__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    raw: dict[str, Any] = yaml.safe_load(text)
    templates = {
        key: Template(
            name=key,
            kind=MetricKind(value["kind"]),
            queries={role: value[role] for role in ROLES[MetricKind(value["kind"])]},
        )
        for key, value in raw["templates"].items()
    }
    return Provider(
        name=name,
        requires=tuple(raw.get("requires", ())),
        labels=tuple(raw.get("labels", ())),
        templates=templates,
    )


def placeholders(query: str) -> set[str]:
    """The placeholder names a query template uses."""
    return set(_PLACEHOLDER.findall(query))


def without_comments(query: str) -> str:
    """``query`` with its PromQL comments (``#`` to the end of the line) removed.

    A ``#`` inside a string literal (double, single or back quotes; backslash escapes in
    the first two) is text, not a comment.
    """
    kept: list[str] = []
    quote = ""
    index = 0
    while index < len(query):
        char = query[index]
        if quote:
            kept.append(char)
            if char == "\\" and quote != "`" and index + 1 < len(query):
                kept.append(query[index + 1])
                index += 1
            elif char == quote:
                quote = ""
        elif char == "#":
            end = query.find("\n", index)
            index = len(query) if end < 0 else end
            continue
        else:
            kept.append(char)
            if char in "\"'`":
                quote = char
        index += 1
    return "".join(kept)


def matcher_set(selector: str) -> frozenset[str]:
    """The label matchers of a selector as a set, whitespace outside strings removed.

    ``version="v1"``, ``version = "v1",`` and ``version="v1",version="v1"`` are one set:
    they select the same series.
    """
    matchers: set[str] = set()
    current: list[str] = []
    quote = ""
    escaped = False
    for char in selector:
        if quote:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\" and quote != "`":
                escaped = True
            elif char == quote:
                quote = ""
        elif char == ",":
            matchers.add("".join(current))
            current = []
        elif not char.isspace():
            current.append(char)
            if char in "\"'`":
                quote = char
    matchers.add("".join(current))
    return frozenset(m for m in matchers if m)


def escape_string(value: str) -> str:
    """Escape a value for a double-quoted PromQL string literal."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_regex(value: str) -> str:
    """Escape a value for a RE2 regular expression inside a PromQL string literal."""
    return escape_string(re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", value))


def valid_selector(selector: str) -> bool:
    """Whether ``selector`` is a comma-separated list of PromQL label matchers, and only that."""
    return bool(_SELECTOR.match(selector)) and bool(selector.strip())


@dataclass(frozen=True, slots=True)
class Context:
    """What a query template is rendered with, for one side."""

    selector: str
    interval: str
    service: str | None = None
    namespace: str | None = None


def _substitute(template: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(key)
        return values[key]

    return _PLACEHOLDER.sub(replace, template)


def render(template: str, *, context: Context, labels: tuple[str, ...] = ()) -> str:
    """Render a query template for one side.

    Raises
    ------
    ValueError
        When the selector is not a list of label matchers, or the template uses a
        placeholder whose value is not set (``service`` without a service in the spec).
    """
    if not valid_selector(context.selector):
        raise ValueError(
            f'selector must be PromQL label matchers such as version="v2", got {context.selector!r}'
        )
    values = {"selector": context.selector.strip().rstrip(","), "interval": context.interval}
    for key in ("service", "namespace"):
        raw = getattr(context, key)
        if raw is not None:
            values[key] = escape_string(raw)
            values[f"{key}_re"] = escape_regex(raw)
    kept = [label for label in labels if placeholders(label) <= values.keys()]
    values["matchers"] = ", ".join(
        [*(_substitute(label, values) for label in kept), values["selector"]]
    )
    try:
        return _substitute(template, values)
    except KeyError as missing:
        raise ValueError(f"the query uses {{{{{missing.args[0]}}}}}, which is not set") from None
