//! The demo's own pages: `/` says what the demo is and links each sandbox user to a fresh
//! connect page, `/demo/done` shows the connection just made, `/demo/readme` serves the README.
//! Not part of a production hub (`kontor serve` answers `/` with the API's JSON 404).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::response::{Html, IntoResponse, Response};
use kontor_api::escape_html as esc;
use kontor_domain::ConnectionId;
use kontor_domain::Money;
use kontor_domain::account::BalanceKind;
use kontor_domain::connection::{Connection, ConnectionStatus};
use kontor_domain::transaction::TransactionStatus;
use kontor_store::TransactionFilter;

use super::users::DEMO_USERS;
use super::{DemoState, sandbox_banks_of};

/// The README, served as it is so that the landing page's link works offline.
const README: &str = include_str!("../../../../../README.md");

/// Most transactions listed per account on the result page.
const LATEST: usize = 10;

pub async fn readme() -> Response {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], README).into_response()
}

/// `GET /`: what this is, who to sign in as, where the API and its documents are.
pub async fn landing(State(demo): State<DemoState>) -> Html<String> {
    let mut rows = String::new();
    for user in DEMO_USERS {
        let banks = sandbox_banks_of(user.username)
            .iter()
            .map(|b| {
                let standard = match b.standard {
                    kontor_sandbox_bank::Standard::BerlinGroup => "Berlin Group",
                    kontor_sandbox_bank::Standard::UkOpenBanking => "UK Open Banking",
                };
                format!(
                    "{} <small>({}, {standard})</small>",
                    esc(&b.name),
                    esc(&b.country)
                )
            })
            .collect::<Vec<_>>()
            .join("<br>");
        rows.push_str(&format!(
            "<tr><td><b>{name}</b><br><small>{full}</small></td><td>{banks}</td>\
             <td><a class=\"button\" id=\"connect-{name}\" href=\"/demo/connect/{name}\">Connect as {name}</a></td></tr>",
            name = user.username,
            full = esc(user.full_name),
        ));
    }
    let body = format!(
        "<p class=\"lead\">Kontor is a self-hosted open banking hub: a fintech app (a <em>tenant</em>) \
         integrates one REST API and reaches its users' accounts at banks that speak Berlin Group \
         NextGenPSD2 or UK Open Banking. This demo runs the hub and a <b>sandbox bank</b> in one \
         process, on SQLite under <code>{data}</code>; nothing leaves this machine.</p>\
         <h2>Link a sandbox account</h2>\
         <p>Pick a user: the hub opens its connect page for them, you choose the bank and sign in \
         there with password <code>sandbox</code> and code <code>123456</code>, and you come back \
         to a page with the accounts and transactions the hub fetched.</p>\
         <table class=\"users\"><thead><tr><th>User</th><th>Banks</th><th></th></tr></thead>\
         <tbody>{rows}</tbody></table>\
         <h2>Use the API</h2>\
         <ul><li><a id=\"docs\" href=\"/docs\">API reference</a> (Swagger UI) and the \
         <a href=\"/openapi.json\">OpenAPI document</a></li>\
         <li><a id=\"readme\" href=\"/demo/readme\">README</a>: the walk through the API with \
         <code>curl</code>, configuration and operations</li>\
         <li>The demo tenant <code>{tenant}</code> has the API client <code>{client}</code>; its \
         secret was printed in the terminal that started the demo (it is shown only once).</li></ul>\
         <p class=\"muted\">The sandbox bank itself is at <a href=\"{sandbox}\">{sandbox}</a>.</p>",
        data = esc(&demo.data_dir),
        tenant = esc(demo.tenant.as_str()),
        client = esc(&demo.client_id),
        sandbox = esc(&demo.sandbox_url),
    );
    page("Kontor demo", "demo-home", &body, false)
}

/// `GET /demo/connect/{user}`: a fresh link for that sandbox user, and off to its connect page.
/// Fresh on every visit, so the printed and linked addresses keep working after a restart or a
/// finished link.
pub async fn connect(State(demo): State<DemoState>, Path(username): Path<String>) -> Response {
    let Some((user, id)) = demo.users.iter().find(|(u, _)| u.username == username) else {
        let body = format!(
            "<p>There is no sandbox user {}.</p><p><a href=\"/\">Back</a></p>",
            esc(&username)
        );
        return (
            StatusCode::NOT_FOUND,
            page("Unknown user", "demo-error", &body, false),
        )
            .into_response();
    };
    match super::link_for(&demo.hub, &demo.tenant, user, id, &demo.done_url).await {
        Ok(url) => (StatusCode::SEE_OTHER, [(LOCATION, url)]).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "creating a demo link failed");
            let body = format!(
                "<p>{}</p><p><a href=\"/\">Back</a></p>",
                esc(&err.to_string())
            );
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                page("No link", "demo-error", &body, false),
            )
                .into_response()
        }
    }
}

