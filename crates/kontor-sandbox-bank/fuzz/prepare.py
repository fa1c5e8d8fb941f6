"""Creates real resources in a running sandbox for fuzzing it against the specs.

Prints shell `export` lines for fuzz/hooks.py: a valid Berlin Group consent (for `Consent-ID`),
another consent and a payment (for path parameters, which the fuzzer may delete or cancel), an
account id, a UK client token, a UK PSU token with its consent, and a domestic-payment consent.
SCA is approved through the sandbox's admin API. Standard library only.

    eval "$(python3 fuzz/prepare.py http://127.0.0.1:8090)"
"""

import base64
import hashlib
import json
import sys
import urllib.parse
import urllib.request
import uuid

ROOT = (sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8090").rstrip("/")
BG = f"{ROOT}/sonnenbank"
UK = f"{ROOT}/thames-bank"
REDIRECT = "https://tpp.example/cb"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def call(method, url, body=None, headers=None, form=False):
    headers = dict(headers or {})
    data = None
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        response = OPENER.open(request)
    except urllib.error.HTTPError as error:
        response = error
    text = response.read().decode()
    if response.status >= 400:
        sys.exit(f"{method} {url} -> {response.status}: {text}")
    return response, (json.loads(text) if text[:1] in ("{", "[") else text)


def approve(bank, sca_url, psu):
    authorisation = sca_url.rstrip("/").rsplit("/", 1)[-1]
    _, result = call(
        "POST", f"{ROOT}/admin/banks/{bank}/authorisations/{authorisation}/approve", {"psu": psu}
    )
    return result


def bg_headers():
    return {
        "x-request-id": str(uuid.uuid4()),
        "psu-ip-address": "192.0.2.10",
        "tpp-redirect-uri": REDIRECT,
    }


def bg_consent():
    body = {
        "access": {"allPsd2": "allAccounts"},
        "recurringIndicator": True,
        "validUntil": "9999-12-31",
        "frequencyPerDay": 4,
        "combinedServiceIndicator": False,
    }
    _, created = call("POST", f"{BG}/v1/consents", body, bg_headers())
    approve("sonnenbank", created["_links"]["scaRedirect"]["href"], "alice")
    return created["consentId"]


def uk_client_token():
    basic = base64.b64encode(b"kontor-sandbox-tpp:sandbox-secret").decode()
    _, token = call(
        "POST",
        f"{UK}/oauth2/token",
        {"grant_type": "client_credentials", "scope": "accounts payments"},
        {"authorization": f"Basic {basic}"},
        form=True,
    )
    return token["access_token"]


def uk_psu_token(client_token):
    permissions = [
        "ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail",
        "ReadTransactionsCredits", "ReadTransactionsDebits",
    ]
    _, created = call(
        "POST",
        f"{UK}/open-banking/v3.1/aisp/account-access-consents",
        {"Data": {"Permissions": permissions}, "Risk": {}},
        {"authorization": f"Bearer {client_token}"},
    )
    consent = created["Data"]["ConsentId"]
    verifier = "fuzz-" + uuid.uuid4().hex + uuid.uuid4().hex
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = urllib.parse.urlencode({
        "client_id": "kontor-sandbox-tpp", "response_type": "code", "redirect_uri": REDIRECT,
        "scope": "openid accounts", "state": "fuzz", "nonce": "fuzz",
        "code_challenge": challenge.decode().rstrip("="), "code_challenge_method": "S256",
        "openbanking_intent_id": consent,
    })
    response, _ = call("GET", f"{UK}/oauth2/authorize?{query}")
    result = approve("thames-bank", response.headers["location"], "bob")
    code = urllib.parse.parse_qs(urllib.parse.urlparse(result["redirect"]).query)["code"][0]
    basic = base64.b64encode(b"kontor-sandbox-tpp:sandbox-secret").decode()
    _, tokens = call(
        "POST",
        f"{UK}/oauth2/token",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
         "code_verifier": verifier},
        {"authorization": f"Basic {basic}"},
        form=True,
    )
    return consent, tokens["access_token"]


def main():
    exports = {
        "KONTOR_FUZZ_BG_CONSENT_ID": bg_consent(),
        "KONTOR_FUZZ_BG_PATH_CONSENT_ID": bg_consent(),
    }
    _, accounts = call("GET", f"{ROOT}/admin/banks/sonnenbank/accounts")
    alice = [a for a in accounts if a.get("username") == "alice"]
    exports["KONTOR_FUZZ_BG_ACCOUNT_ID"] = alice[0]["resource_id"]
    payment = {
        "debtorAccount": {"iban": alice[0]["iban"]},
        "instructedAmount": {"currency": "EUR", "amount": "1.00"},
        "creditorAccount": {"iban": "DE89370400440532013000"},
        "creditorName": "Rheinwerk Versand GmbH",
    }
    _, created = call("POST", f"{BG}/v1/payments/sepa-credit-transfers", payment, bg_headers())
    exports["KONTOR_FUZZ_BG_PAYMENT_ID"] = created["paymentId"]

    client = uk_client_token()
    exports["KONTOR_FUZZ_UK_CLIENT_TOKEN"] = client
    consent, psu = uk_psu_token(client)
    exports["KONTOR_FUZZ_UK_PSU_TOKEN"] = psu
    exports["KONTOR_FUZZ_UK_PSU_CONSENT_ID"] = consent
    _, other = call(
        "POST",
        f"{UK}/open-banking/v3.1/aisp/account-access-consents",
        {"Data": {"Permissions": ["ReadAccountsBasic"]}, "Risk": {}},
        {"authorization": f"Bearer {client}"},
    )
    exports["KONTOR_FUZZ_UK_PATH_CONSENT_ID"] = other["Data"]["ConsentId"]
    _, uk_accounts = call("GET", f"{ROOT}/admin/banks/thames-bank/accounts")
    bob = [a for a in uk_accounts if a.get("username") == "bob"]
    exports["KONTOR_FUZZ_UK_ACCOUNT_ID"] = bob[0]["resource_id"]
    _, payment_consent = call(
        "POST",
        f"{UK}/open-banking/v3.1/pisp/domestic-payment-consents",
        {
            "Data": {"Initiation": {
                "InstructionIdentification": "FUZZ-1", "EndToEndIdentification": "FUZZ-E2E-1",
                "InstructedAmount": {"Amount": "1.00", "Currency": "GBP"},
                "CreditorAccount": {"SchemeName": "UK.OBIE.SortCodeAccountNumber",
                                    "Identification": "60161331926819", "Name": "Acme Ltd"},
            }},
            "Risk": {},
        },
        {"authorization": f"Bearer {client}", "x-idempotency-key": uuid.uuid4().hex,
         "x-jws-signature": "eyJhbGciOiJQUzI1NiJ9..c2ln"},
    )
    exports["KONTOR_FUZZ_UK_PAYMENT_CONSENT_ID"] = payment_consent["Data"]["ConsentId"]
    for name, value in exports.items():
        print(f"export {name}={value}")


main()
