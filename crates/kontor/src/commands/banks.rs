//! `kontor banks check`: the certificates configured for each bank (the hub's and tenants'
//! own), with their PSD2 attributes and how long they stay valid. Configuration that would
//! refuse to start (an unreadable file, a payments bank without `PSP_PI`) fails here the same way.

use std::io::Write;

use crate::certificates::{describe, report};
use crate::config::Config;

pub fn check(config: &Config, json: bool) -> anyhow::Result<()> {
    let certificates = report(&config.banks)?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &certificates)?;
        writeln!(out)?;
        return Ok(());
    }
    for bank in &config.banks {
        let mine: Vec<_> = certificates.iter().filter(|c| c.bank == bank.id).collect();
        let tls = if mine.is_empty() {
            "no client certificate"
        } else {
            "client certificate"
        };
        writeln!(
            out,
            "{} ({}, payments {}): {tls}",
            bank.id,
            bank.standard.as_str(),
            if bank.payments { "on" } else { "off" }
        )?;
        for certificate in mine {
            writeln!(out, "  {}", describe(certificate))?;
        }
    }
    Ok(())
}
