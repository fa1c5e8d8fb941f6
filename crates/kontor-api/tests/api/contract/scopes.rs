//! The scope is checked before the body: a token without the scope an operation needs gets 403,
//! whatever it sent, and learns nothing about what the body would have needed.

use kontor_test_support::error_code;

use super::{document, fixture, operations};

#[tokio::test]
async fn a_token_without_the_scope_gets_403_even_with_an_invalid_body() {
    let f = fixture().await;
    let doc = document(&f.world).await;
    let mut checked = 0;
    for op in operations(&doc) {
        let (Some(scope), true) = (op.scope(), op.has_body()) else {
            continue;
        };
        let token = f.token_without(&scope).await;
        for (content_type, body) in [
            ("application/json", "{"),
            ("application/json", r#"{"unknown": 1}"#),
            ("application/json", "[]"),
            ("text/plain", "hello"),
        ] {
            let response = f
                .request(&op, &f.path(&op), Some(&token))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403, "{} with {body}", op.label());
            assert_eq!(error_code(response).await, "insufficient_scope");
        }
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} operations with a body");
}
