//! The hosted pages' texts in English and German. Placeholders in braces are filled by the
//! renderer, always HTML-escaped.

use kontor_domain::connection::Language;

#[derive(Debug, Clone, Copy)]
pub struct Texts {
    pub lang: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    pub shares: &'static str,
    pub share_accounts: &'static str,
    pub share_balances: &'static str,
    pub share_transactions: &'static str,
    pub duration: &'static str,
    pub choose_bank: &'static str,
    pub search_placeholder: &'static str,
    pub all_countries: &'static str,
    pub search: &'static str,
    pub no_bank: &'static str,
    pub continue_to: &'static str,
    pub approve_in_app: &'static str,
    pub login_name: &'static str,
    pub cancel: &'static str,
    pub reassurance: &'static str,
    pub wait_title: &'static str,
    pub wait_text: &'static str,
    pub wait_refresh: &'static str,
    pub invalid_link: &'static str,
    pub invalid_link_text: &'static str,
    pub settled: &'static str,
    pub back_to: &'static str,
    pub error_title: &'static str,
}

const EN: Texts = Texts {
    lang: "en",
    title: "Connect your bank",
    intro: "{tenant} would like to read information about your bank accounts.",
    shares: "What will be shared",
    share_accounts: "Your accounts: names, account numbers and owners",
    share_balances: "Your balances",
    share_transactions: "Your transactions, up to 24 months back",
    duration: "Access lasts {days} days. You can withdraw it at any time, here or at your bank.",
    choose_bank: "Choose your bank",
    search_placeholder: "Search by name",
    all_countries: "All countries",
    search: "Search",
    no_bank: "No bank matches your search.",
    continue_to: "Continue to {bank}",
    approve_in_app: "Approve in my banking app instead",
    login_name: "Your online banking login",
    cancel: "Cancel",
    reassurance: "You will sign in on your bank's own pages. Kontor never sees your password.",
    wait_title: "Approve in your banking app",
    wait_text: "Open your banking app and approve the request from {tenant}.",
    wait_refresh: "This page updates by itself.",
    invalid_link: "This link cannot be used",
    invalid_link_text: "The link is not valid or has expired. Please start again from the app you came from.",
    settled: "This connection is already {status}.",
    back_to: "Back to {tenant}",
    error_title: "Something went wrong",
};

const DE: Texts = Texts {
    lang: "de",
    title: "Bank verbinden",
    intro: "{tenant} möchte Informationen zu Ihren Bankkonten lesen.",
    shares: "Was geteilt wird",
    share_accounts: "Ihre Konten: Namen, Kontonummern und Inhaber",
    share_balances: "Ihre Kontostände",
    share_transactions: "Ihre Umsätze, bis zu 24 Monate zurück",
    duration: "Der Zugriff gilt {days} Tage. Sie können ihn jederzeit widerrufen, hier oder bei Ihrer Bank.",
    choose_bank: "Wählen Sie Ihre Bank",
    search_placeholder: "Nach Namen suchen",
    all_countries: "Alle Länder",
    search: "Suchen",
    no_bank: "Keine Bank passt zu Ihrer Suche.",
    continue_to: "Weiter zu {bank}",
    approve_in_app: "Stattdessen in meiner Banking-App freigeben",
    login_name: "Ihr Online-Banking-Login",
    cancel: "Abbrechen",
    reassurance: "Sie melden sich auf den Seiten Ihrer Bank an. Kontor sieht Ihr Passwort nie.",
    wait_title: "In der Banking-App freigeben",
    wait_text: "Öffnen Sie Ihre Banking-App und geben Sie die Anfrage von {tenant} frei.",
    wait_refresh: "Diese Seite aktualisiert sich von selbst.",
    invalid_link: "Dieser Link kann nicht verwendet werden",
    invalid_link_text: "Der Link ist ungültig oder abgelaufen. Bitte beginnen Sie erneut in der App, aus der Sie kamen.",
    settled: "Diese Verbindung ist bereits {status}.",
    back_to: "Zurück zu {tenant}",
    error_title: "Etwas ist schiefgelaufen",
};

pub fn texts(language: Language) -> &'static Texts {
    match language {
        Language::En => &EN,
        Language::De => &DE,
    }
}

/// A connection status in words.
pub fn status_word(language: Language, status: &str) -> &'static str {
    match (language, status) {
        (Language::De, "active") => "aktiv",
        (Language::De, "expired") => "abgelaufen",
        (Language::De, "revoked") => "widerrufen",
        (Language::De, "failed") => "fehlgeschlagen",
        (Language::De, _) => "ausstehend",
        (Language::En, "active") => "active",
        (Language::En, "expired") => "expired",
        (Language::En, "revoked") => "revoked",
        (Language::En, "failed") => "failed",
        (Language::En, _) => "pending",
    }
}
