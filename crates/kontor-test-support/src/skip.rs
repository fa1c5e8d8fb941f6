//! Skipping that cannot be mistaken for passing: a skipped test writes a banner straight to the
//! process's stderr (which the test harness does not capture), and where the environment demands
//! the resource (`KONTOR_REQUIRE_POSTGRES=1`, as CI sets), a missing one is a failure instead.

use std::io::Write;

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The server the PostgreSQL half of the suite uses: `KONTOR_TEST_POSTGRES_URL`, else the local one.
pub fn postgres_admin_url() -> String {
    std::env::var("KONTOR_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

pub fn require_postgres() -> bool {
    std::env::var("KONTOR_REQUIRE_POSTGRES").is_ok_and(|v| v == "1" || v == "true")
}

/// Reports a skipped test where a person will see it.
pub fn loud_skip(test: &str, why: &str) {
    let banner = format!("\n*** SKIPPED {test}: {why} ***\n");
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(banner.as_bytes());
    let _ = stderr.flush();
}
