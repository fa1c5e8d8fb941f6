//! The hosted pages' texts in English, German and French. Placeholders in braces are filled by the
//! renderer, always HTML-escaped.

use kontor_domain::PaymentStatus;
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
    /// On the waiting page, said whatever the bank answered (it may not know the login name).
    pub wait_nothing: &'static str,
    pub wait_retry: &'static str,
    /// The link's approval requests to the app are used up.
    pub starts_used_title: &'static str,
    pub starts_used_text: &'static str,
    pub back_to_banks: &'static str,
    pub invalid_link: &'static str,
    pub invalid_link_text: &'static str,
    /// The payment is being worked on by another request or the worker.
    pub busy_text: &'static str,
    pub settled: &'static str,
    pub back_to: &'static str,
    pub error_title: &'static str,
    pub country_label: &'static str,
    pub send_to_app: &'static str,
    pub pay_title: &'static str,
    pub pay_intro: &'static str,
    pub pay_to: &'static str,
    pub pay_amount: &'static str,
    pub pay_reference: &'static str,
    pub pay_from: &'static str,
    pub pay_continue: &'static str,
    pub pay_settled: &'static str,
    /// A start refused by a rate limit; `{seconds}` is the wait.
    pub rate_limited_title: &'static str,
    pub rate_limited_text: &'static str,
}

const EN: Texts = Texts {
    lang: "en",
    title: "Connect your bank",
    intro: "{tenant} would like to read information about your bank accounts.",
    shares: "What will be shared",
    share_accounts: "Your accounts: names, account numbers and owners",
    share_balances: "Your balances",
    share_transactions: "Your transactions, up to 24 months back",
    duration: "Access lasts up to {days} days. You can withdraw it at any time, here or at your bank.",
    choose_bank: "Choose your bank",
    search_placeholder: "Search by name",
    all_countries: "All countries",
    search: "Search",
    no_bank: "No bank matches your search.",
    continue_to: "Continue to {bank}",
    approve_in_app: "Approve in the banking app instead",
    login_name: "Your online banking login",
    cancel: "Cancel",
    reassurance: "You sign in on your bank's own pages. Neither {tenant} nor Kontor sees your password.",
    wait_title: "Approve in your banking app",
    wait_text: "Open your banking app and approve the request from {tenant}.",
    wait_refresh: "This page updates by itself.",
    wait_nothing: "Nothing arrived in your app? Check your login name and try again, or sign in on your bank's website instead.",
    wait_retry: "Try again",
    starts_used_title: "No more requests to your app",
    starts_used_text: "This link has sent all the approval requests to a banking app it may. Please sign in on your bank's website instead.",
    back_to_banks: "Back",
    invalid_link: "This link cannot be used",
    invalid_link_text: "The link is not valid or has expired. Please start again from the app you came from.",
    busy_text: "Your payment is being sent to your bank. Please go back and try again in a moment.",
    settled: "This connection is already {status}.",
    back_to: "Back to {tenant}",
    error_title: "Something went wrong",
    country_label: "Country",
    send_to_app: "Send to my banking app",
    pay_title: "Confirm a payment",
    pay_intro: "{tenant} asks you to confirm this payment at your bank.",
    pay_to: "To",
    pay_amount: "Amount",
    pay_reference: "Reference",
    pay_from: "From your account at",
    pay_continue: "Continue to {bank}",
    pay_settled: "This payment is already {status}.",
    rate_limited_title: "Too many attempts",
    rate_limited_text: "Please wait {seconds} seconds, then try again.",
};

