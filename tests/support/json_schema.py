"""A JSON Schema checker for the subset the OpenAPI documents use (type, enum, pattern,
minimum/maximum, properties, required, additionalProperties false, items, oneOf, $ref into
the document), so tests can hold live answers against what the documents promise."""

from __future__ import annotations

import re
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def problems(value: Any, schema: dict[str, Any], doc: dict[str, Any], at: str = "$") -> list[str]:
    """Every way ``value`` breaks ``schema`` (empty: it conforms)."""
    if "$ref" in schema:
        target: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return problems(value, target, doc, at)
    if "oneOf" in schema:
        matching = [s for s in schema["oneOf"] if not problems(value, s, doc, at)]
        return [] if len(matching) == 1 else [f"{at}: matches {len(matching)} of oneOf"]
    found: list[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        names = [kinds] if isinstance(kinds, str) else kinds
        ok = any(
            isinstance(value, _TYPES[n])
            and not (n in ("integer", "number") and value is True)
            and not (n in ("integer", "number") and value is False)
            for n in names
        )
        if not ok:
            return [f"{at}: {type(value).__name__} is not {names}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{at}: {value!r} not in {schema['enum']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        found.append(f"{at}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            found.append(f"{at}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            found.append(f"{at}: {value} > {schema['maximum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                found.append(f"{at}: {name} is missing")
        for name, item in value.items():
            if name in props:
                found += problems(item, props[name], doc, f"{at}.{name}")
            elif schema.get("additionalProperties") is False:
                found.append(f"{at}: {name} is not documented")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += problems(item, schema["items"], doc, f"{at}[{i}]")
    return found


def answer_schema(doc: dict[str, Any], method: str, path: str, code: int) -> dict[str, Any]:
    """The JSON schema ``doc`` gives the ``code`` answer of ``method path``."""
    content = doc["paths"][path][method.lower()]["responses"][str(code)]["content"]
    schema: dict[str, Any] = content["application/json"]["schema"]
    return schema


def every_success_schema_says_something(doc: dict[str, Any]) -> list[str]:
    """The JSON success answers whose schema is a bare ``{"type": "object"}``."""
    bare = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for code, answer in op["responses"].items():
                if code == "default" or int(code) >= 400:
                    continue
                for media, content in answer.get("content", {}).items():
                    schema = content["schema"]
                    if media == "application/json" and set(schema) <= {"type", "description"}:
                        bare.append(f"{method.upper()} {path} {code}")
    return bare
