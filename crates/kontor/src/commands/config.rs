//! `kontor config print`: the effective configuration, every layer applied, secrets masked.

use std::io::Write;

use crate::config::Config;

pub fn print(config: &Config) -> anyhow::Result<()> {
    let rendered = config.to_masked_toml()?;
    std::io::stdout().lock().write_all(rendered.as_bytes())?;
    Ok(())
}