const DE: Texts = Texts {
    lang: "de",
    title: "Bank verbinden",
    intro: "{tenant} möchte Informationen zu Ihren Bankkonten lesen.",
    shares: "Was geteilt wird",
    share_accounts: "Ihre Konten: Namen, Kontonummern und Inhaber",
    share_balances: "Ihre Kontostände",
    share_transactions: "Ihre Umsätze, bis zu 24 Monate zurück",
    duration: "Der Zugriff gilt bis zu {days} Tage. Sie können ihn jederzeit widerrufen, hier oder bei Ihrer Bank.",
    choose_bank: "Wählen Sie Ihre Bank",
    search_placeholder: "Nach Namen suchen",
    all_countries: "Alle Länder",
    search: "Suchen",
    no_bank: "Keine Bank passt zu Ihrer Suche.",
    continue_to: "Weiter zu {bank}",
    approve_in_app: "Stattdessen in der Banking-App freigeben",
    login_name: "Ihr Online-Banking-Login",
    cancel: "Abbrechen",
    reassurance: "Sie melden sich auf den Seiten Ihrer Bank an. Weder {tenant} noch Kontor sehen Ihr Passwort.",
    wait_title: "In der Banking-App freigeben",
    wait_text: "Öffnen Sie Ihre Banking-App und geben Sie die Anfrage von {tenant} frei.",
    wait_refresh: "Diese Seite aktualisiert sich von selbst.",
    wait_nothing: "In Ihrer App ist nichts angekommen? Prüfen Sie Ihren Login und versuchen Sie es erneut, oder melden Sie sich stattdessen auf der Website Ihrer Bank an.",
    wait_retry: "Erneut versuchen",
    starts_used_title: "Keine weiteren Anfragen an Ihre App",
    starts_used_text: "Über diesen Link wurden alle erlaubten Freigabe-Anfragen an eine Banking-App gesendet. Bitte melden Sie sich stattdessen auf der Website Ihrer Bank an.",
    back_to_banks: "Zurück",
    invalid_link: "Dieser Link kann nicht verwendet werden",
    invalid_link_text: "Der Link ist ungültig oder abgelaufen. Bitte beginnen Sie erneut in der App, aus der Sie kamen.",
    busy_text: "Ihre Zahlung wird gerade an Ihre Bank übermittelt. Bitte gehen Sie zurück und versuchen Sie es gleich noch einmal.",
    settled: "Diese Verbindung ist bereits {status}.",
    back_to: "Zurück zu {tenant}",
    error_title: "Etwas ist schiefgelaufen",
    country_label: "Land",
    send_to_app: "An meine Banking-App senden",
    pay_title: "Zahlung bestätigen",
    pay_intro: "{tenant} bittet Sie, diese Zahlung bei Ihrer Bank zu bestätigen.",
    pay_to: "An",
    pay_amount: "Betrag",
    pay_reference: "Verwendungszweck",
    pay_from: "Von Ihrem Konto bei",
    pay_continue: "Weiter zu {bank}",
    pay_settled: "Diese Zahlung ist bereits {status}.",
    rate_limited_title: "Zu viele Versuche",
    rate_limited_text: "Bitte warten Sie {seconds} Sekunden und versuchen Sie es dann erneut.",
};

const FR: Texts = Texts {
    lang: "fr",
    title: "Connecter votre banque",
    intro: "{tenant} souhaite consulter des informations sur vos comptes bancaires.",
    shares: "Ce qui sera partagé",
    share_accounts: "Vos comptes : noms, numéros de compte et titulaires",
    share_balances: "Vos soldes",
    share_transactions: "Vos opérations, jusqu’à 24 mois en arrière",
    duration: "L’accès dure au plus {days} jours. Vous pouvez le retirer à tout moment, ici ou auprès de votre banque.",
    choose_bank: "Choisissez votre banque",
    search_placeholder: "Rechercher par nom",
    all_countries: "Tous les pays",
    search: "Rechercher",
    no_bank: "Aucune banque ne correspond à votre recherche.",
    continue_to: "Continuer vers {bank}",
    approve_in_app: "Valider plutôt dans l’application bancaire",
    login_name: "Votre identifiant de banque en ligne",
    cancel: "Annuler",
    reassurance: "Vous vous connectez sur les pages de votre banque. Ni {tenant} ni Kontor ne voient votre mot de passe.",
    wait_title: "Validez dans votre application bancaire",
    wait_text: "Ouvrez votre application bancaire et validez la demande de {tenant}.",
    wait_refresh: "Cette page se met à jour toute seule.",
    wait_nothing: "Rien n’est arrivé dans votre application ? Vérifiez votre identifiant et réessayez, ou connectez-vous plutôt sur le site de votre banque.",
    wait_retry: "Réessayer",
    starts_used_title: "Plus de demandes vers votre application",
    starts_used_text: "Ce lien a envoyé toutes les demandes de validation permises à une application bancaire. Veuillez plutôt vous connecter sur le site de votre banque.",
    back_to_banks: "Retour",
    invalid_link: "Ce lien ne peut pas être utilisé",
    invalid_link_text: "Le lien n’est pas valide ou a expiré. Veuillez recommencer depuis l’application d’où vous venez.",
    busy_text: "Votre paiement est en cours d’envoi à votre banque. Veuillez revenir en arrière et réessayer dans un instant.",
    settled: "Cette connexion est déjà {status}.",
    back_to: "Retour vers {tenant}",
    error_title: "Un problème est survenu",
    country_label: "Pays",
    send_to_app: "Envoyer à mon application bancaire",
    pay_title: "Confirmer un paiement",
    pay_intro: "{tenant} vous demande de confirmer ce paiement auprès de votre banque.",
    pay_to: "À",
    pay_amount: "Montant",
    pay_reference: "Référence",
    pay_from: "Depuis votre compte chez",
    pay_continue: "Continuer vers {bank}",
    pay_settled: "Ce paiement est déjà {status}.",
    rate_limited_title: "Trop de tentatives",
    rate_limited_text: "Veuillez patienter {seconds} secondes, puis réessayer.",
};

