//! UK Open Banking AIS: OAuth2 + PKCE, account-access consents, accounts, balances,
//! transactions with booking-date filters and paging, and the bank's rules.

use reqwest::Method;
use serde_json::json;

use crate::common::Harness;
use crate::spec::Api;
use crate::uk_flows::{ais_access, aisp, auth, client_token, ob_code, present, token_request};

const FULL: [&str; 5] = [
    "ReadAccountsDetail",
    "ReadBalances",
    "ReadTransactionsDetail",
    "ReadTransactionsCredits",
    "ReadTransactionsDebits",
];

#[tokio::test]
async fn pkce_authorization_then_accounts_balances_and_paged_transactions() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let (consent, token, refresh) = ais_access(&h, "bob", &FULL, json!({})).await;
    let tpp = client_token(&h, "accounts").await;
    let read = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            &format!("/account-access-consents/{consent}"),
            &auth(&tpp),
            None,
        )
        .await;
    assert_eq!(read.json()["Data"]["Status"], "Authorised");

    let headers = present(&token);
    let accounts = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts",
            &headers,
            None,
        )
        .await;
    assert_eq!(accounts.status, 200, "{}", accounts.text());
    assert_eq!(
        accounts.header("x-fapi-interaction-id"),
        Some(headers[1].1.as_str()),
        "x-fapi-interaction-id is echoed"
    );
    let list = accounts.json()["Data"]["Account"]
        .as_array()
        .unwrap()
        .clone();
    let sub_types: Vec<&str> = list
        .iter()
        .map(|a| a["AccountSubType"].as_str().unwrap())
        .collect();
    assert_eq!(sub_types, ["CurrentAccount", "Savings", "CreditCard"]);
    assert_eq!(
        list[0]["Account"][0]["SchemeName"],
        "UK.OBIE.SortCodeAccountNumber"
    );
    let current = list[0]["AccountId"].as_str().unwrap().to_string();

    let one = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            &format!("/accounts/{current}"),
            &headers,
            None,
        )
        .await;
    assert_eq!(one.json()["Data"]["Account"].as_array().unwrap().len(), 1);
    let balances = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            &format!("/accounts/{current}/balances"),
            &headers,
            None,
        )
        .await
        .json();
    let types: Vec<&str> = balances["Data"]["Balance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["Type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ClosingBooked",
            "InterimBooked",
            "Expected",
            "InterimAvailable"
        ]
    );
    let bulk = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/balances",
            &headers,
            None,
        )
        .await
        .json();
    assert_eq!(bulk["Data"]["Balance"].as_array().unwrap().len(), 12);

    let first = format!(
        "/accounts/{current}/transactions?fromBookingDateTime=2025-12-01T00:00:00&toBookingDateTime=2026-03-02T23:59:59Z"
    );
    let mut page = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            &first,
            &headers,
            None,
        )
        .await
        .json();
    let mut all = Vec::new();
    loop {
        all.extend(
            page["Data"]["Transaction"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
        let Some(next) = page["Links"]["Next"].as_str().map(str::to_string) else {
            break;
        };
        let path = next.strip_prefix(&aisp(&h)).unwrap().to_string();
        page = h
            .call(
                Api::UkAccounts,
                &aisp(&h),
                Method::GET,
                &path,
                &headers,
                None,
            )
            .await
            .json();
    }
    assert!(
        all.len() > 150,
        "three months of a UK current account: {}",
        all.len()
    );
    assert!(
        all.iter().any(|t| t["Status"] == "Pending") && all.iter().any(|t| t["Status"] == "Booked")
    );
    assert!(
        all.iter()
            .all(|t| t["BookingDateTime"].as_str().unwrap() >= "2025-12-01")
    );
    assert!(
        all.iter()
            .any(|t| t["MerchantDetails"]["MerchantName"].is_string())
    );
    assert!(
        all.iter()
            .any(|t| t["ProprietaryBankTransactionCode"]["Code"] == "DD")
    );

    let refreshed = token_request(
        &h,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(refreshed.status, 200);
    let fresh = refreshed.json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        h.call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts",
            &present(&fresh),
            None
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn basic_permissions_and_credit_debit_filters_limit_what_is_shown() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let (_, token, _) = ais_access(
        &h,
        "bob",
        &[
            "ReadAccountsBasic",
            "ReadTransactionsBasic",
            "ReadTransactionsDebits",
        ],
        json!({}),
    )
    .await;
    let accounts = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts",
            &present(&token),
            None,
        )
        .await
        .json();
    let first = &accounts["Data"]["Account"][0];
    assert!(
        first.get("Account").is_none(),
        "Basic hides account identifications"
    );
    let id = first["AccountId"].as_str().unwrap();
    let tx = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            &format!("/accounts/{id}/transactions?fromBookingDateTime=2026-02-01"),
            &present(&token),
            None,
        )
        .await
        .json();
    let list = tx["Data"]["Transaction"].as_array().unwrap();
    assert!(!list.is_empty());
    assert!(list.iter().all(|t| t["CreditDebitIndicator"] == "Debit"));
    assert!(
        list.iter().all(
            |t| t.get("TransactionInformation").is_none() && t.get("MerchantDetails").is_none()
        )
    );
    let balances = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            &format!("/accounts/{id}/balances"),
            &present(&token),
            None,
        )
        .await;
    assert_eq!(
        (balances.status, ob_code(&balances)),
        (403, "UK.OBIE.Resource.ConsentMismatch".into())
    );
}
