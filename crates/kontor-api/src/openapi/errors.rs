//! The error answers every operation documents. They follow from what an operation takes — a
//! bearer token, an id in the path, parameters, a JSON body — so they are added here from the
//! operation's shape, once, instead of being repeated (and forgotten) in every annotation. An
//! operation that documents one of these itself keeps its own, more specific, description.

use utoipa::Modify;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response};

/// Adds the standard error responses, each with the error envelope as its body.
pub(super) struct StandardErrors;

/// Whether the operation asks for the bearer token (rather than none, or client credentials).
fn takes_bearer(operation: &Operation) -> bool {
    operation.security.as_ref().is_some_and(|requirements| {
        requirements.iter().any(|requirement| {
            serde_json::to_value(requirement)
                .ok()
                .and_then(|value| value.as_object().map(|o| o.contains_key("bearer")))
                .unwrap_or(false)
        })
    })
}

fn has_parameter(operation: &Operation, location: Option<&ParameterIn>) -> bool {
    operation.parameters.as_ref().is_some_and(|parameters| {
        parameters.iter().any(|p| match p {
            RefOr::T(p) => location.is_none_or(|wanted| &p.parameter_in == wanted),
            RefOr::Ref(_) => location.is_none(),
        })
    })
}

/// The status codes, with their descriptions, that `operation` at `path` can answer with.
pub(crate) fn standard_errors(
    path: &str,
    operation: &Operation,
) -> Vec<(&'static str, &'static str)> {
    let body = operation.request_body.is_some();
    let mut errors = Vec::new();
    if body || has_parameter(operation, None) {
        errors.push((
            "400",
            "The request is malformed: a parameter, the id in the path or the body (see the code)",
        ));
    }
    if takes_bearer(operation) {
        errors.push((
            "401",
            "The bearer token is missing, invalid or expired, or bound to a client certificate \
             the request did not present",
        ));
        errors.push(("403", "The token lacks the scope this operation needs"));
    }
    if has_parameter(operation, Some(&ParameterIn::Path)) {
        errors.push(("404", "No such resource for this tenant"));
    }
    if body {
        errors.push(("413", "The body is larger than the configured limit"));
        errors.push((
            "415",
            "The body is not in the content type this operation takes",
        ));
    }
    if path.starts_with("/v1/") {
        errors.push((
            "429",
            "Too many requests; retry after the Retry-After period",
        ));
    }
    errors
}

fn envelope(description: &str) -> Response {
    let mut response = Response::new(description);
    response.content.insert(
        "application/json".to_owned(),
        RefOr::T(Content::new(Some(RefOr::Ref(Ref::from_schema_name(
            "ErrorEnvelope",
        ))))),
    );
    response
}

impl Modify for StandardErrors {
    fn modify(&self, openapi: &mut OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, description) in standard_errors(path, operation) {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::T(envelope(description)));
                }
            }
        }
    }
}