/// Where a sandbox user lands after linking: the connection just made, its accounts, their
/// balances and latest transactions.
pub async fn done(State(demo): State<DemoState>, RawQuery(query): RawQuery) -> Html<String> {
    let params: std::collections::BTreeMap<String, String> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let status = params.get("status").cloned().unwrap_or_default();
    let back = "<p><a class=\"button\" id=\"home\" href=\"/\">Link another account</a></p>";
    let Some(id) = params
        .get("connection_id")
        .and_then(|raw| ConnectionId::parse(raw).ok())
    else {
        return page(
            "Kontor demo",
            "demo-done",
            &format!("<p>No connection.</p>{back}"),
            false,
        );
    };
    if status != "active" {
        let reason = params.get("reason").cloned().unwrap_or_default();
        let body = format!(
            "<p>The connection ended as <b>{}</b>{}.</p>{back}",
            esc(&status),
            if reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", esc(&reason))
            }
        );
        return page("Not linked", "demo-done", &body, false);
    }
    let connection = match demo.hub.cell_of(&id).await {
        Ok(cell) => cell.connection(&demo.tenant, &id).await.ok(),
        Err(_) => None,
    };
    let Some(connection) = connection else {
        return page(
            "Kontor demo",
            "demo-done",
            &format!("<p>Unknown connection.</p>{back}"),
            false,
        );
    };
    if connection.status != ConnectionStatus::Active || connection.last_synced_at.is_none() {
        return page(
            "Fetching your data…",
            "demo-done",
            "<p>The first sync is running; this page refreshes.</p>",
            true,
        );
    }
    let mut body = summary(&demo, &connection);
    let accounts = demo
        .hub
        .accounts_of(&demo.tenant, &connection.user_id, None, 100)
        .await
        .map(|p| p.items)
        .unwrap_or_default();
    for account in accounts.iter().filter(|a| a.row.connection_id == id) {
        let name = account
            .details
            .name
            .clone()
            .or(account.details.product.clone())
            .unwrap_or_else(|| "Account".to_owned());
        let number = account
            .details
            .iban
            .as_deref()
            .or(account.details.other_identification.as_deref())
            .unwrap_or("");
        body.push_str(&format!(
            "<section class=\"account\"><h2>{}</h2><p class=\"muted\">{}</p>",
            esc(&name),
            esc(&spaced(number))
        ));
        if let Ok(balances) = demo.hub.balances(&demo.tenant, &account.row.id).await {
            body.push_str("<dl class=\"balances\">");
            for b in balances {
                body.push_str(&format!(
                    "<dt>{}</dt><dd>{}</dd>",
                    balance_label(b.balance.kind),
                    esc(&amount(b.balance.amount))
                ));
            }
            body.push_str("</dl>");
        }
        let latest = demo
            .hub
            .transactions(
                &demo.tenant,
                &account.row.id,
                &TransactionFilter::default(),
                None,
                LATEST,
            )
            .await
            .map(|p| p.items)
            .unwrap_or_default();
        if !latest.is_empty() {
            body.push_str(
                "<table class=\"transactions\"><thead><tr><th>Date</th><th>Description</th>\
                 <th class=\"amount\">Amount</th></tr></thead><tbody>",
            );
        }
        for t in &latest {
            let what = t
                .details
                .counterparty_name
                .as_deref()
                .or(t.details.remittance.as_deref())
                .unwrap_or("");
            let pending = if t.row.status == TransactionStatus::Pending {
                " <span class=\"tag\">pending</span>"
            } else {
                ""
            };
            let sign = if t.row.amount.is_negative() {
                "out"
            } else {
                "in"
            };
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}{pending}</td><td class=\"amount {sign}\">{}</td></tr>",
                esc(&t.row.happened_on().to_string()),
                esc(what),
                esc(&amount(t.row.amount)),
            ));
        }
        if !latest.is_empty() {
            body.push_str("</tbody></table>");
        }
        body.push_str("</section>");
    }
    body.push_str(back);
    page("Linked", "demo-done", &body, false)
}

/// Who linked which bank, and what the hub may do with it.
fn summary(demo: &DemoState, connection: &Connection) -> String {
    let who = demo
        .users
        .iter()
        .find(|(_, id)| *id == connection.user_id)
        .map_or_else(
            || "A user".to_owned(),
            |(u, _)| format!("{} ({})", u.username, u.full_name),
        );
    let bank = connection
        .bank_id
        .as_ref()
        .map(|id| {
            demo.hub
                .directory()
                .get(id)
                .map_or_else(|| id.as_str().to_owned(), |b| b.profile.name.clone())
        })
        .unwrap_or_default();
    let until = connection
        .valid_until
        .map(|t| format!(" Access lasts until {}.", t.to_datetime().date()))
        .unwrap_or_default();
    format!(
        "<p class=\"lead\">{} linked <b>{}</b>.{}</p>\
         <p class=\"muted\">Connection <code>{}</code>, read over the API as \
         <code>GET /v1/connections/{}</code>.</p>",
        esc(&who),
        esc(&bank),
        esc(&until),
        esc(connection.id.as_str()),
        esc(connection.id.as_str()),
    )
}

