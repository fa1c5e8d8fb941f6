"""schemathesis hooks for tests/contract/run.

A pagination cursor is opaque: only the API issues valid ones, and it refuses any other with 400
invalid_cursor, by design. No schema can describe "a cursor this API issued", so every generated
request that carries a cursor gets one the API issues instead: the start of a served region's
page sequence, the region the query is about (a cursor of another region does not fit, also by
design). Every other part of the request stays as generated.
"""

import base64
import json
import os

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
