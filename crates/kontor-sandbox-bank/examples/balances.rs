//! Prints bi-monthly booked balances of every generated account over the 24 months, for two
//! seeds: the aid for tuning the templates so balances stay plausible.
//! Run: `cargo run -p kontor-sandbox-bank --example balances`.
use std::io::Write;

use kontor_sandbox_bank::config::default_banks;
use kontor_sandbox_bank::data::book::CustomerBook;
use kontor_sandbox_bank::data::users;
use time::Duration;
use time::macros::datetime;

fn main() {
    let start = datetime!(2026-03-02 09:00 UTC);
    for seed in [7u64, 42] {
        for bank in default_banks() {
            for name in &bank.customers {
                let Some(user) = users::find(name) else {
                    continue;
                };
                let mut book =
                    CustomerBook::open(&bank, user, seed, start.date() - Duration::days(730));
                book.ensure_generated(start.date());
                for (i, a) in book.accounts.iter().enumerate() {
                    let mut line = format!("seed {seed} {} {name} {:?}:", bank.id, a.kind);
                    let mut day = start.date() - Duration::days(720);
                    while day <= start.date() {
                        let b = book.balances(i, day.midnight().assume_utc());
                        line.push_str(&format!(" {}", b.booked / 100));
                        day += Duration::days(60);
                    }
                    let now = book.balances(i, start);
                    line.push_str(&format!(
                        " | now {} avail {}",
                        now.booked / 100,
                        now.available / 100
                    ));
                    let _ = writeln!(std::io::stdout(), "{line}");
                }
            }
        }
    }
}
