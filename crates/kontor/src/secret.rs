//! Values that must not be printed: secrets, and database URLs whose password is masked whenever
//! they are displayed, debugged or serialized (as `config print` does).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret string. Only [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::config::masked(s)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A database URL; its password never appears in output.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `********`.
    pub fn masked(&self) -> String {
        // SQLite URLs name a file and carry no credentials.
        if self.0.starts_with("sqlite:") {
            return self.0.clone();
        }
        match url::Url::parse(&self.0) {
            Ok(mut parsed) if parsed.has_host() => {
                if parsed.password().is_some() && parsed.set_password(Some("********")).is_err() {
                    return format!("{}:<unprintable>", parsed.scheme());
                }
                parsed.to_string()
            }
            // Not a URL we understand: show nothing after the scheme, it may hold credentials.
            _ => match self.0.split_once(':') {
                Some((scheme, _)) => format!("{scheme}:<unparseable>"),
                None => "<unparseable>".to_owned(),
            },
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.masked())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.masked())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(DatabaseUrl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        let url = DatabaseUrl::new("postgres://kontor:hunter2@db.internal:5432/kontor_uk");
        for shown in [
            url.to_string(),
            format!("{url:?}"),
            serde_json::to_string(&url).unwrap(),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("db.internal"), "{shown}");
        }
        assert_eq!(
            url.expose(),
            "postgres://kontor:hunter2@db.internal:5432/kontor_uk"
        );
        let plain = DatabaseUrl::new("sqlite://./kontor-data/control.db");
        assert_eq!(plain.to_string(), "sqlite://./kontor-data/control.db");
        let odd = DatabaseUrl::new("postgres:user:secret@@@");
        assert!(!odd.to_string().contains("secret"));
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("topsecret");
        assert!(!format!("{secret:?}").contains("topsecret"));
        assert!(
            !serde_json::to_string(&secret)
                .unwrap()
                .contains("topsecret")
        );
    }
}
