//! `GET /`: a human-readable start page listing banks, users and the admin controls.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;

use crate::app::App;
use crate::data::users::{ONE_TIME_CODE, PASSWORD, USERS};
use crate::web::pages::render::escape;

pub async fn index(State(app): State<Arc<App>>) -> Html<String> {
    let mut banks = String::new();
    for bank in &app.banks {
        let c = &bank.config;
        banks.push_str(&format!(
            r#"<tr><td><a href="{url}/app">{name}</a></td><td>{country}</td><td>{standard}</td><td><code>{url}</code></td><td>{customers}</td></tr>"#,
            url = escape(&bank.base_url),
            name = escape(&c.name),
            country = escape(&c.country),
            standard = c.standard.as_str(),
            customers = escape(&c.customers.join(", ")),
        ));
    }
    let users: String = USERS
        .iter()
        .map(|u| {
            format!(
                "<li><code>{}</code> – {}</li>",
                u.username,
                escape(u.full_name)
            )
        })
        .collect();
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Kontor sandbox bank</title>
<style>body{{font-family:system-ui,sans-serif;max-width:960px;margin:32px auto;color:#1f2937}}table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #e5e7eb;padding:6px;text-align:left;font-size:14px}}</style></head>
<body><h1>Kontor sandbox bank</h1>
<p>Simulated time: <code>{now}</code> · admin API: <code>{root}/admin</code></p>
<table><tr><th>Bank</th><th>Country</th><th>Standard</th><th>Base URL</th><th>Customers</th></tr>{banks}</table>
<h2>Users</h2><ul>{users}</ul><p>Password <code>{PASSWORD}</code>, one-time code <code>{ONE_TIME_CODE}</code>.</p>
</body></html>"#,
        now = crate::core::dates::timestamp(app.clock.now()),
        root = escape(&app.root_url),
    ))
}
