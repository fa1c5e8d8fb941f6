//! A side account at a bank that is not the customer's home bank (carol in Germany and the UK).

use super::{
    ALL_MONTHS, AccountTemplate, Adjust, CardSpend, Flow, Lang, MerchantTemplate, Profile,
    Recurring, Schedule, Settlement,
};
use crate::data::model::AccountKind;

const fn m(
    name: &'static str,
    city: &'static str,
    mcc: &'static str,
    min: i64,
    max: i64,
    weight: u32,
    refund_percent: u64,
) -> MerchantTemplate {
    MerchantTemplate {
        name,
        city,
        mcc,
        min,
        max,
        weight,
        refund_percent,
        adjust_percent: 0,
    }
}

const EUR_ACCOUNTS: &[AccountTemplate] = &[AccountTemplate {
    kind: AccountKind::Current,
    product: "Girokonto Basis",
    nickname: "Zweitkonto",
    opening_balance: 64_000,
    credit_limit: 0,
}];

#[rustfmt::skip]
const EUR_RECURRING: &[Recurring] = &[
    Recurring { account: 0, schedule: Schedule::Monthly { day: 16, adjust: Adjust::Forward, }, months: ALL_MONTHS, min: 15_000, max: 15_000, raise_permille: 0, flow: Flow::IncomingTransfer, counterparty: "Carol Dubois", counterparty_iban: "FR7630003036200005018372569", remittance: "Virement mensuel compte Allemagne" },
    Recurring { account: 0, schedule: Schedule::Monthly { day: 12, adjust: Adjust::Forward, }, months: ALL_MONTHS, min: -1_099, max: -1_099, raise_permille: 0, flow: Flow::DirectDebit { mandate: "SPOT-DE-8812233", creditor_id: "DE58ZZZ00000815471", }, counterparty: "Spotify AB", counterparty_iban: "", remittance: "Spotify Premium {month} {yyyy}" },
    Recurring { account: 0, schedule: Schedule::LastBusinessDay, months: ALL_MONTHS, min: -290, max: -290, raise_permille: 0, flow: Flow::Fee, counterparty: "Bank", counterparty_iban: "", remittance: "Kontoführungsentgelt {mm}/{yyyy}" },
];

#[rustfmt::skip]
const EUR_MERCHANTS: &[MerchantTemplate] = &[
    m( "DB Vertrieb GmbH", "Frankfurt", "4112", 1_990, 12_990, 20, 10),
    m("REWE Markt GmbH", "Berlin", "5411", 800, 4_500, 30, 0),
    m( "AMAZON EU S.A R.L.", "Luxembourg", "5942", 999, 5_999, 25, 10),
    m("Einstein Kaffee", "Berlin", "5814", 320, 1_100, 25, 0),
];

const EUR_CARDS: &[CardSpend] = &[CardSpend {
    account: 0,
    count_weights: &[88, 10, 2],
    merchants: EUR_MERCHANTS,
}];

pub const EUR_SIDE: Profile = Profile {
    accounts: EUR_ACCOUNTS,
    recurring: EUR_RECURRING,
    card_spend: EUR_CARDS,
    atm: None,
    settlement: None,
    card_scheme: "VISA",
    lang: Lang::De,
};

#[rustfmt::skip]
const UK_ACCOUNTS: &[AccountTemplate] = &[
    AccountTemplate { kind: AccountKind::Current, product: "Thames Classic Current Account", nickname: "London account", opening_balance: 42_000, credit_limit: 0 },
    AccountTemplate { kind: AccountKind::CreditCard, product: "Thames Everyday Visa", nickname: "Travel card", opening_balance: 0, credit_limit: 150_000 },
];

#[rustfmt::skip]
const UK_RECURRING: &[Recurring] = &[
    Recurring { account: 0, schedule: Schedule::Monthly { day: 27, adjust: Adjust::Backward, }, months: ALL_MONTHS, min: 18_000, max: 42_000, raise_permille: 0, flow: Flow::IncomingTransfer, counterparty: "NORTHWIND MEDIA LTD", counterparty_iban: "GB28LOYD30963412873465", remittance: "INVOICE CD-{yyyy}{mm}" },
    Recurring { account: 1, schedule: Schedule::Monthly { day: 4, adjust: Adjust::Forward, }, months: ALL_MONTHS, min: -1_200, max: -1_200, raise_permille: 0, flow: Flow::CardSubscription { city: "LONDON", mcc: "5994", }, counterparty: "THE GUARDIAN", counterparty_iban: "", remittance: "GUARDIAN NEWS & MEDIA" },
];

#[rustfmt::skip]
const UK_MERCHANTS: &[MerchantTemplate] = &[
    m("PRET A MANGER", "LONDON", "5814", 395, 1_200, 30, 0),
    m("TFL TRAVEL CH", "LONDON", "4111", 280, 810, 30, 0),
    m("WATERSTONES", "LONDON", "5942", 899, 2_500, 15, 5),
    m("EUROSTAR INTL", "LONDON", "4112", 5_900, 24_500, 5, 10),
    m("DISHOOM", "LONDON", "5812", 2_800, 6_500, 20, 0),
];

const UK_CARDS: &[CardSpend] = &[CardSpend {
    account: 1,
    count_weights: &[85, 12, 3],
    merchants: UK_MERCHANTS,
}];

pub const UK_SIDE: Profile = Profile {
    accounts: UK_ACCOUNTS,
    recurring: UK_RECURRING,
    card_spend: UK_CARDS,
    atm: None,
    settlement: Some(Settlement {
        card: 1,
        from: 0,
        statement_day: 20,
        debit_day: 5,
        debit_text: "THAMES VISA PAYMENT",
        credit_text: "PAYMENT RECEIVED - THANK YOU",
    }),
    card_scheme: "VISA",
    lang: Lang::En,
};
