//! `kontor config print`: the effective configuration, every layer applied, secrets masked.

use std::io::Write;

use crate::config::Config;

pub fn print(config: &Config) -> anyhow::Result<()> {
    let mut rendered = config.to_masked_toml()?;
    // The certificates' PSD2 attributes, as comments so that the output stays valid TOML.
    let certificates = crate::certificates::report(&config.banks)?;
    if !certificates.is_empty() {
        rendered.push_str("\n# Bank certificates (read now):\n");
        for certificate in &certificates {
            rendered.push_str(&format!(
                "# {}\n",
                crate::certificates::describe(certificate)
            ));
        }
    }
    std::io::stdout().lock().write_all(rendered.as_bytes())?;
    Ok(())
}
