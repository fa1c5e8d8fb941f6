//! What comes before the body is bounded too, and answered in the envelope with a request id:
//! a long path or query (414), large headers (431), and a path or query that does not decode to
//! UTF-8 (400 `invalid_encoding`).

use kontor_test_support::error_code;

use super::fixture;

async fn get(f: &super::Fixture, path: &str, header: Option<(&str, String)>) -> reqwest::Response {
    let mut request = f
        .world
        .app
        .http
        .get(f.world.app.url(path))
        .bearer_auth(&f.world.token);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn oversized_and_undecodable_heads_get_the_envelope() {
    let f = fixture().await;
    let long = format!("/v1/users?external_id={}", "a".repeat(10_000));
    let response = get(&f, &long, None).await;
    assert_eq!(response.status(), 414);
    assert_eq!(error_code(response).await, "uri_too_long");

    let response = get(&f, "/v1/users", Some(("x-padding", "a".repeat(40_000)))).await;
    assert_eq!(response.status(), 431);
    assert_eq!(error_code(response).await, "headers_too_large");

    // Many small headers: more fields than the API takes, fewer bytes than its size limit.
    let mut request = f
        .world
        .app
        .http
        .get(f.world.app.url("/v1/users"))
        .bearer_auth(&f.world.token);
    for i in 0..150 {
        request = request.header(format!("x-field-{i}"), "1");
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 431);
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(error_code(response).await, "headers_too_large");

    for path in [
        "/v1/users/usr_uk_%FF".to_owned(),
        "/v1/users?external_id=%C3%28".to_owned(),
        format!("/v1/accounts?user_id={}&cursor=%80", f.user),
        "/connect/%FE%FF".to_owned(),
    ] {
        let response = get(&f, &path, None).await;
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(error_code(response).await, "invalid_encoding", "{path}");
    }
    // Within the limits, the same requests are served.
    let response = get(
        &f,
        &format!("/v1/users?external_id={}", "a".repeat(200)),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    let response = get(
        &f,
        "/v1/users?external_id=M%C3%BCller",
        Some(("x-padding", "a".repeat(4_000))),
    )
    .await;
    assert_eq!(response.status(), 200);
}
