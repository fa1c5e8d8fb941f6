//! The hosted pages' HTML: plain server-rendered markup with a little CSS, readable on a phone,
//! no script. Every dynamic value goes through [`escape`]. Element ids are stable (browser tests
//! and integrators rely on them): `#bank-search`, `#country`, `#bank-<id>`, `#psu-id-<id>`,
//! `#approve-in-app-<id>`, `#cancel`, `#back`, `#retry`.

use kontor_service::{BankEntry, LinkPage};

use kontor_domain::branding::Branding;
use kontor_domain::connection::Language;

use super::i18n::{Texts, country_name, region_country};

fn language_of(texts: &Texts) -> Language {
    Language::parse(texts.lang).unwrap_or(Language::En)
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

fn fill(template: &str, key: &str, value: &str) -> String {
    template.replace(&format!("{{{key}}}"), &escape(value))
}

const STYLE: &str = "\
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f4f5f7;color:#1d2330}\
main{max-width:32rem;margin:0 auto;padding:1.5rem 1rem}\
.card{background:#fff;border-radius:12px;padding:1.25rem;box-shadow:0 1px 3px rgba(0,0,0,.08);margin-bottom:1rem}\
h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.05rem;margin:0 0 .5rem}\
ul.shares{padding-left:1.2rem;margin:.25rem 0}\
.banks{list-style:none;padding:0;margin:0}.banks li{margin:.4rem 0}\
button,input,select{font:inherit}\
button{width:100%;padding:.75rem;border-radius:8px;border:1px solid #c9ced8;background:#fff;text-align:left;cursor:pointer}\
button.primary{background:#1f4fd6;color:#fff;border-color:#1f4fd6;text-align:center}\
button.link{border:0;background:none;color:#1f4fd6;text-align:center}\
.bank small{display:block;color:#5b6475}\
.search{display:grid;grid-template-columns:1fr auto;gap:.5rem;margin-bottom:.75rem}\
.search input,.search select,.search button{box-sizing:border-box;height:2.75rem;padding:0 .6rem;border:1px solid #c9ced8;border-radius:8px;background:#fff;color:inherit}\
.search select{grid-column:1}.search button{grid-column:2;grid-row:1 / span 2;width:auto;text-align:center}\
details{margin:.15rem 0 .6rem .75rem}summary{cursor:pointer;color:#1f4fd6;font-size:.95rem;padding:.5rem 0;min-height:1.75rem}\
.shares{font-size:.95rem}\
label{display:block;margin:.5rem 0 .25rem}input.full{width:100%;box-sizing:border-box;padding:.6rem;border:1px solid #c9ced8;border-radius:8px}\
.muted{color:#5b6475;font-size:.9rem}\
.brand{text-align:center;margin:0 0 1rem}.brand img{max-height:48px;max-width:60%}";

pub fn layout(texts: &Texts, title: &str, body: &str, refresh: Option<&str>) -> String {
    layout_branded(texts, title, body, refresh, &Branding::default(), "")
}

/// The tenant's accent on the card's edge, the main button and links; its logo above the card.
/// Both are validated values (an `#rrggbb` colour, an https URL), escaped all the same.
fn brand_parts(branding: &Branding, tenant: &str) -> (String, String) {
    let style = branding
        .accent_color
        .map(|accent| {
            format!(
                "<style>.card{{border-top:4px solid {accent}}}\
                 button.primary{{background:{accent};border-color:{accent};color:{text}}}\
                 button.link,summary,a{{color:{accent}}}</style>",
                text = accent.text_color(),
            )
        })
        .unwrap_or_default();
    let header = branding
        .logo_url
        .as_ref()
        .map(|logo| {
            format!(
                "<header class=\"brand\"><img id=\"tenant-logo\" src=\"{}\" alt=\"{}\" \
                 referrerpolicy=\"no-referrer\"></header>",
                escape(logo.as_str()),
                escape(tenant),
            )
        })
        .unwrap_or_default();
    (style, header)
}

/// A page in the tenant's colours, with its logo.
pub fn layout_branded(
    texts: &Texts,
    title: &str,
    body: &str,
    refresh: Option<&str>,
    branding: &Branding,
    tenant: &str,
) -> String {
    let (brand_style, header) = brand_parts(branding, tenant);
    let refresh = refresh
        .map(|url| {
            format!(
                "<meta http-equiv=\"refresh\" content=\"2;url={}\">",
                escape(url)
            )
        })
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{refresh}\
         <title>{title}</title><style>{STYLE}</style>{brand_style}</head><body><main>{header}{body}</main></body></html>",
        lang = texts.lang,
        title = escape(title),
    )
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
        escape(value)
    )
}

