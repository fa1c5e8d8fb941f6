//! Where a tenant sends its users back to after a link or a payment: an absolute https URL (http
//! only where the operator allows it, for development), with a host, without user information or
//! a fragment, at most [`RedirectUri::MAX_LEN`] characters. It is kept in its normal form —
//! scheme and host in lower case, no default port, `/` for an empty path — so that two spellings
//! of one URL compare equal against a tenant's registered list.

use std::fmt;

use url::Url;

/// A redirect URI in its normal form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RedirectUri(Url);

/// Why a redirect URI was refused. Messages name the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("redirect_uri must be at most {max} characters", max = RedirectUri::MAX_LEN)]
    TooLong,
    #[error("redirect_uri must be an absolute URL")]
    NotAbsolute,
    #[error("redirect_uri must be an https URL")]
    NotHttps,
    #[error("redirect_uri must have a host")]
    NoHost,
    #[error("redirect_uri must not contain user information (user:password@)")]
    UserInformation,
    #[error("redirect_uri must not have a fragment")]
    Fragment,
}

impl RedirectUri {
    /// The longest redirect URI accepted.
    pub const MAX_LEN: usize = 2000;

    /// Parses `raw` into its normal form; `allow_http` admits plain http (development only).
    pub fn parse(raw: &str, allow_http: bool) -> Result<Self, RedirectUriError> {
        if raw.len() > Self::MAX_LEN {
            return Err(RedirectUriError::TooLong);
        }
        // Parsing lower-cases the scheme and the host, drops a default port and gives an empty
        // path its `/`: what is left is the normal form.
        let url = Url::parse(raw).map_err(|_| RedirectUriError::NotAbsolute)?;
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            _ => return Err(RedirectUriError::NotHttps),
        }
        if url.host().is_none() {
            return Err(RedirectUriError::NoHost);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectUriError::UserInformation);
        }
        if url.fragment().is_some() {
            return Err(RedirectUriError::Fragment);
        }
        Ok(Self(url))
    }

    /// The normal form, as registered and compared.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The path and query may carry the tenant's own references: `Debug` shows the origin only.
impl fmt::Debug for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RedirectUri({}/…)",
            self.0.origin().ascii_serialization()
        )
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
            assert_eq!(
                RedirectUri::parse(raw, false).unwrap().as_str(),
                normal,
                "{raw}"
            );
        }
        assert_eq!(
            RedirectUri::parse("http://localhost:80/x", true)
                .unwrap()
                .as_str(),
            "http://localhost/x"
        );
        // The path and query are compared as they are: they are the tenant's.
        assert_ne!(
            RedirectUri::parse("https://a.example/Linked", false),
            RedirectUri::parse("https://a.example/linked", false)
        );
    }

    #[test]
    fn what_is_refused_says_why() {
        for (raw, why) in [
            ("/relative", RedirectUriError::NotAbsolute),
            ("", RedirectUriError::NotAbsolute),
            ("http://app.example/", RedirectUriError::NotHttps),
            ("javascript:alert(1)", RedirectUriError::NotHttps),
            (
                "https://user@app.example/",
                RedirectUriError::UserInformation,
            ),
            (
                "https://:pw@app.example/",
                RedirectUriError::UserInformation,
            ),
            ("https://app.example/#top", RedirectUriError::Fragment),
        ] {
            assert_eq!(RedirectUri::parse(raw, false), Err(why), "{raw}");
        }
        assert_eq!(
            RedirectUri::parse("http://u:p@localhost/", true),
            Err(RedirectUriError::UserInformation)
        );
    }

    #[test]
    fn the_limit_is_at_max_len() {
        let base = "https://app.example/";
        let at = format!("{base}{}", "a".repeat(RedirectUri::MAX_LEN - base.len()));
        assert!(RedirectUri::parse(&at, false).is_ok());
        let over = format!("{at}a");
        assert_eq!(
            RedirectUri::parse(&over, false),
            Err(RedirectUriError::TooLong)
        );
    }

    #[test]
    fn debug_shows_the_origin_only() {
        let uri = RedirectUri::parse("https://app.example/u/jane?ref=42", false).unwrap();
        assert_eq!(format!("{uri:?}"), "RedirectUri(https://app.example/…)");
    }
}
