"""Schemathesis hooks for fuzzing the sandbox bank against the official specs.

Load with SCHEMATHESIS_HOOKS=fuzz/hooks.py. They make the generated requests look like a real
TPP's where the spec cannot say so:

- a fresh `X-Request-ID` (Berlin Group) and `x-idempotency-key` (UK) per call, where the
  generated one is well-formed: the spec's examples repeat one id, and a bank refuses an id
  reused on another request (BG) or answers the first resource (UK);
- the real ids from fuzz/prepare.py (KONTOR_FUZZ_* variables) in `Consent-ID` and in the path
  parameters, so that calls reach the bank's logic instead of its 404s.

Malformed or missing values are left as generated: those are the negative cases.
"""

import os
import re
import uuid

import schemathesis

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
IDEMPOTENCY_KEY = re.compile(r"^(?!\s)(.*)(\S)$")


def env(name):
    return os.environ.get(f"KONTOR_FUZZ_{name}")


def replace_header(headers, name, value):
    for key in list(headers):
        if key.lower() == name.lower() and value is not None:
            headers[key] = value


def header(headers, name):
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    headers = case.headers if case.headers is not None else {}
    request_id = header(headers, "X-Request-ID")
    if isinstance(request_id, str) and UUID.match(request_id):
        replace_header(headers, "X-Request-ID", str(uuid.uuid4()))
    key = header(headers, "x-idempotency-key")
    if isinstance(key, str) and len(key) <= 40 and IDEMPOTENCY_KEY.match(key):
        replace_header(headers, "x-idempotency-key", uuid.uuid4().hex)
    if header(headers, "Consent-ID") is not None:
        replace_header(headers, "Consent-ID", env("BG_CONSENT_ID"))
    case.headers = headers

    params = case.path_parameters or {}
    path = case.operation.path
    overrides = {
        "account-id": env("BG_ACCOUNT_ID"),
        "consentId": env("BG_PATH_CONSENT_ID"),
        "AccountId": env("UK_ACCOUNT_ID"),
    }
    if "paymentId" in params:
        overrides.update({
            "payment-service": "payments",
            "payment-product": "sepa-credit-transfers",
            "paymentId": env("BG_PAYMENT_ID"),
        })
    if path.startswith("/account-access-consents/"):
        overrides["ConsentId"] = env("UK_PATH_CONSENT_ID")
    elif path.startswith("/domestic-payment-consents/"):
        overrides["ConsentId"] = env("UK_PAYMENT_CONSENT_ID")
    for name, value in overrides.items():
        if name in params and value is not None:
            params[name] = value
    case.path_parameters = params
