//! A German salaried customer's life at her home bank (alice at Sonnenbank).

use super::{
    ALL_MONTHS, AccountTemplate, Adjust, Atm, CardSpend, Flow, Lang, MerchantTemplate, Profile,
    Recurring, Schedule, Settlement, months,
};
use crate::data::model::AccountKind;

const CURRENT: usize = 0;
const SAVINGS: usize = 1;
const CARD: usize = 2;

#[rustfmt::skip]
const ACCOUNTS: &[AccountTemplate] = &[
    AccountTemplate { kind: AccountKind::Current, product: "Girokonto Sonne Plus", nickname: "Girokonto", opening_balance: 241_235, credit_limit: 150_000 },
    AccountTemplate { kind: AccountKind::Savings, product: "Tagesgeld Sonne", nickname: "Tagesgeld", opening_balance: 850_000, credit_limit: 0 },
    AccountTemplate { kind: AccountKind::CreditCard, product: "Sonnenbank Visa Gold", nickname: "Kreditkarte", opening_balance: 0, credit_limit: 300_000 },
];

const fn monthly(day: u8) -> Schedule {
    Schedule::Monthly {
        day,
        adjust: Adjust::Forward,
    }
}

#[rustfmt::skip]
const RECURRING: &[Recurring] = &[
    Recurring { account: CURRENT, schedule: Schedule::LastBusinessDay, months: ALL_MONTHS, min: 341_255, max: 341_255, raise_permille: 25, flow: Flow::Salary, counterparty: "Nordlicht Software GmbH", counterparty_iban: "DE65100700000123456789", remittance: "LOHN/GEHALT {mm}/{yyyy} PERS.NR. 4711" },
    Recurring { account: CURRENT, schedule: monthly(1), months: ALL_MONTHS, min: -115_000, max: -115_000, raise_permille: 20, flow: Flow::StandingOrder, counterparty: "Hausverwaltung Meyer & Söhne GmbH", counterparty_iban: "DE34200505501234567890", remittance: "Miete {month} {yyyy} Whg. 3.OG links" },
    Recurring { account: CURRENT, schedule: monthly(3), months: ALL_MONTHS, min: -8_900, max: -8_900, raise_permille: 60, flow: Flow::DirectDebit { mandate: "SWS-KD-2210457", creditor_id: "DE32ZZZ00000123456", }, counterparty: "Stadtwerke Sonnenstadt GmbH", counterparty_iban: "DE89370400440532013000", remittance: "Abschlag Strom/Gas {mm}/{yyyy} Vertragskonto 2210457" },
    Recurring { account: CURRENT, schedule: monthly(10), months: ALL_MONTHS, min: -3_995, max: -5_210, raise_permille: 0, flow: Flow::DirectDebit { mandate: "TK-M-0049388127", creditor_id: "DE58ZZZ00000815471", }, counterparty: "Telekom Deutschland GmbH", counterparty_iban: "", remittance: "Mobilfunk Rechnung {mm}/{yyyy} Kundennr. 49388127" },
    Recurring { account: CURRENT, schedule: monthly(15), months: ALL_MONTHS, min: -3_499, max: -3_499, raise_permille: 0, flow: Flow::DirectDebit { mandate: "VF-KAB-77120934", creditor_id: "DE74ZZZ00000493822", }, counterparty: "Vodafone GmbH", counterparty_iban: "", remittance: "Kabel Internet {month} {yyyy}" },
    Recurring { account: CURRENT, schedule: monthly(15), months: months(&[2, 5, 8, 11]), min: -5_508, max: -5_508, raise_permille: 0, flow: Flow::DirectDebit { mandate: "RB-2019-3318742", creditor_id: "DE63ZZZ00000077211", }, counterparty: "Rundfunk ARD, ZDF, DRadio", counterparty_iban: "", remittance: "Rundfunkbeitrag Beitragsnr. 331 874 209" },
    Recurring { account: CURRENT, schedule: monthly(1), months: months(&[1, 4, 7, 10]), min: -12_840, max: -12_840, raise_permille: 30, flow: Flow::DirectDebit { mandate: "AZ-HP-55120988", creditor_id: "DE30ZZZ00000199831", }, counterparty: "Allianz Versicherungs-AG", counterparty_iban: "", remittance: "Privathaftpflicht/Hausrat Vers.Nr. 55120988" },
    Recurring { account: CURRENT, schedule: monthly(1), months: ALL_MONTHS, min: -2_490, max: -2_490, raise_permille: 0, flow: Flow::DirectDebit { mandate: "FITX-M-0813377", creditor_id: "DE04ZZZ00000531166", }, counterparty: "FitX Deutschland GmbH", counterparty_iban: "", remittance: "Mitgliedsbeitrag {month} {yyyy}" },
    Recurring { account: CURRENT, schedule: monthly(20), months: ALL_MONTHS, min: -1_099, max: -1_099, raise_permille: 0, flow: Flow::DirectDebit { mandate: "5NJJ224Q2RTMW", creditor_id: "LU96ZZZ0000000000000000058", }, counterparty: "PayPal Europe S.a.r.l. et Cie S.C.A", counterparty_iban: "", remittance: "PP.7723.PP . Spotify AB, Ihr Einkauf bei Spotify AB" },
    Recurring { account: CURRENT, schedule: monthly(2), months: ALL_MONTHS, min: -30_000, max: -30_000, raise_permille: 0, flow: Flow::TransferToOwn { to: SAVINGS, keep: 220_000, }, counterparty: "Alice Schneider", counterparty_iban: "", remittance: "Sparen {month} {yyyy}" },
    Recurring { account: CURRENT, schedule: Schedule::LastBusinessDay, months: ALL_MONTHS, min: -490, max: -490, raise_permille: 0, flow: Flow::Fee, counterparty: "Sonnenbank", counterparty_iban: "", remittance: "Kontoführungsentgelt {mm}/{yyyy}" },
    Recurring { account: SAVINGS, schedule: Schedule::LastBusinessDay, months: months(&[3, 6, 9, 12]), min: 800, max: 1_650, raise_permille: 0, flow: Flow::Interest, counterparty: "Sonnenbank", counterparty_iban: "", remittance: "Zinsgutschrift Tagesgeld" },
    Recurring { account: CARD, schedule: monthly(7), months: ALL_MONTHS, min: -1_399, max: -1_399, raise_permille: 0, flow: Flow::CardSubscription { city: "Amsterdam", mcc: "4899", }, counterparty: "NETFLIX.COM", counterparty_iban: "", remittance: "NETFLIX.COM Amsterdam NL" },
    Recurring { account: CARD, schedule: monthly(19), months: ALL_MONTHS, min: -899, max: -899, raise_permille: 0, flow: Flow::CardSubscription { city: "Luxembourg", mcc: "5968", }, counterparty: "Amazon Prime*DE", counterparty_iban: "", remittance: "Amazon Prime*DE Mitgliedschaft" },
];

