//! A French salaried customer's life at her home bank (carol at Banque Lumière), with a
//! deferred-debit Visa Premier settled monthly, as French cards usually are.

use super::{
    ALL_MONTHS, AccountTemplate, Adjust, Atm, CardSpend, Flow, Lang, MerchantTemplate, Profile,
    Recurring, Schedule, Settlement, months,
};
use crate::data::model::AccountKind;

const CURRENT: usize = 0;
const LIVRET: usize = 1;
const CARD: usize = 2;

#[rustfmt::skip]
const ACCOUNTS: &[AccountTemplate] = &[
    AccountTemplate { kind: AccountKind::Current, product: "Compte de dépôt Lumière", nickname: "Compte courant", opening_balance: 312_040, credit_limit: 80_000 },
    AccountTemplate { kind: AccountKind::Savings, product: "Livret A", nickname: "Livret A", opening_balance: 1_230_000, credit_limit: 0 },
    AccountTemplate { kind: AccountKind::CreditCard, product: "Carte Visa Premier débit différé", nickname: "Visa Premier", opening_balance: 0, credit_limit: 300_000 },
];

const fn monthly(day: u8) -> Schedule {
    Schedule::Monthly {
        day,
        adjust: Adjust::Forward,
    }
}

#[rustfmt::skip]
const RECURRING: &[Recurring] = &[
    Recurring { account: CURRENT, schedule: Schedule::Monthly { day: 28, adjust: Adjust::Backward, }, months: ALL_MONTHS, min: 318_000, max: 318_000, raise_permille: 20, flow: Flow::Salary, counterparty: "ATELIER NUMERIQUE SAS", counterparty_iban: "FR7630004008280001043715297", remittance: "SALAIRE {mm}/{yyyy} ATELIER NUMERIQUE" },
    Recurring { account: CURRENT, schedule: monthly(5), months: ALL_MONTHS, min: -132_000, max: -132_000, raise_permille: 15, flow: Flow::StandingOrder, counterparty: "SCI LES TILLEULS", counterparty_iban: "FR7610278060390002016780137", remittance: "LOYER {month} {yyyy} APPT 14 RUE DES TILLEULS" },
    Recurring { account: CURRENT, schedule: monthly(8), months: ALL_MONTHS, min: -7_400, max: -7_400, raise_permille: 50, flow: Flow::DirectDebit { mandate: "++EDF0012345678", creditor_id: "FR72ZZZ123456", }, counterparty: "EDF", counterparty_iban: "", remittance: "EDF MENSUALISATION ECHEANCE {mm}/{yyyy}" },
    Recurring { account: CURRENT, schedule: monthly(4), months: ALL_MONTHS, min: -1_999, max: -1_999, raise_permille: 0, flow: Flow::DirectDebit { mandate: "FM-ADS-8123741", creditor_id: "FR18ZZZ480321", }, counterparty: "FREE MOBILE", counterparty_iban: "", remittance: "Free Mobile Forfait {month} {yyyy}" },
    Recurring { account: CURRENT, schedule: monthly(16), months: ALL_MONTHS, min: -4_299, max: -4_299, raise_permille: 0, flow: Flow::DirectDebit { mandate: "ORA-LVB-0098123", creditor_id: "FR87ZZZ552120", }, counterparty: "ORANGE SA", counterparty_iban: "", remittance: "Livebox Fibre facture {mm}/{yyyy}" },
    Recurring { account: CURRENT, schedule: monthly(2), months: ALL_MONTHS, min: -8_640, max: -8_640, raise_permille: 30, flow: Flow::DirectDebit { mandate: "NAV-2211-0045871", creditor_id: "FR93ZZZ907711", }, counterparty: "IDF MOBILITES NAVIGO", counterparty_iban: "", remittance: "Forfait Navigo Mois {month} {yyyy}" },
    Recurring { account: CURRENT, schedule: monthly(10), months: ALL_MONTHS, min: -3_870, max: -3_870, raise_permille: 40, flow: Flow::DirectDebit { mandate: "MAAF-SANTE-339120", creditor_id: "FR55ZZZ410203", }, counterparty: "MAAF ASSURANCES", counterparty_iban: "", remittance: "Cotisation complémentaire santé {month}" },
    Recurring { account: CURRENT, schedule: monthly(6), months: ALL_MONTHS, min: -25_000, max: -25_000, raise_permille: 0, flow: Flow::TransferToOwn { to: LIVRET, keep: 230_000, }, counterparty: "Carol Dubois", counterparty_iban: "", remittance: "Virement permanent vers Livret A" },
    Recurring { account: CURRENT, schedule: monthly(15), months: ALL_MONTHS, min: -15_000, max: -15_000, raise_permille: 0, flow: Flow::StandingOrder, counterparty: "Carol Dubois", counterparty_iban: "DE44500105175407324931", remittance: "Virement mensuel compte Allemagne" },
    Recurring { account: CURRENT, schedule: monthly(1), months: ALL_MONTHS, min: -295, max: -295, raise_permille: 0, flow: Flow::Fee, counterparty: "Banque Lumière", counterparty_iban: "", remittance: "Cotisation offre Lumière Essentiel" },
    Recurring { account: LIVRET, schedule: Schedule::LastBusinessDay, months: months(&[12]), min: 30_000, max: 36_000, raise_permille: 0, flow: Flow::Interest, counterparty: "Banque Lumière", counterparty_iban: "", remittance: "Intérêts Livret A {yyyy}" },
    Recurring { account: CARD, schedule: monthly(12), months: ALL_MONTHS, min: -1_349, max: -1_349, raise_permille: 0, flow: Flow::CardSubscription { city: "Amsterdam", mcc: "4899", }, counterparty: "NETFLIX.COM", counterparty_iban: "", remittance: "NETFLIX.COM 866-579-7172" },
    Recurring { account: CARD, schedule: monthly(23), months: ALL_MONTHS, min: -1_199, max: -1_199, raise_permille: 0, flow: Flow::CardSubscription { city: "Paris", mcc: "5815", }, counterparty: "DEEZER", counterparty_iban: "", remittance: "DEEZER PREMIUM" },
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
const VISA_PREMIER: &[MerchantTemplate] = &[
    m("CARREFOUR CITY", "PARIS", "5411", (600, 4_500), 20, (0, 0)),
    m("MONOPRIX", "PARIS", "5411", (900, 6_500), 20, (0, 0)),
    m("FRANPRIX", "PARIS", "5411", (400, 3_500), 12, (0, 0)),
    m( "BOULANGERIE PAUL", "PARIS", "5462", (250, 1_400), 15, (0, 0)),
    m( "PICARD SURGELES", "PARIS", "5411", (1_200, 4_800), 5, (0, 0)),
    m("FNAC", "PARIS", "5732", (1_500, 18_000), 2, (15, 0)),
    m( "SNCF INTERNET", "PARIS", "4112", (2_500, 12_000), 3, (10, 0)),
    m("DECATHLON", "PARIS", "5941", (1_000, 9_000), 2, (20, 0)),
    m( "PHARMACIE DU MARCHE", "PARIS", "5912", (500, 3_200), 4, (0, 0)),
    m("G7 TAXI", "PARIS", "4121", (1_200, 4_500), 3, (0, 30)),
    m("UBER EATS", "AMSTERDAM", "5814", (1_500, 4_000), 6, (0, 0)),
    m( "AMAZON PAYMENTS", "LUXEMBOURG", "5942", (900, 7_900), 6, (10, 0)),
    m("ZARA FRANCE", "PARIS", "5651", (2_000, 9_000), 3, (25, 0)),
    m("LE PETIT CAFE", "PARIS", "5812", (1_800, 5_600), 5, (0, 50)),
];

const CARDS: &[CardSpend] = &[CardSpend {
    account: CARD,
    count_weights: &[25, 40, 25, 10],
    merchants: VISA_PREMIER,
}];

pub const PROFILE: Profile = Profile {
    accounts: ACCOUNTS,
    recurring: RECURRING,
    card_spend: CARDS,
    atm: Some(Atm {
        account: CURRENT,
        chance_percent: 5,
        amounts: &[2_000, 4_000, 6_000, 10_000],
        name: "RETRAIT DAB BANQUE LUMIERE",
        city: "PARIS",
    }),
    settlement: Some(Settlement {
        card: CARD,
        from: CURRENT,
        statement_day: 28,
        debit_day: 3,
        debit_text: "RELEVE CARTE VISA PREMIER {mm}/{yyyy}",
        credit_text: "REGLEMENT RELEVE CARTE {mm}/{yyyy}",
    }),
    card_scheme: "VISA",
    lang: Lang::Fr,
};
