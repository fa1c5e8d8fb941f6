//! How a tenant looks on the hosted connect and payment pages: the name users know it by, its
//! logo and its accent colour. Each part is optional and validated here, once, so that the
//! pages can put them into HTML and CSS as they are.

use std::fmt;

use crate::tenant::TenantName;

/// A tenant's branding; every part optional (the pages fall back to the tenant's name and the
/// hub's own colours).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branding {
    /// Shown instead of the tenant's name ("Acme wants to read…").
    pub display_name: Option<TenantName>,
    pub logo_url: Option<LogoUrl>,
    pub accent_color: Option<AccentColor>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrandingError {
    #[error(
        "a logo URL must be an https:// URL of at most {MAX_LOGO_URL} characters, with a host and no \
         user name, password, spaces or quotes"
    )]
    LogoUrl,
    #[error("an accent colour must be a hex colour such as #1f4fd6 or #14d")]
    AccentColor,
}

/// Longest logo URL accepted.
pub const MAX_LOGO_URL: usize = 2048;

/// An `https://` URL of an image. Only https: the pages are served over https, and a browser
/// would block (or flag) an http image on them. The URL's origin is the only one the pages'
/// Content-Security-Policy lets images come from besides the hub itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoUrl(String);

impl LogoUrl {
    pub fn parse(raw: &str) -> Result<Self, BrandingError> {
        let raw = raw.trim();
        let rest = raw
            .get(..8)
            .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
            .map(|_| &raw[8..])
            .ok_or(BrandingError::LogoUrl)?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(authority, |(host, _)| host);
        let allowed =
            |c: char| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '<' | '>' | '\\' | '`');
        if raw.len() > MAX_LOGO_URL
            || host.is_empty()
            || authority.contains('@')
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
            || !raw.chars().all(allowed)
        {
            return Err(BrandingError::LogoUrl);
        }
        Ok(Self(format!("https://{rest}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `https://host[:port]`: what the pages' `img-src` allows.
    pub fn origin(&self) -> &str {
        let end = self.0[8..]
            .find(['/', '?', '#'])
            .map_or(self.0.len(), |i| i + 8);
        &self.0[..end]
    }
}

impl fmt::Display for LogoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A colour as `#rrggbb` (lower case); `#rgb` is accepted and widened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccentColor([u8; 3]);

impl AccentColor {
    pub fn parse(raw: &str) -> Result<Self, BrandingError> {
        let hex = raw
            .trim()
            .strip_prefix('#')
            .ok_or(BrandingError::AccentColor)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BrandingError::AccentColor);
        }
        let digit = |i: usize, width: usize| {
            u8::from_str_radix(&hex[i..i + width], 16).map_err(|_| BrandingError::AccentColor)
        };
        match hex.len() {
            6 => Ok(Self([digit(0, 2)?, digit(2, 2)?, digit(4, 2)?])),
            3 => Ok(Self([
                digit(0, 1)? * 17,
                digit(1, 1)? * 17,
                digit(2, 1)? * 17,
            ])),
            _ => Err(BrandingError::AccentColor),
        }
    }

    /// The text colour that reads best on this colour (WCAG contrast): white or near-black.
    #[expect(
        clippy::float_arithmetic,
        reason = "a contrast ratio of luminances; nothing here is money"
    )]
    pub fn text_color(self) -> &'static str {
        let luminance = relative_luminance(self.0);
        // Contrast with white is 1.05 / (L + 0.05), with black (L + 0.05) / 0.05.
        if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.05 {
            "#ffffff"
        } else {
            "#111111"
        }
    }
}

/// WCAG 2 relative luminance of an sRGB colour, 0 (black) to 1 (white).
#[expect(
    clippy::float_arithmetic,
    reason = "a colour's luminance; nothing here is money"
)]
fn relative_luminance(rgb: [u8; 3]) -> f64 {
    let channel = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2])
}

impl fmt::Display for AccentColor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logo_urls_are_https_with_a_host_and_nothing_that_breaks_out() {
        let ok = LogoUrl::parse(" HTTPS://cdn.acme.example:8443/brand/logo.svg?v=2 ").unwrap();
        assert_eq!(
            ok.as_str(),
            "https://cdn.acme.example:8443/brand/logo.svg?v=2"
        );
        assert_eq!(ok.origin(), "https://cdn.acme.example:8443");
        assert_eq!(
            LogoUrl::parse("https://acme.example").unwrap().origin(),
            "https://acme.example"
        );
        for bad in [
            "http://acme.example/logo.png",
            "data:image/png;base64,AAAA",
            "javascript:alert(1)",
            "//acme.example/logo.png",
            "https:///logo.png",
            "https://user:pw@acme.example/logo.png",
            "https://acme.example/logo.png\" onerror=\"x",
            "https://acme.example/a b.png",
            "https://acme.example/<svg>",
            "https://acme example/logo.png",
            "https://acme.example;img-src */x.png",
            "",
        ] {
            assert_eq!(LogoUrl::parse(bad), Err(BrandingError::LogoUrl), "{bad:?}");
        }
        let long = format!("https://acme.example/{}", "a".repeat(MAX_LOGO_URL));
        assert!(LogoUrl::parse(&long).is_err());
    }

    #[test]
    fn accent_colours_are_hex_and_print_in_full() {
        assert_eq!(
            AccentColor::parse("#1F4FD6").unwrap().to_string(),
            "#1f4fd6"
        );
        assert_eq!(AccentColor::parse("#14d").unwrap().to_string(), "#1144dd");
        for bad in ["1f4fd6", "#1f4fd", "#1f4fd6ff", "#ggg", "red", "#12;}", ""] {
            assert_eq!(
                AccentColor::parse(bad),
                Err(BrandingError::AccentColor),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn text_on_the_accent_stays_readable() {
        assert_eq!(
            AccentColor::parse("#1f4fd6").unwrap().text_color(),
            "#ffffff"
        );
        assert_eq!(
            AccentColor::parse("#000000").unwrap().text_color(),
            "#ffffff"
        );
        assert_eq!(
            AccentColor::parse("#ffd500").unwrap().text_color(),
            "#111111"
        );
        assert_eq!(
            AccentColor::parse("#ffffff").unwrap().text_color(),
            "#111111"
        );
    }
}
