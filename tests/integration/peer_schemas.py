"""Manifests of the integration docs, checked against the peers' own CRD schemas.

The schema is each CRD's ``openAPIV3Schema``, made strict the way the API server prunes:
an object with ``properties`` and without ``x-kubernetes-preserve-unknown-fields`` admits no
other keys, so a misspelt field fails here instead of being dropped silently by the cluster.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev dependencies
import yaml

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT.parent / "shared" / "fixtures"
DOCS = ROOT / "docs" / "integrations"
ValidationError = jsonschema.ValidationError
_BLOCK = re.compile(r"```(yaml|json)\n(.*?)```", re.DOTALL)


def strict(schema: Any) -> Any:
    """A copy of ``schema`` in which objects with properties admit no other keys."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in copy
        and "additionalProperties" not in copy
        and not copy.get("x-kubernetes-preserve-unknown-fields")
    ):
        copy["additionalProperties"] = False
    return copy


def crd_schema(path: Path, version: str) -> dict[str, Any]:
    """The strict openAPIV3Schema of one version of the CRD in ``path``."""
    crd = next(
        d
        for d in yaml.safe_load_all(path.read_text())
        if d and d["kind"] == "CustomResourceDefinition"
    )
    served = {v["name"]: v for v in crd["spec"]["versions"]}
    schema: dict[str, Any] = strict(served[version]["schema"]["openAPIV3Schema"])
    return schema


def blocks(doc: str, language: str = "yaml") -> list[Any]:
    """The parsed code blocks of one language in ``docs/integrations/<doc>``."""
    text = (DOCS / doc).read_text()
    return [yaml.safe_load(body) for lang, body in _BLOCK.findall(text) if lang == language]


def manifest(doc: str, kind: str) -> dict[str, Any]:
    """The one manifest of ``kind`` in ``doc``."""
    found = [b for b in blocks(doc) if isinstance(b, dict) and b.get("kind") == kind]
    assert len(found) == 1, f"{doc} should show one {kind}, shows {len(found)}"
    return found[0]


def validate(document: dict[str, Any], schema: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``document`` does not fit ``schema``."""
    jsonschema.validate(document, schema, cls=jsonschema.Draft7Validator)
