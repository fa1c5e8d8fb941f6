//! Request headers of the Berlin Group API, checked as the spec defines them (`X-Request-ID`
//! is a UUID, `PSU-IP-Address` an IPv4 address, redirect URIs are URIs, booleans are booleans).

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
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        BgError::format(service, format!("invalid body: {}", error.inner())).at_path(path)
    })
}
