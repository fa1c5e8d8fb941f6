//! Regional cells through the API: a user's row is written to their home cell only.

use kontor_test_support::TestApp;

async fn count(app: &TestApp, region: &str, id: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE id = $1")
        .bind(id)
        .fetch_one(&app.stores.raw_cell_pool(region))
        .await
        .unwrap()
}

#[tokio::test]
async fn users_are_written_to_their_home_cell_only() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;
    let uk = app.create_user(&token, "brit", "uk").await;
    let de = app.create_user(&token, "deutsch", "de").await;
    let uk_id = uk["id"].as_str().unwrap();
    let de_id = de["id"].as_str().unwrap();

    assert_eq!(count(&app, "uk", uk_id).await, 1);
    assert_eq!(count(&app, "de", uk_id).await, 0);
    assert_eq!(count(&app, "de", de_id).await, 1);
    assert_eq!(count(&app, "uk", de_id).await, 0);

    // Erasure reaches the home cell.
    assert_eq!(
        app.delete(&format!("/v1/users/{uk_id}"), &token)
            .await
            .status(),
        204
    );
    assert_eq!(count(&app, "uk", uk_id).await, 0);
    assert_eq!(count(&app, "de", de_id).await, 1);
}

#[tokio::test]
async fn the_same_story_on_postgres() {
    let Some(app) = TestApp::builder()
        .backend(kontor_test_support::Backend::Postgres)
        .try_spawn("api::regions::the_same_story_on_postgres")
        .await
    else {
        return;
    };
    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;
    let uk = app.create_user(&token, "brit", "uk").await;
    let uk_id = uk["id"].as_str().unwrap();
    assert_eq!(count(&app, "uk", uk_id).await, 1);
    assert_eq!(count(&app, "de", uk_id).await, 0);
    let read = app.get(&format!("/v1/users/{uk_id}"), &token).await;
    assert_eq!(read.status(), 200);
    assert_eq!(
        app.delete(&format!("/v1/users/{uk_id}"), &token)
            .await
            .status(),
        204
    );
    assert_eq!(app.user_rows().await, 0);
}
