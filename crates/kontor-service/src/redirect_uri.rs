//! Where a tenant may send its users back to. A redirect URI is an absolute https URL (http only
//! where the operator allows it, for development), with a host, without user information or a
//! fragment. Operators may register a list of them per tenant (`kontor tenants update
//! --redirect-uri`); a tenant with a list may only use URIs on it, compared exactly — query
//! included — after normalisation: scheme and host in lower case, no default port, `/` for an
//! empty path. So a stolen client secret cannot send users, with their connection's status, to
//! the thief's site.

use kontor_domain::{RedirectUri, RedirectUriError, TenantId};

use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI_LEN: usize = RedirectUri::MAX_LEN;

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(ErrorCode::InvalidRedirectUri, message)
}

impl From<RedirectUriError> for ServiceError {
    fn from(err: RedirectUriError) -> Self {
        invalid(err.to_string())
    }
}

/// The form redirect URIs are compared and registered in, or why `raw` cannot be one.
pub fn normalise_redirect_uri(raw: &str, allow_http: bool) -> ServiceResult<String> {
    Ok(RedirectUri::parse(raw, allow_http)?.as_str().to_owned())
}

impl Hub {
    /// Parses a redirect URI a tenant sent and checks it against the tenant's registered list.
    pub(crate) async fn check_redirect_uri(
        &self,
        tenant: &TenantId,
        raw: &str,
    ) -> ServiceResult<()> {
        let uri = RedirectUri::parse(raw, self.settings().allow_http_redirects)?;
        self.check_registered_redirect_uri(tenant, &uri).await
    }

    /// Whether the tenant may send its users to `uri`: any where it registered none, else one
    /// of those it registered, compared exactly (query included) in their normal form.
    pub(crate) async fn check_registered_redirect_uri(
        &self,
        tenant: &TenantId,
        uri: &RedirectUri,
    ) -> ServiceResult<()> {
        let allowed = self.control().redirect_uris(tenant).await?;
        if allowed.is_empty() || allowed.iter().any(|a| a == uri.as_str()) {
            Ok(())
        } else {
            Err(invalid(format!(
                "redirect_uri {uri} is not one of the redirect URIs registered for this tenant \
                 (they are compared exactly, query included, after normalisation)"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                    assert_eq!(code, ErrorCode::InvalidRedirectUri);
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
