//! Validation of one HTTP exchange against its operation in a spec: parameters and body of
//! the request, and status, headers, media type and body of the response.

use serde_json::{Value, json};

use crate::spec::{Api, Spec, Specs};

/// One HTTP exchange as the tests saw it.
pub struct Exchange<'a> {
    pub method: &'a str,
    /// Path relative to the spec's server root (`/v1/consents`, `/accounts`).
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub request_headers: &'a reqwest::header::HeaderMap,
    pub request_body: Option<&'a [u8]>,
    pub status: u16,
    pub response_headers: &'a reqwest::header::HeaderMap,
    pub response_body: &'a [u8],
}

fn media(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Finds the content entry for a media type (`application/json; charset=utf-8` entries count
/// as `application/json`).
fn content_pointer(spec: &Spec, pointer: &str, content_type: &str) -> Option<String> {
    let content = spec.doc.pointer(pointer)?.as_object()?;
    content
        .keys()
        .find(|k| media(Some(k)) == content_type)
        .map(|k| {
            format!(
                "{pointer}/{}/schema",
                k.replace('~', "~0").replace('/', "~1")
            )
        })
}

impl Specs {
    pub fn spec(&self, api: Api) -> &Spec {
        match api {
            Api::BerlinGroup => &self.bg,
            Api::UkAccounts => &self.uk_ais,
            Api::UkPayments => &self.uk_pis,
        }
    }

    /// Checks a request against its operation: path/query/header parameters and the body.
    pub fn validate_request(&self, api: Api, x: &Exchange<'_>) -> Result<(), String> {
        let spec = self.spec(api);
        let (op, path_params) = spec.operation(x.method, x.path)?;
        let mut problems = Vec::new();
        for param in spec.parameters(&op) {
            let name = param["name"].as_str().unwrap_or("");
            let required = param["required"].as_bool().unwrap_or(false);
            let value: Option<String> = match param["in"].as_str() {
                Some("path") => path_params.get(name).cloned(),
                Some("query") => x
                    .query
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone()),
                // OpenAPI: header parameters named Accept, Content-Type or Authorization are ignored.
                Some("header")
                    if ["accept", "content-type", "authorization"]
                        .contains(&name.to_ascii_lowercase().as_str()) =>
                {
                    continue;
                }
                Some("header") => x
                    .request_headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                _ => continue,
            };
            match value {
                None if required => problems.push(format!(
                    "required {} parameter {name} is missing",
                    param["in"]
                )),
                None => {}
                Some(v) => {
                    let v = normalise_documented_datetime(&param, v);
                    if let Err(e) = spec.check_param(&param, &v) {
                        problems.push(e);
                    }
                }
            }
        }
        let body_pointer = format!("{op}/requestBody");
        if let Some(body_def) = spec.doc.pointer(&body_pointer) {
            let body_def = spec.resolve(body_def);
            let required = body_def["required"].as_bool().unwrap_or(false);
            match x.request_body.filter(|b| !b.is_empty()) {
                None if required => problems.push("the request body is required".into()),
                None => {}
                Some(bytes) => {
                    let ct = media(
                        x.request_headers
                            .get("content-type")
                            .and_then(|v| v.to_str().ok()),
                    );
                    let resolved_pointer = resolved_pointer(spec, &body_pointer);
                    match content_pointer(spec, &format!("{resolved_pointer}/content"), &ct) {
                        None => problems.push(format!("request media type {ct} is not declared")),
                        Some(schema) => match serde_json::from_slice::<Value>(bytes) {
                            Ok(json) => {
                                if let Err(e) = spec.check(&schema, &json) {
                                    problems.push(format!("request body: {e}"));
                                }
                            }
                            Err(e) => problems.push(format!("request body is not JSON: {e}")),
                        },
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Checks a response: declared status, required headers, media type and body schema.
    pub fn validate_response(&self, api: Api, x: &Exchange<'_>) -> Result<(), String> {
        let spec = self.spec(api);
        let (op, _) = spec.operation(x.method, x.path)?;
        let status_pointer = format!("{op}/responses/{}", x.status);
        if spec.doc.pointer(&status_pointer).is_none() {
            return Err(format!(
                "status {} is not declared for {} {}",
                x.status, x.method, x.path
            ));
        }
        let response_pointer = resolved_pointer(spec, &status_pointer);
        let response = spec
            .doc
            .pointer(&response_pointer)
            .cloned()
            .unwrap_or(Value::Null);
        let mut problems = Vec::new();
        if let Some(headers) = response["headers"].as_object() {
            for (name, def) in headers {
                let def = spec.resolve(def);
                let value = x
                    .response_headers
                    .get(name.as_str())
                    .and_then(|v| v.to_str().ok());
                match value {
                    None if def["required"].as_bool().unwrap_or(false) => {
                        problems.push(format!("required response header {name} is missing"));
                    }
                    None => {}
                    Some(v) => {
                        let param = json!({ "name": name, "schema": def["schema"] });
                        if let Err(e) = spec.check_param(&param, v) {
                            problems.push(format!("response header {e}"));
                        }
                    }
                }
            }
        }
        let has_content = response["content"]
            .as_object()
            .is_some_and(|c| !c.is_empty());
        if x.response_body.is_empty() {
            // The standards never make a body mandatory on its own; an empty one passes.
        } else if !has_content {
            problems.push(format!(
                "status {} declares no body, but one was sent",
                x.status
            ));
        } else {
            let ct = media(
                x.response_headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok()),
            );
            match content_pointer(spec, &format!("{response_pointer}/content"), &ct) {
                None => problems.push(format!("response media type {ct} is not declared")),
                Some(schema) => match serde_json::from_slice::<Value>(x.response_body) {
                    Ok(json) => {
                        if let Err(e) = spec.check(&schema, &json) {
                            problems.push(format!("response body: {e}"));
                        }
                    }
                    Err(e) => problems.push(format!("response body is not JSON: {e}")),
                },
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// UK `from/toBookingDateTime`: the schema says `date-time`, but the parameter's description
/// says the time is optional and a timezone is ignored. That text is normative, so such values
/// are completed (midnight, UTC) before the schema check instead of being counted as invalid.
fn normalise_documented_datetime(param: &Value, value: String) -> String {
    let description = param["description"].as_str().unwrap_or("");
    if !description.contains("Time component is optional") {
        return value;
    }
    let mut value = if value.contains('T') {
        value
    } else {
        format!("{value}T00:00:00")
    };
    let time = value
        .split_once('T')
        .map(|(_, t)| t.to_string())
        .unwrap_or_default();
    if !(time.ends_with('Z') || time.contains('+') || time.contains('-')) {
        value.push('Z');
    }
    value
}

/// A pointer with its final `$ref` followed (responses and request bodies are often refs).
fn resolved_pointer(spec: &Spec, pointer: &str) -> String {
    let mut current = pointer.to_string();
    for _ in 0..8 {
        match spec
            .doc
            .pointer(&current)
            .and_then(|v| v.get("$ref"))
            .and_then(Value::as_str)
        {
            Some(r) => current = r.trim_start_matches('#').to_string(),
            None => break,
        }
    }
    current
}
