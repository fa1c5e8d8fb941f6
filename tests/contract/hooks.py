"""schemathesis hooks and checks for tests/contract/run.

A pagination cursor is opaque: only the API issues valid ones, and it refuses any other with 400
invalid_cursor, by design. No schema can describe "a cursor this API issued", so every generated
request that carries a cursor gets one the API issues instead: the start of a served region's
page sequence, the region the query is about (a cursor of another region does not fit, also by
design). Every other part of the request stays as generated.
"""

import base64
import json
import os

import jsonschema
import schemathesis

SERVED = set(os.environ.get("KONTOR_SERVED_REGIONS", "de uk").split())


def _region(value):
    """The region inside an id such as `usr_de_…`, if it is a served one."""
    if isinstance(value, str):
        parts = value.split("_")
        if len(parts) == 3 and parts[1] in SERVED:
            return parts[1]
    return None


def _issued_cursor(region):
    raw = json.dumps({"r": region}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@schemathesis.hook
def before_call(context, case, kwargs):
    query = case.query
    if not query or "cursor" not in query:
        return
    named = [query.get("event_id"), query.get("user_id"), (case.path_parameters or {}).get("id")]
    regions = [_region(value) for value in named if value is not None]
    if any(region is None for region in regions):
        # The query names an unserved region: no cursor fits it; page from the start.
        del query["cursor"]
        return
    query["cursor"] = _issued_cursor(regions[0] if regions else sorted(SERVED)[0])


NDJSON = "application/x-ndjson"


@schemathesis.check
def ndjson_lines_conform(ctx, response, case):
    """Every line of an NDJSON answer (the user export) against the schema its 200 documents.

    schemathesis has no NDJSON deserializer, so its own schema check skips these answers; this one
    reads them line by line: each line one JSON object valid against the documented line schema,
    the first of type `export`, the last a `summary` counting the lines before it.
    """
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith(NDJSON) or response.status_code != 200:
        return None
    raw = case.operation.schema.raw_schema
    line_schema = raw["paths"][case.operation.path][case.operation.method.lower()]["responses"]["200"]["content"][
        NDJSON
    ]["schema"]
    validator = jsonschema.Draft202012Validator(
        {**line_schema, "components": raw.get("components", {})},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    text = response.content.decode("utf-8")
    if not text.endswith("\n"):
        raise AssertionError("the NDJSON body does not end with a newline")
    lines = [json.loads(line) for line in text.splitlines()]
    for number, line in enumerate(lines, 1):
        errors = sorted(validator.iter_errors(line), key=lambda e: list(e.path))
        if errors:
            raise AssertionError(f"line {number} ({line.get('type')}) violates the schema: {errors[0].message}")
    if not lines or lines[0]["type"] != "export":
        raise AssertionError("the first line is not the export header")
    if lines[-1]["type"] != "summary" or lines[-1]["data"]["lines"] != len(lines) - 1:
        raise AssertionError(f"the last line is not a summary of the {len(lines) - 1} lines before it")
    return None
