//! Where a tenant may send its users back to. A redirect URI is an absolute https URL (http only
//! where the operator allows it, for development), with a host, without user information or a
//! fragment. Operators may register a list of them per tenant (`kontor tenants update
//! --redirect-uri`); a tenant with a list may only use URIs on it, compared exactly — query
//! included — after normalisation: scheme and host in lower case, no default port, `/` for an
//! empty path. So a stolen client secret cannot send users, with their connection's status, to
//! the thief's site.

use kontor_domain::TenantId;
use url::Url;

use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI_LEN: usize = 2000;

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::invalid("invalid_redirect_uri", message)
}

/// The form redirect URIs are compared and registered in, or why `raw` cannot be one.
pub fn normalise_redirect_uri(raw: &str, allow_http: bool) -> ServiceResult<String> {
    if raw.len() > MAX_REDIRECT_URI_LEN {
        return Err(invalid(format!(
            "redirect_uri must be at most {MAX_REDIRECT_URI_LEN} characters"
        )));
    }
    // Parsing lower-cases the scheme and the host, drops a default port and gives an empty
    // path its `/`: what is left is the normal form.
    let url = Url::parse(raw).map_err(|_| invalid("redirect_uri must be an absolute URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => return Err(invalid("redirect_uri must be an https URL")),
    }
    if url.host().is_none() {
        return Err(invalid("redirect_uri must have a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "redirect_uri must not contain user information (user:password@)",
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid("redirect_uri must not have a fragment"));
    }
    Ok(url.to_string())
}

impl Hub {
    /// Checks a redirect URI a tenant sent, against the rules and the tenant's registered list.
    pub(crate) async fn check_redirect_uri(
        &self,
        tenant: &TenantId,
        raw: &str,
    ) -> ServiceResult<()> {
        let normal = normalise_redirect_uri(raw, self.settings().allow_http_redirects)?;
        let allowed = self
            .control()
            .redirect_uris(tenant)
            .await
            .map_err(ServiceError::from_store)?;
        if allowed.is_empty() || allowed.contains(&normal) {
            Ok(())
        } else {
            Err(invalid(format!(
                "redirect_uri {normal} is not one of the redirect URIs registered for this tenant \
                 (they are compared exactly, query included, after normalisation)"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_urls_have_one_normal_form() {
        for (raw, normal) in [
            ("HTTPS://App.Example/linked", "https://app.example/linked"),
            (
                "https://app.example:443/linked",
                "https://app.example/linked",
            ),
            ("https://app.example", "https://app.example/"),
            (
                "https://app.example:8443/x?a=1",
                "https://app.example:8443/x?a=1",
            ),
            (
                "https://xn--mller-kva.example/",
                "https://xn--mller-kva.example/",
            ),
            ("https://müller.example/", "https://xn--mller-kva.example/"),
        ] {
            assert_eq!(normalise_redirect_uri(raw, false).unwrap(), normal, "{raw}");
        }
        assert_eq!(
            normalise_redirect_uri("http://localhost:80/x", true).unwrap(),
            "http://localhost/x"
        );
        // The path and query are compared as they are: they are the tenant's.
        assert_ne!(
            normalise_redirect_uri("https://a.example/Linked", false).unwrap(),
            normalise_redirect_uri("https://a.example/linked", false).unwrap()
        );
    }

    #[test]
    fn what_is_refused_says_why() {
        for (raw, why) in [
            ("/relative", "absolute"),
            ("http://app.example/", "https"),
            ("javascript:alert(1)", "https"),
            ("https://user@app.example/", "user information"),
            ("https://user:pw@app.example/", "user information"),
            ("https://:pw@app.example/", "user information"),
            ("https://app.example/#top", "fragment"),
        ] {
            match normalise_redirect_uri(raw, false) {
                Err(ServiceError::Invalid { code, message }) => {
                    assert_eq!(code, "invalid_redirect_uri");
                    assert!(message.contains(why), "{raw}: {message}");
                }
                other => panic!("{raw}: {other:?}"),
            }
        }
        let long = format!("https://app.example/{}", "a".repeat(MAX_REDIRECT_URI_LEN));
        assert!(normalise_redirect_uri(&long, false).is_err());
        // User information is refused even where http is allowed.
        assert!(normalise_redirect_uri("http://u:p@localhost/", true).is_err());
    }
}
