//! A British salaried customer's life at his home bank (bob at Thames Bank).

use super::{
    ALL_MONTHS, AccountTemplate, Adjust, Atm, CardSpend, Flow, Lang, MerchantTemplate, Profile,
    Recurring, Schedule, Settlement, months,
};
use crate::data::model::AccountKind;

const CURRENT: usize = 0;
const SAVER: usize = 1;
const CARD: usize = 2;

#[rustfmt::skip]
const ACCOUNTS: &[AccountTemplate] = &[
    AccountTemplate { kind: AccountKind::Current, product: "Thames Classic Current Account", nickname: "Everyday", opening_balance: 184_520, credit_limit: 50_000 },
    AccountTemplate { kind: AccountKind::Savings, product: "Thames Easy Saver ISA", nickname: "Rainy day ISA", opening_balance: 420_000, credit_limit: 0 },
    AccountTemplate { kind: AccountKind::CreditCard, product: "Thames Platinum Mastercard", nickname: "Credit card", opening_balance: 0, credit_limit: 400_000 },
];

const fn monthly(day: u8) -> Schedule {
    Schedule::Monthly {
        day,
        adjust: Adjust::Forward,
    }
}

const fn dd(mandate: &'static str) -> Flow {
    // UK direct debits are Bacs, not SEPA: they carry the originator's service user number
    // in place of a SEPA creditor identifier.
    Flow::DirectDebit {
        mandate,
        creditor_id: "",
    }
}