fn bank_form(texts: &Texts, page: &LinkPage, token: &str, bank: &BankEntry) -> String {
    let id = &page.connection.id;
    let name = &bank.profile.name;
    let bank_id = bank.profile.id.as_str();
    let mut form = format!(
        "<li><form method=\"post\" action=\"/connect/{id}/start\">{}{}{}\
         <button class=\"bank\" id=\"bank-{bank_id}\" type=\"submit\">{}<small>{}</small></button></form>",
        hidden("token", token),
        hidden("bank_id", bank_id),
        hidden("lang", texts.lang),
        fill(texts.continue_to, "bank", name),
        escape(&country_name(language_of(texts), &bank.profile.country)),
    );
    if bank.profile.decoupled_sca && page.decoupled_starts_left > 0 {
        // A login name the tenant bound is not asked for (nor shown).
        let login = if page.psu_bound {
            String::new()
        } else {
            format!(
                "<label for=\"psu-id-{bank_id}\">{}</label>\
                 <input class=\"full\" id=\"psu-id-{bank_id}\" name=\"psu_id\" autocomplete=\"username\" required>",
                escape(texts.login_name),
            )
        };
        form.push_str(&format!(
            "<details><summary class=\"muted\">{}</summary>\
             <form method=\"post\" action=\"/connect/{id}/start\">{}{}{}{}{login}\
             <p><button id=\"approve-in-app-{bank_id}\" type=\"submit\">{}</button></p>\
             </form></details>",
            escape(texts.approve_in_app),
            hidden("token", token),
            hidden("bank_id", bank_id),
            hidden("method", "app"),
            hidden("lang", texts.lang),
            escape(texts.send_to_app),
        ));
    }
    form.push_str("</li>");
    form
}

/// The connect page: who asks, what is shared for how long, and the bank to continue to.
pub fn connect_page(
    texts: &Texts,
    page: &LinkPage,
    token: &str,
    search: &str,
    country: Option<&str>,
) -> String {
    let id = &page.connection.id;
    let access = page.connection.access;
    let mut shares = String::new();
    for (on, text) in [
        (access.accounts, texts.share_accounts),
        (access.balances, texts.share_balances),
        (access.transactions, texts.share_transactions),
    ] {
        if on {
            shares.push_str(&format!("<li>{}</li>", escape(text)));
        }
    }
    let mut body = format!(
        "<div class=\"card\"><h1>{}</h1><p>{}</p><h2>{}</h2><ul class=\"shares\">{shares}</ul>\
         <p class=\"muted\">{}</p>",
        escape(texts.title),
        fill(texts.intro, "tenant", &page.tenant_name),
        escape(texts.shares),
        fill(texts.duration, "days", &page.valid_days.to_string()),
    );
    match &page.bank {
        Some(bank) => {
            body.push_str(&format!(
                "<ul class=\"banks\">{}</ul>",
                bank_form(texts, page, token, bank)
            ));
        }
        None => {
            let mut countries: Vec<&str> = page
                .banks
                .iter()
                .map(|b| b.profile.country.as_str())
                .collect();
            countries.sort_unstable();
            countries.dedup();
            // No country asked for (and no name searched): the user's own, when banks of it are
            // listed; "" means all.
            let home = region_country(page.connection.user_id.region().as_str());
            let country = match country {
                Some(asked) => asked.to_owned(),
                None if search.trim().is_empty() && countries.contains(&home.as_str()) => home,
                None => String::new(),
            };
            let language = language_of(texts);
            let options: String = countries
                .iter()
                .map(|c| {
                    let selected = if country.eq_ignore_ascii_case(c) {
                        " selected"
                    } else {
                        ""
                    };
                    format!(
                        "<option value=\"{}\"{selected}>{}</option>",
                        escape(c),
                        escape(&country_name(language, c))
                    )
                })
                .collect();
            body.push_str(&format!(
                "<h2>{}</h2><form class=\"search\" method=\"get\" action=\"/connect/{id}\">{}{}\
                 <input id=\"bank-search\" name=\"q\" value=\"{}\" placeholder=\"{}\" aria-label=\"{}\">\
                 <select id=\"country\" name=\"country\" aria-label=\"{}\"><option value=\"\">{}</option>{options}</select>\
                 <button type=\"submit\">{}</button></form>",
                escape(texts.choose_bank),
                hidden("token", token),
                hidden("lang", texts.lang),
                escape(search),
                escape(texts.search_placeholder),
                escape(texts.search_placeholder),
                escape(texts.country_label),
                escape(texts.all_countries),
                escape(texts.search),
            ));
            let needle = search.trim().to_lowercase();
            let shown: Vec<&BankEntry> = page
                .banks
                .iter()
                .filter(|b| country.is_empty() || b.profile.country.eq_ignore_ascii_case(&country))
                .filter(|b| needle.is_empty() || b.profile.name.to_lowercase().contains(&needle))
                .collect();
            if shown.is_empty() {
                body.push_str(&format!("<p class=\"muted\">{}</p>", escape(texts.no_bank)));
            } else {
                body.push_str("<ul class=\"banks\">");
                for bank in shown {
                    body.push_str(&bank_form(texts, page, token, bank));
                }
                body.push_str("</ul>");
            }
        }
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/connect/{id}/cancel\">{}{}\
         <button class=\"link\" id=\"cancel\" type=\"submit\">{}</button></form></div>\
         <p class=\"muted\">{}</p>",
        hidden("token", token),
        hidden("lang", texts.lang),
        escape(texts.cancel),
        fill(texts.reassurance, "tenant", &page.tenant_name),
    ));
    layout_branded(
        texts,
        texts.title,
        &body,
        None,
        &page.branding,
        &page.tenant_name,
    )
}

