//! URLs: endpoints under a bank's base URL, links the bank sends back, query parameters.

use url::Url;

use crate::BankError;

/// `base` with `segments` appended as path segments (each percent-encoded), whatever the base
/// ends with: `https://bank/api` + `["v1", "consents"]` is `https://bank/api/v1/consents`.
pub(crate) fn endpoint(base: &Url, segments: &[&str]) -> Result<Url, BankError> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| BankError::protocol("the bank's base URL cannot have a path"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// A link from a bank answer (`_links.next`, `Links.Next`): absolute, or relative to the host
/// (`/bank/v1/…`), or relative to the API root (`/v1/…` under a base URL with a path). It must
/// stay on the bank's origin: the connector sends consent ids and tokens to it.
pub(crate) fn resolve_link(base: &Url, href: &str) -> Result<Url, BankError> {
    let url = match Url::parse(href) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let base_path = base.path().trim_end_matches('/');
            let path = if href.starts_with('/') && !href.starts_with(&format!("{base_path}/")) {
                format!("{base_path}{href}")
            } else {
                href.to_owned()
            };
            base.join(&path)
                .map_err(|_| BankError::protocol("malformed link in the bank's answer"))?
        }
        Err(_) => return Err(BankError::protocol("malformed link in the bank's answer")),
    };
    if url.origin() != base.origin() {
        return Err(BankError::protocol(
            "the bank's answer links to another origin",
        ));
    }
    Ok(url)
}

/// A URL the user's browser is sent to: absolute http(s).
pub(crate) fn browser_url(href: &str) -> Result<Url, BankError> {
    match Url::parse(href) {
        Ok(url) if url.scheme() == "https" || url.scheme() == "http" => Ok(url),
        _ => Err(BankError::protocol(
            "the bank's SCA link is not an absolute http(s) URL",
        )),
    }
}

/// `url` with `pairs` added to its query.
pub(crate) fn with_query(url: &Url, pairs: &[(&str, &str)]) -> Url {
    let mut url = url.clone();
    url.query_pairs_mut().extend_pairs(pairs);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(raw: &str) -> Url {
        Url::parse(raw).unwrap()
    }

    #[test]
    fn endpoints_append_segments() {
        let base = u("http://127.0.0.1:9/sonnenbank");
        assert_eq!(
            endpoint(&base, &["v1", "consents", "c/1 x"])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/sonnenbank/v1/consents/c%2F1%20x"
        );
        assert_eq!(
            endpoint(&u("http://h/api/"), &["v1"]).unwrap().as_str(),
            "http://h/api/v1"
        );
        assert_eq!(
            endpoint(&u("http://h"), &["v1"]).unwrap().as_str(),
            "http://h/v1"
        );
    }

    #[test]
    fn links_resolve_in_every_form_the_standards_allow() {
        let base = u("http://127.0.0.1:9/sonnenbank");
        let want = "http://127.0.0.1:9/sonnenbank/v1/accounts/a/transactions?cursor=2";
        for href in [
            want,
            "/sonnenbank/v1/accounts/a/transactions?cursor=2",
            "/v1/accounts/a/transactions?cursor=2",
        ] {
            assert_eq!(resolve_link(&base, href).unwrap().as_str(), want, "{href}");
        }
        assert_eq!(
            resolve_link(&u("https://bank.example"), "/v1/x")
                .unwrap()
                .as_str(),
            "https://bank.example/v1/x"
        );
    }

    #[test]
    fn links_may_not_leave_the_bank() {
        let base = u("https://bank.example/api");
        for href in [
            "https://evil.example/v1/accounts",
            "http://bank.example/api/v1/accounts",
            "https://bank.example:444/api/v1",
        ] {
            assert!(resolve_link(&base, href).is_err(), "{href}");
        }
        assert!(resolve_link(&u("https://bank.example"), "//evil.example/x").is_err());
    }

    #[test]
    fn browser_urls_are_http() {
        assert!(browser_url("https://bank/sca/1").is_ok());
        assert!(browser_url("javascript:alert(1)").is_err());
        assert!(browser_url("/sca/1").is_err());
    }

    #[test]
    fn query_pairs_are_encoded() {
        let url = with_query(&u("https://hub/cb?x=1"), &[("state", "a b&c")]);
        assert_eq!(url.as_str(), "https://hub/cb?x=1&state=a+b%26c");
    }
}
