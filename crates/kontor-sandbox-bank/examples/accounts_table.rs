//! Prints the accounts table of the README (identifiers do not depend on the seed).
use std::io::Write;

use kontor_sandbox_bank::config::default_banks;
use kontor_sandbox_bank::data::book::CustomerBook;
use kontor_sandbox_bank::data::users;
use time::macros::date;

fn main() {
    let mut out = std::io::stdout().lock();
    for bank in default_banks() {
        for name in &bank.customers {
            let Some(user) = users::find(name) else {
                continue;
            };
            let book = CustomerBook::open(&bank, user, 42, date!(2024 - 03 - 01));
            for a in &book.accounts {
                let uk = match (&a.sort_code, &a.account_number) {
                    (Some(s), Some(n)) => format!(" (sort code {s}, account {n})"),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {name} | {} | {:?} | `{}`{uk} | `{}` |",
                    bank.id, a.product, a.kind, a.iban, a.resource_id
                );
            }
        }
    }
}