/// A balance type in words (the API's `closing_booked` is "Booked, end of day").
fn balance_label(kind: BalanceKind) -> &'static str {
    match kind {
        BalanceKind::ClosingBooked => "Booked, end of day",
        BalanceKind::ClosingAvailable => "Available, end of day",
        BalanceKind::Expected => "Expected",
        BalanceKind::InterimAvailable => "Available now",
        BalanceKind::InterimBooked => "Booked so far today",
        BalanceKind::OpeningBooked => "Booked, start of day",
        BalanceKind::ForwardAvailable => "Available later",
        BalanceKind::NonInvoiced => "Not yet invoiced",
        BalanceKind::Information => "For information",
        BalanceKind::Other => "Other",
    }
}

/// `-12.30 EUR` with a real minus sign and thousands apart.
fn amount(money: Money) -> String {
    let raw = money.to_decimal_string();
    let (sign, digits) = raw
        .strip_prefix('-')
        .map_or(("", raw.as_str()), |d| ("−", d));
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let fraction = if fraction.is_empty() {
        String::new()
    } else {
        format!(".{fraction}")
    };
    format!("{sign}{grouped}{fraction} {}", money.currency().code())
}

/// An IBAN in groups of four, as printed on cards and statements.
fn spaced(number: &str) -> String {
    if !number.chars().take(2).all(|c| c.is_ascii_uppercase()) {
        return number.to_owned();
    }
    let chars: Vec<char> = number.chars().filter(|c| !c.is_whitespace()).collect();
    chars
        .chunks(4)
        .map(|chunk| chunk.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

const STYLE: &str = "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
background:#f4f5f7;color:#1d2330}main{max-width:44rem;margin:0 auto;padding:1.5rem 1rem}\
h1{font-size:1.5rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.5rem 0 .25rem}\
.lead{font-size:1.05rem}.muted{color:#5b6475;font-size:.9rem;margin:.1rem 0 .6rem}\
code{font-size:.85em;background:#e9ecf2;padding:.05rem .3rem;border-radius:4px;overflow-wrap:anywhere}\
table{width:100%;border-collapse:collapse;background:#fff;border-radius:8px}\
th,td{padding:.45rem .5rem;border-bottom:1px solid #e3e6ec;text-align:left;vertical-align:top}\
th{font-size:.85rem;color:#5b6475;font-weight:600}td small{color:#5b6475}\
.amount{text-align:right;white-space:nowrap}table.transactions td:first-child{white-space:nowrap}.amount.out{color:#b42318}.amount.in{color:#067647}\
.tag{font-size:.75rem;background:#fef0c7;color:#93370d;border-radius:4px;padding:0 .3rem}\
.account{background:#fff;border-radius:12px;padding:.75rem 1rem 1rem;margin:1rem 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}\
.account h2{margin-top:.25rem}.account table{border-radius:0}\
dl.balances{display:grid;grid-template-columns:auto auto;gap:.1rem 1rem;margin:.5rem 0 1rem}\
dl.balances dt{color:#5b6475}dl.balances dd{margin:0;text-align:right;font-weight:600}\
a.button{display:inline-block;padding:.45rem .8rem;border-radius:8px;background:#1f4fd6;color:#fff;\
text-decoration:none;white-space:nowrap}";

/// One demo page; `data-page` names it for the browser test.
fn page(title: &str, name: &str, body: &str, refresh: bool) -> Html<String> {
    let refresh = if refresh {
        "<meta http-equiv=\"refresh\" content=\"2\">"
    } else {
        ""
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{refresh}\
         <title>{t}</title><style>{STYLE}</style></head>\
         <body data-page=\"{name}\"><main><h1>{t}</h1>{body}</main></body></html>",
        t = esc(title)
    ))
}

#[cfg(test)]
mod tests {
    use kontor_domain::Currency;

    use super::*;

    #[test]
    fn amounts_read_like_a_statement() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(
            amount(Money::parse("-1234567.5", eur).unwrap()),
            "−1,234,567.50 EUR"
        );
        assert_eq!(amount(Money::parse("12", eur).unwrap()), "12.00 EUR");
        assert_eq!(amount(Money::parse("999.99", eur).unwrap()), "999.99 EUR");
    }

    #[test]
    fn ibans_come_in_groups_of_four() {
        assert_eq!(
            spaced("DE89370400440532013000"),
            "DE89 3704 0044 0532 0130 00"
        );
        assert_eq!(spaced("12345678"), "12345678");
    }

    #[test]
    fn no_balance_shows_its_api_key() {
        for kind in BalanceKind::ALL {
            assert!(!balance_label(kind).contains('_'), "{kind:?}");
        }
    }

    #[test]
    fn every_demo_user_is_a_sandbox_user_with_a_bank() {
        for user in DEMO_USERS {
            assert!(
                !sandbox_banks_of(user.username).is_empty(),
                "{}",
                user.username
            );
        }
    }
}
