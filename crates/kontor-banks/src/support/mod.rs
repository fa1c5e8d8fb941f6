//! Small pieces both connectors need and that are not about HTTP: amounts, dates, URLs, ids,
//! and the checks a payment request passes before it is sent.

pub(crate) mod amount;
pub(crate) mod checks;
pub(crate) mod dates;
pub(crate) mod ids;
pub(crate) mod urls;

/// Trimmed, and `None` when nothing is left: banks send empty strings for absent values.
pub(crate) fn text(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}