/// A merchant: amount range, weight, and the chances (in percent) of a refund and of a booked
/// amount that differs from the authorisation.
const fn m(
    name: &'static str,
    city: &'static str,
    mcc: &'static str,
    range: (i64, i64),
    weight: u32,
    odds: (u64, u64),
) -> MerchantTemplate {
    MerchantTemplate {
        name,
        city,
        mcc,
        min: range.0,
        max: range.1,
        weight,
        refund_percent: odds.0,
        adjust_percent: odds.1,
    }
}

#[rustfmt::skip]
const GIROCARD: &[MerchantTemplate] = &[
    m( "REWE Markt GmbH", "Sonnenstadt", "5411", (1_200, 8_500), 30, (0, 0)),
    m( "EDEKA Center Wagner", "Sonnenstadt", "5411", (800, 6_000), 15, (0, 0)),
    m("ALDI SUED", "Sonnenstadt", "5411", (900, 5_500), 15, (0, 0)),
    m( "LIDL DIENSTL. GMBH", "Sonnenstadt", "5411", (700, 4_800), 12, (0, 0)),
    m( "dm-drogerie markt", "Sonnenstadt", "5912", (400, 3_500), 10, (0, 0)),
    m("ROSSMANN", "Sonnenstadt", "5912", (300, 2_500), 6, (0, 0)),
    m("BACKWERK", "Sonnenstadt", "5814", (250, 900), 10, (0, 0)),
    m( "Shell Deutschland", "Sonnenstadt", "5541", (3_000, 7_500), 4, (0, 0)),
    m( "DB Vertrieb GmbH", "Frankfurt", "4112", (1_990, 8_990), 4, (0, 0)),
    m( "IKEA Deutschland", "Sonnenstadt", "5712", (1_500, 25_000), 1, (10, 0)),
    m( "MediaMarkt", "Sonnenstadt", "5732", (2_000, 30_000), 1, (15, 0)),
    m( "Stern-Apotheke", "Sonnenstadt", "5912", (500, 3_000), 3, (0, 0)),
    m( "Restaurant Zur Linde", "Sonnenstadt", "5812", (2_400, 6_800), 4, (0, 60)),
];

#[rustfmt::skip]
const VISA: &[MerchantTemplate] = &[
    m( "AMAZON EU S.A R.L.", "Luxembourg", "5942", (999, 8_999), 30, (10, 0)),
    m("ZALANDO SE", "Berlin", "5651", (2_995, 12_995), 10, (30, 0)),
    m( "Lieferando.de", "Berlin", "5814", (1_800, 4_500), 15, (0, 0)),
    m( "Booking.com", "Amsterdam", "4722", (9_000, 42_000), 2, (5, 0)),
    m("UBER *TRIP", "Amsterdam", "4121", (900, 3_500), 6, (0, 40)),
    m("APPLE.COM/BILL", "Cork", "5818", (99, 1_299), 5, (0, 0)),
    m( "Thalia Buecher", "Sonnenstadt", "5942", (1_200, 4_500), 4, (5, 0)),
];

#[rustfmt::skip]
const CARDS: &[CardSpend] = &[
    CardSpend { account: CURRENT, count_weights: &[35, 40, 20, 5], merchants: GIROCARD },
    CardSpend { account: CARD, count_weights: &[70, 25, 5], merchants: VISA },
];

pub const PROFILE: Profile = Profile {
    accounts: ACCOUNTS,
    recurring: RECURRING,
    card_spend: CARDS,
    atm: Some(Atm {
        account: CURRENT,
        chance_percent: 6,
        amounts: &[5_000, 10_000, 20_000],
        name: "Sonnenbank Geldautomat",
        city: "Sonnenstadt",
    }),
    settlement: Some(Settlement {
        card: CARD,
        from: CURRENT,
        statement_day: 15,
        debit_day: 22,
        debit_text: "Kreditkartenabrechnung Visa Gold {mm}/{yyyy}",
        credit_text: "Ausgleich Kreditkartenabrechnung {mm}/{yyyy}",
    }),
    card_scheme: "VISA",
    lang: Lang::De,
};
