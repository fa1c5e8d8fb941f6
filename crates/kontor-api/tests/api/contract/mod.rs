//! The API's contract, driven by its own OpenAPI document: every operation the document lists is
//! probed for what the document promises (its error answers, its body shapes, its scopes), so an
//! operation added later is covered without a new test, or fails loudly until it is.

mod bodies;
mod document;
mod limits;
mod scopes;

use kontor_domain::tenant::Scope;
use serde_json::{Value, json};

use crate::support::{World, world};

/// One operation of the document.
pub struct Operation {
    pub method: reqwest::Method,
    pub path: String,
    pub spec: Value,
}

impl Operation {
    pub fn id(&self) -> &str {
        self.spec["operationId"].as_str().unwrap_or_default()
    }

    /// The scope the operation's bearer token needs, if it takes one.
    pub fn scope(&self) -> Option<String> {
        self.spec["security"]
            .as_array()?
            .iter()
            .find_map(|r| r["bearer"][0].as_str().map(str::to_owned))
    }

    pub fn has_body(&self) -> bool {
        self.spec.get("requestBody").is_some()
    }

    pub fn json_body(&self) -> bool {
        self.spec["requestBody"]["content"]
            .get("application/json")
            .is_some()
    }

    pub fn documents(&self, status: u16) -> bool {
        self.spec["responses"].get(status.to_string()).is_some()
    }

    pub fn label(&self) -> String {
        format!("{} {} ({})", self.method, self.path, self.id())
    }
}

/// The document `/openapi.json` serves.
pub async fn document(world: &World) -> Value {
    let response = world
        .app
        .http
        .get(world.app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

pub fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, spec) in item.as_object().unwrap() {
            out.push(Operation {
                method: method.to_uppercase().parse().unwrap(),
                path: path.clone(),
                spec: spec.clone(),
            });
        }
    }
    out
}

/// Follows a `$ref` (and a nullable `oneOf`) to the schema it names.
pub fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return resolve(doc, &doc["components"]["schemas"][name]);
    }
    if let Some(variants) = schema["oneOf"].as_array()
        && let Some(other) = variants.iter().find(|v| v["type"] != "null")
        && variants.len() == 2
    {
        return resolve(doc, other);
    }
    schema
}

/// A tenant's world with one real resource of each kind the operations name in their paths.
pub struct Fixture {
    pub world: World,
    pub user: String,
    pub connection: String,
    pub event: String,
    pub endpoint: String,
}

pub async fn fixture() -> Fixture {
    let world = world().await;
    let user = world.user("alice").await;
    let connection = world.create_connection(&user, None).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Erasing a user records an event: a real event id without a bank.
    let erased = world.user("alice").await;
    let response = world
        .app
        .delete(&format!("/v1/users/{erased}"), &world.token)
        .await;
    assert_eq!(response.status(), 204);
    let event = world.events("&type=user.erased").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = world
        .app
        .post_json(
            "/v1/webhook-endpoints",
            &world.token,
            &json!({"url": "https://1.1.1.1/hook", "events": ["*"]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let endpoint = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Fixture {
        world,
        user,
        connection,
        event,
        endpoint,
    }
}

impl Fixture {
    /// The operation's path with the fixture's real id of the right kind.
    pub fn path(&self, op: &Operation) -> String {
        let id = match op.path.split('/').nth(2) {
            Some("users") => &self.user,
            Some("connections") => &self.connection,
            Some("events") => &self.event,
            Some("webhook-endpoints") => &self.endpoint,
            // No account or payment exists here; a well-formed id of another tenant's kind.
            Some("accounts") => "acc_de_0000000000000000000000000a",
            Some("payments") => "pay_de_0000000000000000000000000a",
            _ => "",
        };
        op.path.replace("{id}", id)
    }

    /// [`Self::path`] with an id of the same kind and region that names nothing.
    pub fn unknown_path(&self, op: &Operation) -> String {
        let path = self.path(op);
        let segments: Vec<String> = path
            .split('/')
            .enumerate()
            .map(|(i, segment)| match segment.rsplit_once('_') {
                Some((kind, _)) if i == 3 => format!("{kind}_{}", "1".repeat(26)),
                _ => segment.to_owned(),
            })
            .collect();
        segments.join("/")
    }

    /// A body the operation accepts. Every operation with a body must be listed here, so that the
    /// contract tests have a valid body to start from.
    pub fn valid_body(&self, op: &Operation) -> Value {
        match (op.method.as_str(), op.path.as_str()) {
            ("POST", "/v1/users") => json!({
                "external_id": format!("contract-{}", rand::random::<u32>()),
                "region": "uk",
            }),
            ("POST", "/v1/connections") => json!({
                "user_id": self.user,
                "redirect_uri": "https://tenant.example/linked",
            }),
            ("POST", "/v1/connections/{id}/refresh") => json!({ "psu_ip_address": "198.51.100.7" }),
            ("POST", "/v1/events/{id}/redeliver") => json!({ "endpoint_id": self.endpoint }),
            ("POST", "/v1/webhook-endpoints") => {
                json!({ "url": "https://1.1.1.1/other", "events": ["payment.status_changed"] })
            }
            ("PATCH", "/v1/webhook-endpoints/{id}") => json!({ "description": "contract test" }),
            ("POST", "/v1/payments") => json!({
                "user_id": self.user,
                "bank_id": "sonnenbank",
                "debtor_account": { "iban": "DE21642494690527912747" },
                "creditor": { "name": "Hausverwaltung Müller", "iban": "DE89370400440532013000" },
                "amount": { "value": "12.34", "currency": "EUR" },
                "remittance": "Rent November",
                "redirect_uri": "https://tenant.example/paid",
            }),
            _ => panic!(
                "no valid body for {}: add one to contract::Fixture::valid_body",
                op.label()
            ),
        }
    }

    /// A request for `op` as the document describes it, with the given token and body.
    pub fn request(
        &self,
        op: &Operation,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .world
            .app
            .http
            .request(op.method.clone(), self.world.app.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if op.path == "/v1/payments" && op.method == reqwest::Method::POST {
            request = request.header(
                "idempotency-key",
                format!("contract-{}", rand::random::<u64>()),
            );
        }
        request
    }

    /// A token with every scope but `scope`.
    pub async fn token_without(&self, scope: &str) -> String {
        let others: Vec<&str> = Scope::ALL
            .iter()
            .map(|s| s.as_str())
            .filter(|s| *s != scope)
            .collect();
        let tenant = self.world.app.tenant_with_scopes("Scoped Ltd", None).await;
        let response = self
            .world
            .app
            .request_token(
                &tenant,
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", &others.join(" ")),
                ],
            )
            .await;
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}
