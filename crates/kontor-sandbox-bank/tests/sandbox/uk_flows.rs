//! UK Open Banking journeys: client credentials, consent, PSU authorization with PKCE, tokens.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{Harness, Reply, TPP_REDIRECT};
use crate::flows::complete_redirect_sca;

pub const BANK: &str = "thames-bank";

pub fn aisp(h: &Harness) -> String {
    h.sandbox.bank(BANK).unwrap().aisp_url.unwrap()
}

pub fn pisp(h: &Harness) -> String {
    h.sandbox.bank(BANK).unwrap().pisp_url.unwrap()
}

fn basic(h: &Harness) -> String {
    let creds = h.sandbox.uk_credentials(BANK).unwrap();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", creds.client_id, creds.client_secret))
    )
}

pub async fn token_request(h: &Harness, fields: &[(&str, &str)]) -> Reply {
    let url = h.sandbox.uk_credentials(BANK).unwrap().token_url;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    h.send(
        &Method::POST,
        &url,
        &[("authorization", basic(h))],
        Some(body.into_bytes()),
        Some("application/x-www-form-urlencoded".into()),
    )
    .await
}

pub async fn client_token(h: &Harness, scope: &str) -> String {
    let reply = token_request(h, &[("grant_type", "client_credentials"), ("scope", scope)]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["access_token"].as_str().unwrap().to_string()
}

/// A PKCE pair: (verifier, S256 challenge).
pub fn pkce(seed: &str) -> (String, String) {
    let verifier = format!("verifier-{seed}-0123456789abcdefghijklmnopqrstuvwxyz");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// An unsigned request object naming the consent, as OB TPPs send in `request`.
pub fn request_object(consent_id: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
    let claims = URL_SAFE_NO_PAD.encode(json!({ "claims": { "id_token": { "openbanking_intent_id": { "value": consent_id, "essential": true } } } }).to_string());
    format!("{header}.{claims}.")
}

/// Sends the PSU through `/oauth2/authorize` and the SCA pages; returns the callback URL.
pub async fn authorize(
    h: &Harness,
    consent_id: &str,
    scope: &str,
    user: &str,
    challenge: &str,
) -> url::Url {
    let creds = h.sandbox.uk_credentials(BANK).unwrap();
    let mut url = url::Url::parse(&creds.authorize_url).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &creds.client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", TPP_REDIRECT)
        .append_pair("scope", scope)
        .append_pair("state", "st-42")
        .append_pair("nonce", "n-1")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("request", &request_object(consent_id));
    let reply = h.get_page(url.as_str()).await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    let done = complete_redirect_sca(h, &reply.location(), user).await;
    assert_eq!(done.status, 303, "{}", done.text());
    url::Url::parse(&done.location()).unwrap()
}

pub fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Exchanges a code for tokens; returns the token response.
pub async fn exchange(h: &Harness, code: &str, verifier: &str) -> Reply {
    token_request(
        h,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", TPP_REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

pub fn auth(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("authorization", format!("Bearer {token}")),
        ("x-fapi-interaction-id", crate::common::uuid()),
    ]
}

pub fn present(token: &str) -> Vec<(&'static str, String)> {
    let mut headers = auth(token);
    headers.push(("x-fapi-customer-ip-address", "192.0.2.20".into()));
    headers
}

/// Creates an account-access consent with these permissions and has `user` authorise it.
/// Returns (consent id, PSU access token, refresh token).
pub async fn ais_access(
    h: &Harness,
    user: &str,
    permissions: &[&str],
    extra: Value,
) -> (String, String, String) {
    let tpp = client_token(h, "accounts").await;
    let mut data = json!({ "Permissions": permissions });
    if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    let created = h
        .call(
            crate::spec::Api::UkAccounts,
            &aisp(h),
            Method::POST,
            "/account-access-consents",
            &auth(&tpp),
            Some(&json!({ "Data": data, "Risk": {} })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let consent = created.json()["Data"]["ConsentId"]
        .as_str()
        .unwrap()
        .to_string();
    let (verifier, challenge) = pkce(&consent);
    let callback = authorize(h, &consent, "openid accounts", user, &challenge).await;
    assert_eq!(query(&callback, "state").as_deref(), Some("st-42"));
    let code = query(&callback, "code").expect("code in the callback");
    let tokens = exchange(h, &code, &verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    let t = tokens.json();
    (
        consent,
        t["access_token"].as_str().unwrap().to_string(),
        t["refresh_token"].as_str().unwrap().to_string(),
    )
}

pub fn ob_code(reply: &Reply) -> String {
    reply.json()["Errors"][0]["ErrorCode"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
