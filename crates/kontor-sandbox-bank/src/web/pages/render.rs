//! HTML for the SCA pages in each bank's colours and language. Element ids are part of the
//! sandbox's interface (browser tests drive them) and are listed in the README.

use axum::response::Html;

use crate::state::Bank;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
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

/// Labels in the bank's language.
#[derive(Debug, Clone, Copy)]
pub struct Labels {
    pub login_title: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub continue_: &'static str,
    pub cancel: &'static str,
    pub otp_title: &'static str,
    pub otp_hint: &'static str,
    pub otp: &'static str,
    pub confirm: &'static str,
    pub accounts_title: &'static str,
    pub wrong_login: &'static str,
    pub wrong_code: &'static str,
    pub attempts_left: &'static str,
    pub failed_title: &'static str,
    pub done_title: &'static str,
    pub back: &'static str,
    pub app_title: &'static str,
    pub approve: &'static str,
    pub reject: &'static str,
    pub nothing_pending: &'static str,
}

pub fn labels(language: &str) -> Labels {
    match language {
        "de" => Labels {
            login_title: "Anmelden",
            username: "Anmeldename",
            password: "Passwort",
            continue_: "Weiter",
            cancel: "Abbrechen",
            otp_title: "Freigabe mit TAN",
            otp_hint: "Wir haben Ihnen eine TAN gesendet (Sandbox: 123456).",
            otp: "TAN",
            confirm: "Freigeben",
            accounts_title: "Konten auswählen",
            wrong_login: "Anmeldename oder Passwort ist falsch.",
            wrong_code: "Die TAN ist falsch.",
            attempts_left: "Verbleibende Versuche",
            failed_title: "Freigabe fehlgeschlagen",
            done_title: "Freigabe erteilt",
            back: "Zurück zum Anbieter",
            app_title: "Sonnen-App: Freigaben",
            approve: "Freigeben",
            reject: "Ablehnen",
            nothing_pending: "Keine offenen Freigaben.",
        },
        "fr" => Labels {
            login_title: "Connexion",
            username: "Identifiant",
            password: "Mot de passe",
            continue_: "Continuer",
            cancel: "Annuler",
            otp_title: "Validation par code",
            otp_hint: "Un code vous a été envoyé par SMS (sandbox : 123456).",
            otp: "Code de validation",
            confirm: "Valider",
            accounts_title: "Choisir les comptes",
            wrong_login: "Identifiant ou mot de passe incorrect.",
            wrong_code: "Le code est incorrect.",
            attempts_left: "Essais restants",
            failed_title: "Validation refusée",
            done_title: "Validation effectuée",
            back: "Retour au service",
            app_title: "Application mobile : validations",
            approve: "Valider",
            reject: "Refuser",
            nothing_pending: "Aucune opération à valider.",
        },
        _ => Labels {
            login_title: "Log in",
            username: "Username",
            password: "Password",
            continue_: "Continue",
            cancel: "Cancel",
            otp_title: "Confirm with a one-time code",
            otp_hint: "We sent you a one-time code (sandbox: 123456).",
            otp: "One-time code",
            confirm: "Confirm",
            accounts_title: "Choose accounts",
            wrong_login: "Wrong username or password.",
            wrong_code: "Wrong code.",
            attempts_left: "Attempts left",
            failed_title: "Authorisation failed",
            done_title: "Authorisation complete",
            back: "Return to the provider",
            app_title: "Mobile app: approvals",
            approve: "Approve",
            reject: "Reject",
            nothing_pending: "Nothing to approve.",
        },
    }
}

/// A complete page: bank header, the step's content, footer. `step` lands in
/// `<body data-step="…">` so tests can tell pages apart without parsing text.
pub fn page(bank: &Bank, step: &str, title: &str, content: &str) -> Html<String> {
    let theme = &bank.config.theme;
    let name = escape(&bank.config.name);
    Html(format!(
        r#"<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – {name}</title>
<style>
body {{ margin: 0; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; background: {bg}; color: #1f2937; }}
#bank-header {{ background: {primary}; color: #fff; padding: 18px 24px; }}
#bank-header .logo {{ font-size: 22px; font-weight: 700; letter-spacing: .5px; }}
#bank-header .tagline {{ font-size: 13px; opacity: .85; }}
main {{ max-width: 440px; margin: 32px auto; background: #fff; border-radius: 10px; padding: 24px 28px; box-shadow: 0 2px 12px rgba(0,0,0,.08); }}
h1 {{ font-size: 20px; margin-top: 0; color: {primary}; }}
label {{ display: block; margin: 14px 0 4px; font-weight: 600; font-size: 14px; }}
input[type=text], input[type=password] {{ width: 100%; box-sizing: border-box; padding: 10px; border: 1px solid #cbd5e1; border-radius: 6px; font-size: 16px; }}
button {{ margin-top: 18px; padding: 10px 18px; border: 0; border-radius: 6px; font-size: 15px; cursor: pointer; }}
button.primary {{ background: {accent}; color: #fff; width: 100%; }}
button.secondary {{ background: transparent; color: #475569; text-decoration: underline; width: 100%; }}
.error {{ background: #fee2e2; color: #991b1b; padding: 10px; border-radius: 6px; }}
.summary {{ background: #f1f5f9; padding: 10px 12px; border-radius: 6px; font-size: 14px; }}
.account {{ display: flex; gap: 8px; align-items: center; margin: 8px 0; font-size: 14px; }}
footer {{ text-align: center; font-size: 12px; color: #64748b; margin-bottom: 24px; }}
</style>
</head>
<body data-step="{step}" data-bank="{bank_id}">
<header id="bank-header"><div class="logo">{name}</div><div class="tagline">{tagline}</div></header>
<main>
<h1 id="title">{title}</h1>
{content}
</main>
<footer>Kontor sandbox bank – test data only. Users: alice, bob, carol · password <code>sandbox</code> · code <code>123456</code></footer>
</body>
</html>"#,
        lang = escape(&theme.language),
        title = escape(title),
        bg = escape(&theme.background),
        primary = escape(&theme.primary),
        accent = escape(&theme.accent),
        tagline = escape(&theme.tagline),
        bank_id = escape(bank.id()),
    ))
}

/// The error paragraph, or nothing.
pub fn error_block(error: Option<&str>) -> String {
    error.map_or_else(String::new, |e| {
        format!(
            r#"<p id="error" class="error" role="alert">{}</p>"#,
            escape(e)
        )
    })
}