#[rustfmt::skip]
const RECURRING: &[Recurring] = &[
    Recurring { account: CURRENT, schedule: Schedule::Monthly { day: 25, adjust: Adjust::Backward, }, months: ALL_MONTHS, min: 295_000, max: 295_000, raise_permille: 30, flow: Flow::Salary, counterparty: "ACME ANALYTICS LTD", counterparty_iban: "GB29NWBK60161331926819", remittance: "ACME ANALYTICS SALARY" },
    Recurring { account: CURRENT, schedule: monthly(1), months: ALL_MONTHS, min: -125_000, max: -125_000, raise_permille: 35, flow: Flow::StandingOrder, counterparty: "HARBOUR LETTINGS LTD", counterparty_iban: "GB38BARC20041573920418", remittance: "RENT FLAT 2 12 ELM ROAD" },
    Recurring { account: CURRENT, schedule: monthly(1), months: months(&[4, 5, 6, 7, 8, 9, 10, 11, 12, 1]), min: -14_200, max: -14_200, raise_permille: 50, flow: dd("CT-30041877"), counterparty: "LAMBETH COUNCIL", counterparty_iban: "", remittance: "COUNCIL TAX 30041877" },
    Recurring { account: CURRENT, schedule: monthly(5), months: ALL_MONTHS, min: -9_600, max: -9_600, raise_permille: 80, flow: dd("A-1F9E22C7"), counterparty: "OCTOPUS ENERGY", counterparty_iban: "", remittance: "OCTOPUS ENERGY A-1F9E22C7" },
    Recurring { account: CURRENT, schedule: monthly(12), months: ALL_MONTHS, min: -3_850, max: -3_850, raise_permille: 60, flow: dd("AW-8812044"), counterparty: "AFFINITY WATER", counterparty_iban: "", remittance: "AFFINITY WATER 8812044" },
    Recurring { account: CURRENT, schedule: monthly(18), months: ALL_MONTHS, min: -2_500, max: -2_500, raise_permille: 0, flow: dd("EE-71230098"), counterparty: "EE LIMITED", counterparty_iban: "", remittance: "EE LIMITED Q71230098" },
    Recurring { account: CURRENT, schedule: monthly(20), months: ALL_MONTHS, min: -4_200, max: -4_200, raise_permille: 0, flow: dd("VM-650019234"), counterparty: "VIRGIN MEDIA", counterparty_iban: "", remittance: "VIRGIN MEDIA 650019234" },
    Recurring { account: CURRENT, schedule: monthly(1), months: ALL_MONTHS, min: -1_325, max: -1_325, raise_permille: 0, flow: dd("TVL-9912873"), counterparty: "TV LICENCE MBP", counterparty_iban: "", remittance: "TV LICENCE 9912873" },
    Recurring { account: CURRENT, schedule: monthly(1), months: ALL_MONTHS, min: -2_499, max: -2_499, raise_permille: 0, flow: dd("PG-4471902"), counterparty: "PUREGYM LTD", counterparty_iban: "", remittance: "PUREGYM MEMBERSHIP" },
    Recurring { account: CURRENT, schedule: monthly(26), months: ALL_MONTHS, min: -20_000, max: -20_000, raise_permille: 0, flow: Flow::TransferToOwn { to: SAVER, keep: 300_000, }, counterparty: "BOB THOMPSON", counterparty_iban: "", remittance: "SAVINGS" },
    Recurring { account: SAVER, schedule: monthly(1), months: ALL_MONTHS, min: 900, max: 1_400, raise_permille: 0, flow: Flow::Interest, counterparty: "THAMES BANK", counterparty_iban: "", remittance: "INTEREST PAID" },
    Recurring { account: CARD, schedule: monthly(9), months: ALL_MONTHS, min: -1_099, max: -1_099, raise_permille: 0, flow: Flow::CardSubscription { city: "LONDON", mcc: "4899", }, counterparty: "NETFLIX.COM", counterparty_iban: "", remittance: "NETFLIX.COM" },
    Recurring { account: CARD, schedule: monthly(14), months: ALL_MONTHS, min: -1_199, max: -1_199, raise_permille: 0, flow: Flow::CardSubscription { city: "LONDON", mcc: "5815", }, counterparty: "SPOTIFY", counterparty_iban: "", remittance: "SPOTIFY P1C2D3E4F5" },
    Recurring { account: CARD, schedule: monthly(3), months: ALL_MONTHS, min: -299, max: -299, raise_permille: 0, flow: Flow::CardSubscription { city: "CORK", mcc: "5818", }, counterparty: "APPLE.COM/BILL", counterparty_iban: "", remittance: "APPLE.COM/BILL ICLOUD" },
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
const DEBIT: &[MerchantTemplate] = &[
    m( "TESCO STORES 2041", "LONDON", "5411", (300, 6_000), 25, (0, 0)),
    m( "SAINSBURYS S/MKTS", "LONDON", "5411", (400, 7_000), 15, (0, 0)),
    m("PRET A MANGER", "LONDON", "5814", (395, 1_200), 15, (0, 0)),
    m("COSTA COFFEE", "LONDON", "5814", (280, 750), 12, (0, 0)),
    m("TFL TRAVEL CH", "LONDON", "4111", (280, 810), 18, (0, 0)),
    m("BOOTS 1182", "LONDON", "5912", (250, 3_000), 6, (0, 0)),
    m("WAITROSE 402", "LONDON", "5411", (800, 9_000), 6, (0, 0)),
    m("GREGGS", "LONDON", "5814", (150, 650), 8, (0, 0)),
    m("THE RED LION", "LONDON", "5813", (1_200, 4_800), 5, (0, 50)),
    m("SHELL ELM RD", "LONDON", "5541", (2_500, 7_000), 2, (0, 0)),
];

#[rustfmt::skip]
const CREDIT: &[MerchantTemplate] = &[
    m("AMAZON.CO.UK*", "LONDON", "5942", (699, 8_999), 30, (10, 0)),
    m("DELIVEROO", "LONDON", "5814", (1_500, 3_800), 15, (0, 0)),
    m("UBER *TRIP", "LONDON", "4121", (800, 3_200), 10, (0, 40)),
    m("ASOS.COM", "LONDON", "5651", (2_000, 9_000), 6, (35, 0)),
    m("JOHN LEWIS", "LONDON", "5311", (1_500, 25_000), 3, (10, 0)),
    m("ARGOS", "LONDON", "5311", (999, 15_000), 3, (10, 0)),
    m("TRAINLINE", "LONDON", "4112", (1_200, 9_500), 4, (5, 0)),
];

#[rustfmt::skip]
const CARDS: &[CardSpend] = &[
    CardSpend { account: CURRENT, count_weights: &[25, 40, 25, 10], merchants: DEBIT },
    CardSpend { account: CARD, count_weights: &[70, 25, 5], merchants: CREDIT },
];

pub const PROFILE: Profile = Profile {
    accounts: ACCOUNTS,
    recurring: RECURRING,
    card_spend: CARDS,
    atm: Some(Atm {
        account: CURRENT,
        chance_percent: 5,
        amounts: &[2_000, 4_000, 10_000],
        name: "LINK ATM THAMES BANK",
        city: "LONDON",
    }),
    settlement: Some(Settlement {
        card: CARD,
        from: CURRENT,
        statement_day: 10,
        debit_day: 28,
        debit_text: "THAMES MASTERCARD PAYMENT",
        credit_text: "PAYMENT RECEIVED - THANK YOU",
    }),
    card_scheme: "MasterCard",
    lang: Lang::En,
};
