"""Creates real resources in a running `kontor demo` so that schemathesis reaches real ids.

Reads the demo's JSON line (argument 1), and prints `export NAME=value` lines for the run script:
the demo client's credentials, and one id of each kind — a user in each region, a pending
connection, an active connection linked at the sandbox bank with its accounts and an event, a
payment (with an Idempotency-Key), and a webhook endpoint. Standard library only.
"""

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def call(method, url, body=None, headers=None, form=None):
    """One request, redirects not followed: (status, headers, parsed JSON or raw bytes)."""
    data, sent = None, dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        sent["content-type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        sent["content-type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=sent, method=method)
    try:
        with _opener.open(request, timeout=30) as response:
            status, got, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        status, got, raw = err.code, err.headers, err.read()
    try:
        return status, got, json.loads(raw)
    except ValueError:
        return status, got, raw


def expect(what, status, wanted, body):
    if status != wanted:
        sys.exit(f"prepare: {what} answered {status}, not {wanted}: {body!r}")


def main():
    with open(sys.argv[1], encoding="utf-8") as demo_file:
        demo = json.loads(demo_file.readline())
    hub, sandbox = demo["api_base_url"], demo["sandbox_url"]
    status, _, body = call(
        "POST",
        f"{hub}/v1/oauth/token",
        form={
            "grant_type": "client_credentials",
            "client_id": demo["client_id"],
            "client_secret": demo["client_secret"],
        },
    )
    expect("token", status, 200, body)
    auth = {"authorization": f"Bearer {body['access_token']}"}

    def api(method, path, body=None, want=200, headers=None):
        status, _, answer = call(method, f"{hub}{path}", body, {**auth, **(headers or {})})
        expect(f"{method} {path}", status, want, answer)
        return answer

    users = {
        region: api("POST", "/v1/users", {"external_id": f"contract-{region}", "region": region}, 201)["id"]
        for region in ("uk", "de")
    }
    user = users["de"]
    # Resources the DELETE operations may take away, so the others keep theirs.
    doomed_user = api("POST", "/v1/users", {"external_id": "contract-doomed", "region": "uk"}, 201)["id"]
    pending = api(
        "POST",
        "/v1/connections",
        {"user_id": users["uk"], "redirect_uri": "https://tenant.example/linked"},
        201,
    )["id"]

    # Link a connection at the sandbox bank: start the redirect SCA on the hosted page, approve
    # the authorisation through the sandbox's admin API (as the user would at the bank), and
    # follow the bank's redirect back to the hub's callback.
    created = api(
        "POST",
        "/v1/connections",
        {"user_id": user, "bank_id": "sonnenbank", "redirect_uri": "https://tenant.example/linked"},
        201,
    )
    connect = urllib.parse.urlparse(created["connect_url"])
    token = urllib.parse.parse_qs(connect.query)["token"][0]
    status, headers, answer = call(
        "POST", f"{hub}{connect.path}/start", form={"token": token, "bank_id": "sonnenbank"}
    )
    expect("connect start", status, 303, answer)
    authorisation = urllib.parse.urlparse(headers["Location"]).path.rstrip("/").split("/")[-1]
    status, _, approved = call(
        "POST",
        f"{sandbox}/admin/banks/sonnenbank/authorisations/{authorisation}/approve",
        {"psu": "alice"},
    )
    expect("sandbox approval", status, 200, approved)
    status, headers, answer = call("GET", approved["redirect"])
    expect("connect callback", status, 303, answer)
    connection = created["id"]
    for _ in range(300):
        if api("GET", f"/v1/connections/{connection}").get("last_synced_at"):
            break
        time.sleep(0.2)
    else:
        sys.exit("prepare: the linked connection never synced")
    accounts = api("GET", f"/v1/accounts?user_id={user}")["data"]
    if not accounts:
        sys.exit("prepare: the linked connection has no accounts")
    events = api("GET", f"/v1/events?user_id={user}")["data"]
    if not events:
        sys.exit("prepare: linking recorded no event")

    payment = api(
        "POST",
        "/v1/payments",
        {
            "user_id": user,
            "bank_id": "sonnenbank",
            "debtor_account": {"iban": accounts[0]["iban"]},
            "creditor": {"name": "Hausverwaltung Müller", "iban": "DE89370400440532013000"},
            "amount": {"value": "12.34", "currency": "EUR"},
            "remittance": "Rent November",
            "redirect_uri": "https://tenant.example/paid",
        },
        201,
        {"idempotency-key": "contract-payment-1"},
    )["id"]
    # An https URL the hub accepts without a DNS answer (the run's machine may have none). The
    # run's hub sends no deliveries: its worker is off; test events find nobody on the port.
    endpoint = api(
        "POST",
        "/v1/webhook-endpoints",
        {"url": "https://127.0.0.1:9009/contract", "events": ["*"]},
        201,
    )["id"]

    doomed_endpoint = api(
        "POST",
        "/v1/webhook-endpoints",
        {"url": "https://127.0.0.1:9009/doomed", "events": ["*"]},
        201,
    )["id"]

    values = {
        "KONTOR_CLIENT_ID": demo["client_id"],
        "KONTOR_CLIENT_SECRET": demo["client_secret"],
        "KONTOR_USER_ID": user,
        "KONTOR_USER_ID_UK": users["uk"],
        "KONTOR_CONNECTION_ID": connection,
        "KONTOR_PENDING_CONNECTION_ID": pending,
        "KONTOR_ACCOUNT_ID": accounts[0]["id"],
        "KONTOR_EVENT_ID": events[0]["id"],
        "KONTOR_PAYMENT_ID": payment,
        "KONTOR_WEBHOOK_ENDPOINT_ID": endpoint,
        "KONTOR_DOOMED_USER_ID": doomed_user,
        "KONTOR_DOOMED_WEBHOOK_ENDPOINT_ID": doomed_endpoint,
    }
    for name, value in values.items():
        print(f"export {name}='{value}'")


if __name__ == "__main__":
    main()
