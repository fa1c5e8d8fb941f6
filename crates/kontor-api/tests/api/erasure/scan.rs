//! The attacker's tools, written apart from the hub's own crypto: find what looks like a wrapped
//! key (`w1.<kek>.<base64url>`) or a sealed value (`s1.<base64url>`) in raw bytes, unwrap and
//! open them with AES-256-GCM, and look for personal data in the clear.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// Bytes from somewhere an attacker can read, named for the report.
pub struct Blob {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What the attacker knows: every key-encryption key, whose data to look for, and where.
pub struct Attacker<'a> {
    pub keks: &'a [[u8; 32]],
    /// The erased user's id: their wrapped key is bound to it.
    pub owner: &'a str,
    /// The contexts sealed values are bound to (ids are in the files for anyone to read).
    pub contexts: &'a [String],
    /// Personal data to look for: IBANs, names, transaction texts.
    pub needles: &'a [String],
    /// The user's data key in clear, as it was before the erasure.
    pub data_key: Option<[u8; 32]>,
}

/// Everything readable that was found; empty means the attacker learnt nothing.
#[derive(Debug, Default)]
pub struct Findings {
    /// Wrapped keys that unwrapped, by where they were found.
    pub unwrapped: Vec<String>,
    /// The data key itself (raw, base64 or hex), by where.
    pub clear_keys: Vec<String>,
    /// Personal data in the clear: (needle, where).
    pub plaintext: Vec<(String, String)>,
    /// Personal data in sealed values that opened: (needle, where).
    pub opened: Vec<(String, String)>,
}

impl Findings {
    pub fn is_empty(&self) -> bool {
        self.unwrapped.is_empty()
            && self.clear_keys.is_empty()
            && self.plaintext.is_empty()
            && self.opened.is_empty()
    }
}

fn aead(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap())
}

fn open(key: &LessSafeKey, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + 16 {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buffer = body.to_vec();
    key.open_in_place(nonce, Aad::from(aad), &mut buffer)
        .ok()
        .map(|plain| plain.to_vec())
}

/// A substring search that stays fast in a debug build: the blobs are whole database files and
/// WAL, and a naive window comparison made this scan most of the test's five minutes.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(haystack, needle).is_some()
}

fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

/// Every run of token characters starting at `prefix`.
fn tokens<'b>(bytes: &'b [u8], prefix: &[u8]) -> Vec<&'b [u8]> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = memchr::memmem::find(&bytes[from..], prefix) {
        let start = from + found;
        let end = bytes[start..]
            .iter()
            .position(|b| !token_byte(*b))
            .map_or(bytes.len(), |n| start + n);
        out.push(&bytes[start..end]);
        from = end.max(start + 1);
    }
    out
}

impl Attacker<'_> {
    pub fn scan(&self, blobs: &[Blob]) -> Findings {
        let mut findings = Findings::default();
        let keks: Vec<LessSafeKey> = self.keks.iter().map(aead).collect();
        let mut data_keys: Vec<[u8; 32]> = Vec::new();
        for blob in blobs {
            for token in tokens(&blob.bytes, b"w1.") {
                let Some(body) = token.splitn(3, |b| *b == b'.').nth(2) else {
                    continue;
                };
                let Ok(sealed) = URL_SAFE_NO_PAD.decode(body) else {
                    continue;
                };
                for kek in &keks {
                    if let Some(plain) = open(kek, &sealed, self.owner.as_bytes())
                        && let Ok(key) = <[u8; 32]>::try_from(plain.as_slice())
                    {
                        findings.unwrapped.push(blob.name.clone());
                        if !data_keys.contains(&key) {
                            data_keys.push(key);
                        }
                    }
                }
            }
        }
        if let Some(key) = self.data_key {
            let forms: Vec<Vec<u8>> = vec![
                key.to_vec(),
                STANDARD.encode(key).into_bytes(),
                STANDARD_NO_PAD.encode(key).into_bytes(),
                URL_SAFE_NO_PAD.encode(key).into_bytes(),
                key.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
                    .into_bytes(),
            ];
            for blob in blobs {
                if forms.iter().any(|form| contains(&blob.bytes, form)) {
                    findings.clear_keys.push(blob.name.clone());
                }
            }
        }
        let keys: Vec<LessSafeKey> = data_keys.iter().map(aead).collect();
        for blob in blobs {
            for needle in self.needles {
                if contains(&blob.bytes, needle.as_bytes()) {
                    findings.plaintext.push((needle.clone(), blob.name.clone()));
                }
            }
            if keys.is_empty() {
                continue;
            }
            for token in tokens(&blob.bytes, b"s1.") {
                let Ok(sealed) = URL_SAFE_NO_PAD.decode(&token[3..]) else {
                    continue;
                };
                let opened = keys.iter().find_map(|key| {
                    self.contexts
                        .iter()
                        .find_map(|context| open(key, &sealed, context.as_bytes()))
                });
                if let Some(plain) = opened {
                    for needle in self.needles {
                        if contains(&plain, needle.as_bytes()) {
                            findings.opened.push((needle.clone(), blob.name.clone()));
                        }
                    }
                }
            }
        }
        findings
    }
}

/// Unwraps a `w1.` key with `kek` for `owner`, as the attacker would.
pub fn unwrap(wrapped: &str, kek: &[u8; 32], owner: &str) -> Option<[u8; 32]> {
    let body = wrapped.splitn(3, '.').nth(2)?;
    let sealed = URL_SAFE_NO_PAD.decode(body).ok()?;
    let plain = open(&aead(kek), &sealed, owner.as_bytes())?;
    <[u8; 32]>::try_from(plain.as_slice()).ok()
}