pub fn texts(language: Language) -> &'static Texts {
    match language {
        Language::En => &EN,
        Language::De => &DE,
        Language::Fr => &FR,
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
        (Language::Fr, "active") => "active",
        (Language::Fr, "expired") => "expirée",
        (Language::Fr, "revoked") => "révoquée",
        (Language::Fr, "failed") => "échouée",
        (Language::Fr, _) => "en attente",
        (Language::En, "active") => "active",
        (Language::En, "expired") => "expired",
        (Language::En, "revoked") => "revoked",
        (Language::En, "failed") => "failed",
        (Language::En, _) => "pending",
    }
}

/// A payment status in words, for "This payment is already {status}." (each status its own word,
/// in every language).
pub fn payment_status_word(language: Language, status: PaymentStatus) -> &'static str {
    use PaymentStatus as S;
    match (language, status) {
        (Language::En, S::Pending) => "pending",
        (Language::En, S::Authorised) => "authorised",
        (Language::En, S::Completed) => "completed",
        (Language::En, S::Rejected) => "rejected",
        (Language::En, S::Cancelled) => "cancelled",
        (Language::En, S::Unknown) => "in an unclear state",
        (Language::De, S::Pending) => "ausstehend",
        (Language::De, S::Authorised) => "autorisiert",
        (Language::De, S::Completed) => "ausgeführt",
        (Language::De, S::Rejected) => "abgelehnt",
        (Language::De, S::Cancelled) => "storniert",
        (Language::De, S::Unknown) => "in einem unklaren Zustand",
        (Language::Fr, S::Pending) => "en attente",
        (Language::Fr, S::Authorised) => "autorisé",
        (Language::Fr, S::Completed) => "exécuté",
        (Language::Fr, S::Rejected) => "refusé",
        (Language::Fr, S::Cancelled) => "annulé",
        (Language::Fr, S::Unknown) => "dans un état incertain",
    }
}

/// A country's name, for the bank list (ISO 3166-1 alpha-2 codes the directory uses).
pub fn country_name(language: Language, code: &str) -> String {
    let name = match (language, code) {
        (Language::En, "DE") => "Germany",
        (Language::Fr, "DE") => "Allemagne",
        (Language::De, "DE") => "Deutschland",
        (Language::En, "FR") => "France",
        (Language::Fr, "FR") => "France",
        (Language::De, "FR") => "Frankreich",
        (Language::En, "GB") => "United Kingdom",
        (Language::Fr, "GB") => "Royaume-Uni",
        (Language::De, "GB") => "Vereinigtes Königreich",
        (Language::En, "AT") => "Austria",
        (Language::Fr, "AT") => "Autriche",
        (Language::De, "AT") => "Österreich",
        (Language::En, "NL") => "Netherlands",
        (Language::Fr, "NL") => "Pays-Bas",
        (Language::De, "NL") => "Niederlande",
        (Language::En, "BE") => "Belgium",
        (Language::Fr, "BE") => "Belgique",
        (Language::De, "BE") => "Belgien",
        (Language::En, "ES") => "Spain",
        (Language::Fr, "ES") => "Espagne",
        (Language::De, "ES") => "Spanien",
        (Language::En, "IT") => "Italy",
        (Language::Fr, "IT") => "Italie",
        (Language::De, "IT") => "Italien",
        (Language::En, "IE") => "Ireland",
        (Language::Fr, "IE") => "Irlande",
        (Language::De, "IE") => "Irland",
        _ => return code.to_owned(),
    };
    name.to_owned()
}

