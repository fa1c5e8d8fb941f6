//! Request headers of the Berlin Group API, checked as the spec defines them (`X-Request-ID`
//! and `PSU-Device-ID` are UUIDs, `PSU-IP-Address` an IPv4 address, `PSU-Http-Method` one of
//! its enum, `PSU-Geo-Location` matches its pattern, redirect URIs are URIs, booleans are
//! booleans). `PSU-IP-Port` and the other `PSU-*` headers are plain strings in the spec and are
//! not checked.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::error::{BgError, BgResult, Service};

/// The headers a handler may need.
#[derive(Debug, Clone, Default)]
pub struct TppHeaders {
    pub request_id: String,
    pub psu_ip: Option<String>,
    pub psu_id: Option<String>,
    pub consent_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub nok_redirect_uri: Option<String>,
    pub redirect_preferred: Option<bool>,
    pub explicit_authorisation: Option<bool>,
    pub rejection_no_funds: Option<bool>,
}

/// True for the canonical 8-4-4-4-12 hexadecimal UUID form.
pub fn is_uuid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `enum` of the spec's `PSU-Http-Method` parameter (HTTP methods are case-sensitive).
const PSU_HTTP_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The spec's `PSU-Geo-Location` pattern, `GEO:-?[0-9]{1,2}\.[0-9]{6};-?[0-9]{1,3}\.[0-9]{6}`,
/// matched against the whole value (the pattern and its example describe the value itself).
fn is_geo_location(text: &str) -> bool {
    fn coordinate(text: &str, max_whole_digits: usize) -> bool {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let Some((whole, fraction)) = digits.split_once('.') else {
            return false;
        };
        (1..=max_whole_digits).contains(&whole.len())
            && whole.bytes().all(|b| b.is_ascii_digit())
            && fraction.len() == 6
            && fraction.bytes().all(|b| b.is_ascii_digit())
    }
    text.strip_prefix("GEO:")
        .and_then(|rest| rest.split_once(';'))
        .is_some_and(|(latitude, longitude)| coordinate(latitude, 2) && coordinate(longitude, 3))
}

fn header<'a>(headers: &'a HeaderMap, name: &str, service: Service) -> BgResult<Option<&'a str>> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|v| Some(v.trim()))
            .map_err(|_| BgError::format(service, format!("header {name} is not valid text"))),
    }
}

fn boolean(headers: &HeaderMap, name: &str, service: Service) -> BgResult<Option<bool>> {
    match header(headers, name, service)? {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(BgError::format(
            service,
            format!("header {name} must be true or false"),
        )),
    }
}

fn uri(headers: &HeaderMap, name: &str, service: Service) -> BgResult<Option<String>> {
    match header(headers, name, service)? {
        None => Ok(None),
        Some(v) => match url::Url::parse(v) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(Some(v.to_string())),
            _ => Err(BgError::format(
                service,
                format!("header {name} must be an absolute http(s) URI"),
            )),
        },
    }
}