/// The payment page: who is paid how much, from which bank, and the step to the bank.
pub fn payment_page(texts: &Texts, page: &kontor_service::PaymentPage, token: &str) -> String {
    let p = &page.payment;
    let bank_name = page
        .bank
        .as_ref()
        .map_or_else(|| p.bank_id.to_string(), |b| b.profile.name.clone());
    let amount = format!(
        "{} {}",
        p.amount.to_decimal_string(),
        p.amount.currency().code()
    );
    let reference = page
        .details
        .remittance
        .as_deref()
        .map(|r| {
            format!(
                "<dt>{}</dt><dd>{}</dd>",
                escape(texts.pay_reference),
                escape(r)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<div class=\"card\"><h1>{}</h1><p>{}</p><dl>\
         <dt>{}</dt><dd id=\"amount\"><b>{}</b></dd><dt>{}</dt><dd id=\"creditor\">{}</dd>{reference}\
         <dt>{}</dt><dd>{}</dd></dl>\
         <form method=\"post\" action=\"/pay/{id}/start\">{}{}\
         <button class=\"primary\" id=\"pay\" type=\"submit\">{}</button></form>\
         <form method=\"post\" action=\"/pay/{id}/cancel\">{}{}\
         <button class=\"link\" id=\"cancel\" type=\"submit\">{}</button></form></div>\
         <p class=\"muted\">{}</p>",
        escape(texts.pay_title),
        fill(texts.pay_intro, "tenant", &page.tenant_name),
        escape(texts.pay_amount),
        escape(&amount),
        escape(texts.pay_to),
        escape(&page.details.creditor_name),
        escape(texts.pay_from),
        escape(&bank_name),
        hidden("token", token),
        hidden("lang", texts.lang),
        fill(texts.pay_continue, "bank", &bank_name),
        hidden("token", token),
        hidden("lang", texts.lang),
        escape(texts.cancel),
        fill(texts.reassurance, "tenant", &page.tenant_name),
        id = p.id,
    );
    layout_branded(
        texts,
        texts.pay_title,
        &body,
        None,
        &page.branding,
        &page.tenant_name,
    )
}

/// While the user approves in the banking app: refreshes itself every two seconds. The same
/// page whether or not the bank knew the login name, with a way back to try again.
pub fn wait_page(texts: &Texts, tenant: &str, refresh_url: &str, connect_url: &str) -> String {
    let body = format!(
        "<div class=\"card\"><h1>{}</h1><p>{}</p><p class=\"muted\">{}</p>\
         <p class=\"muted\">{}</p><p><a id=\"retry\" href=\"{}\">{}</a></p></div>",
        escape(texts.wait_title),
        fill(texts.wait_text, "tenant", tenant),
        escape(texts.wait_refresh),
        escape(texts.wait_nothing),
        escape(connect_url),
        escape(texts.wait_retry),
    );
    layout(texts, texts.wait_title, &body, Some(refresh_url))
}

/// A message, with a way back when there is one.
pub fn message_page(texts: &Texts, title: &str, text: &str, back: Option<(&str, &str)>) -> String {
    message_page_branded(texts, title, text, back, &Branding::default(), "")
}

/// A message in the tenant's colours, with its logo (a payment's page once it is settled).
pub fn message_page_branded(
    texts: &Texts,
    title: &str,
    text: &str,
    back: Option<(&str, &str)>,
    branding: &Branding,
    tenant: &str,
) -> String {
    let link = back
        .map(|(label, url)| {
            format!(
                "<p><a id=\"back\" href=\"{}\">{}</a></p>",
                escape(url),
                escape(label)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<div class=\"card\"><h1>{}</h1><p>{}</p>{link}</div>",
        escape(title),
        escape(text)
    );
    layout_branded(texts, title, &body, None, branding, tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(fill("Hi {tenant}!", "tenant", "<b>"), "Hi &lt;b&gt;!");
    }
}
