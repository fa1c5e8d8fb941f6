//! Money is stored as integer minor units (`BIGINT`) plus the currency code (`TEXT`): exact on
//! every backend, unlike SQLite's NUMERIC affinity, which keeps decimals as floating point.
//! This checks the representation through the same driver path the stores use, at the edges.

use kontor_domain::{Currency, Money};
use kontor_test_support::TestStores;

fn edge_amounts() -> Vec<Money> {
    let mut amounts = Vec::new();
    for (code, values) in [
        (
            "EUR",
            [
                "99999999999999.99",
                "-99999999999999.99",
                "0.01",
                "12345678901234.56",
            ],
        ),
        (
            "JPY",
            ["99999999999999", "-99999999999999", "1", "12345678901234"],
        ),
        (
            "BHD",
            [
                "99999999999999.999",
                "-0.001",
                "0.000",
                "12345678901234.567",
            ],
        ),
        (
            "CLF",
            [
                "99999999999999.9999",
                "-99999999999999.9999",
                "0.0001",
                "12345678901234.1234",
            ],
        ),
    ] {
        let currency = Currency::parse(code).unwrap();
        for value in values {
            amounts.push(Money::parse(value, currency).unwrap());
        }
    }
    amounts
}

pub async fn amounts_round_trip_exactly_at_the_edges(stores: TestStores) {
    let pool = stores.raw_cell_pool("uk");
    sqlx::query(
        "CREATE TABLE money_probe (id BIGINT PRIMARY KEY, amount_minor BIGINT NOT NULL, currency TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let amounts = edge_amounts();
    for (i, money) in amounts.iter().enumerate() {
        sqlx::query("INSERT INTO money_probe (id, amount_minor, currency) VALUES ($1, $2, $3)")
            .bind(i64::try_from(i).unwrap())
            .bind(money.minor_units())
            .bind(money.currency().code())
            .execute(&pool)
            .await
            .unwrap();
    }
    for (i, money) in amounts.iter().enumerate() {
        let (minor, code): (i64, String) =
            sqlx::query_as("SELECT amount_minor, currency FROM money_probe WHERE id = $1")
                .bind(i64::try_from(i).unwrap())
                .fetch_one(&pool)
                .await
                .unwrap();
        let back = Money::from_minor(minor, Currency::parse(&code).unwrap()).unwrap();
        assert_eq!(&back, money);
        assert_eq!(back.to_decimal_string(), money.to_decimal_string());
    }
    // Sums stay exact in SQL too. PostgreSQL widens SUM(BIGINT) to NUMERIC, which the portable
    // driver does not decode; the cast back to BIGINT is how every aggregate over money is written.
    let total: i64 = sqlx::query_scalar(
        "SELECT CAST(SUM(amount_minor) AS BIGINT) FROM money_probe WHERE currency = 'EUR'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(total, 1_234_567_890_123_457);
}