/// Reads and checks the common headers.
pub fn read(headers: &HeaderMap, service: Service) -> BgResult<TppHeaders> {
    let request_id = header(headers, "x-request-id", service)?
        .ok_or_else(|| BgError::format(service, "header X-Request-ID is missing"))?;
    if !is_uuid(request_id) {
        return Err(BgError::format(
            service,
            "header X-Request-ID must be a UUID",
        ));
    }
    let psu_ip = header(headers, "psu-ip-address", service)?.map(str::to_string);
    if let Some(ip) = &psu_ip
        && ip.parse::<std::net::Ipv4Addr>().is_err()
    {
        return Err(BgError::format(
            service,
            "header PSU-IP-Address must be an IPv4 address",
        ));
    }
    if let Some(device) = header(headers, "psu-device-id", service)?
        && !is_uuid(device)
    {
        return Err(BgError::format(
            service,
            "header PSU-Device-ID must be a UUID",
        ));
    }
    if let Some(method) = header(headers, "psu-http-method", service)?
        && !PSU_HTTP_METHODS.contains(&method)
    {
        return Err(BgError::format(
            service,
            "header PSU-Http-Method must be one of GET, POST, PUT, PATCH, DELETE",
        ));
    }
    if let Some(location) = header(headers, "psu-geo-location", service)?
        && !is_geo_location(location)
    {
        return Err(BgError::format(
            service,
            "header PSU-Geo-Location must look like GEO:52.506931;13.144558",
        ));
    }
    Ok(TppHeaders {
        request_id: request_id.to_string(),
        psu_ip,
        psu_id: header(headers, "psu-id", service)?
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        consent_id: header(headers, "consent-id", service)?.map(str::to_string),
        redirect_uri: uri(headers, "tpp-redirect-uri", service)?,
        nok_redirect_uri: uri(headers, "tpp-nok-redirect-uri", service)?,
        redirect_preferred: boolean(headers, "tpp-redirect-preferred", service)?,
        explicit_authorisation: boolean(headers, "tpp-explicit-authorisation-preferred", service)?,
        rejection_no_funds: boolean(headers, "tpp-rejection-nofunds-preferred", service)?,
    })
}

impl TppHeaders {
    /// `PSU-IP-Address` is mandatory on consent creation and payment initiation.
    pub fn require_psu_ip(&self, service: Service) -> BgResult<()> {
        if self.psu_ip.is_none() {
            return Err(BgError::format(service, "header PSU-IP-Address is missing"));
        }
        Ok(())
    }

    /// `Consent-ID` is mandatory on every account read.
    pub fn require_consent_id(&self) -> BgResult<&str> {
        self.consent_id
            .as_deref()
            .ok_or_else(|| BgError::format(Service::Ais, "header Consent-ID is missing"))
    }
}

/// Refuses `Accept` headers that exclude JSON (the sandbox serves no camt/pain XML).
pub fn check_accept(headers: &HeaderMap, service: Service) -> BgResult<()> {
    let Some(accept) = headers.get("accept").and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let acceptable = accept.split(',').any(|part| {
        let media = part.split(';').next().unwrap_or("").trim();
        media.is_empty()
            || media == "*/*"
            || media == "application/*"
            || media == "application/json"
    });
    if acceptable {
        Ok(())
    } else {
        Err(BgError::new(
            service,
            StatusCode::NOT_ACCEPTABLE,
            "REQUESTED_FORMATS_INVALID",
            "only application/json is available",
        ))
    }
}

/// Parses a JSON body, refusing other media types (415) and reporting the failing field.
pub fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
    service: Service,
) -> BgResult<T> {
    // No content has no media type to refuse (415 is about the content's format): a missing
    // body is a malformed request.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BgError::format(service, "a JSON body is required"));
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(BgError::new(
            service,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "FORMAT_ERROR",
            "body must be application/json",
        ));
    }
    crate::web::json::from_slice(body).map_err(|error| {
        BgError::format(service, format!("invalid body: {}", error.message)).at_path(error.path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geo_locations_follow_the_specs_pattern() {
        for good in [
            "GEO:52.506931;13.144558",
            "GEO:-1.000000;-179.999999",
            "GEO:0.000000;0.000000",
        ] {
            assert!(is_geo_location(good), "{good}");
        }
        for bad in [
            "0",
            "",
            "GEO:52.50693;13.144558",
            "GEO:152.506931;13.144558",
            "GEO:52.506931;1313.144558",
            "GEO:52.506931,13.144558",
            "geo:52.506931;13.144558",
            "GEO:52.506931;13.144558x",
            "xGEO:52.506931;13.144558",
            "GEO:+52.506931;13.144558",
            "GEO:52.506931;13.144558;1.000000",
        ] {
            assert!(!is_geo_location(bad), "{bad}");
        }
    }
}