/// The country a user's region stands for, to preselect the bank list (`uk` is `GB`).
pub fn region_country(region: &str) -> String {
    match region {
        "uk" => "GB".to_owned(),
        other => other.to_ascii_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(t: &Texts) -> Vec<(&'static str, &'static str)> {
        vec![
            ("lang", t.lang),
            ("title", t.title),
            ("intro", t.intro),
            ("shares", t.shares),
            ("share_accounts", t.share_accounts),
            ("share_balances", t.share_balances),
            ("share_transactions", t.share_transactions),
            ("duration", t.duration),
            ("choose_bank", t.choose_bank),
            ("search_placeholder", t.search_placeholder),
            ("all_countries", t.all_countries),
            ("search", t.search),
            ("no_bank", t.no_bank),
            ("continue_to", t.continue_to),
            ("approve_in_app", t.approve_in_app),
            ("login_name", t.login_name),
            ("cancel", t.cancel),
            ("reassurance", t.reassurance),
            ("wait_title", t.wait_title),
            ("wait_text", t.wait_text),
            ("wait_refresh", t.wait_refresh),
            ("wait_nothing", t.wait_nothing),
            ("wait_retry", t.wait_retry),
            ("starts_used_title", t.starts_used_title),
            ("starts_used_text", t.starts_used_text),
            ("back_to_banks", t.back_to_banks),
            ("invalid_link", t.invalid_link),
            ("invalid_link_text", t.invalid_link_text),
            ("busy_text", t.busy_text),
            ("settled", t.settled),
            ("back_to", t.back_to),
            ("error_title", t.error_title),
            ("country_label", t.country_label),
            ("send_to_app", t.send_to_app),
            ("pay_title", t.pay_title),
            ("pay_intro", t.pay_intro),
            ("pay_to", t.pay_to),
            ("pay_amount", t.pay_amount),
            ("pay_reference", t.pay_reference),
            ("pay_from", t.pay_from),
            ("pay_continue", t.pay_continue),
            ("pay_settled", t.pay_settled),
        ]
    }

    fn placeholders(text: &str) -> Vec<&str> {
        let mut found: Vec<&str> = text
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect();
        found.sort_unstable();
        found
    }

    /// Every translation fills the same placeholders as the English text, is not left in
    /// English by mistake, and names its own language.
    #[test]
    fn every_language_says_everything_with_the_same_placeholders() {
        let english = fields(&EN);
        for language in Language::ALL {
            let t = texts(language);
            assert_eq!(t.lang, language.as_str());
            for ((name, text), (_, en)) in fields(t).into_iter().zip(&english) {
                assert!(!text.trim().is_empty(), "{}: {name} is empty", t.lang);
                assert_eq!(placeholders(text), placeholders(en), "{}: {name}", t.lang);
                if language != Language::En && name != "lang" && en.len() > 12 {
                    assert_ne!(text, *en, "{}: {name} is still English", t.lang);
                }
            }
        }
    }

    #[test]
    fn french_names_the_countries_and_statuses() {
        assert_eq!(country_name(Language::Fr, "GB"), "Royaume-Uni");
        assert_eq!(country_name(Language::Fr, "DE"), "Allemagne");
        assert_eq!(status_word(Language::Fr, "revoked"), "révoquée");
    }

    #[test]
    fn every_payment_status_has_its_own_word_in_every_language() {
        use PaymentStatus as S;
        let all = [
            S::Pending,
            S::Authorised,
            S::Completed,
            S::Rejected,
            S::Cancelled,
            S::Unknown,
        ];
        for language in [Language::En, Language::De, Language::Fr] {
            let words: std::collections::HashSet<_> = all
                .iter()
                .map(|s| payment_status_word(language, *s))
                .collect();
            assert_eq!(words.len(), all.len(), "{language:?}: {words:?}");
        }
        assert_eq!(
            payment_status_word(Language::De, S::Completed),
            "ausgeführt"
        );
        assert_eq!(payment_status_word(Language::Fr, S::Cancelled), "annulé");
    }
}
