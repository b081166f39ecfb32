//! The example resource API (examples/resource_api.rs) serves a user token and turns a
//! client_credentials token away from its user-only route with 403.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[allow(dead_code)]
#[path = "../examples/resource_api.rs"]
mod resource_api;

use common::Issuer;
use serde_json::Value;

#[tokio::test]
async fn the_example_api_serves_users_and_turns_client_tokens_away_from_user_routes() {
    let iss = Issuer::start().await;
    let client = iss.app_client().await;
    let (validator, _) = iss.validator();

    // The example, served for real on loopback.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, resource_api::app(validator)).await });
    let http = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut req = http.get(format!("{api}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };

    let (user, _) = iss.user_token(&client, "read").await;
    let machine = iss.client_token(&client, "read").await;
    let no_scope = iss.client_token(&client, "write").await;

    let res = get("/me", Some(&user)).await.unwrap();
    assert_eq!(res.status(), 200);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["user"], common::parts(&user).1["sub"]);
    assert_eq!(me["via_client"], client.id.as_str());

    let res = get("/me", Some(&machine)).await.unwrap();
    assert_eq!(
        res.status(),
        403,
        "client_credentials tokens cannot reach user routes"
    );
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer error="insufficient_scope", error_description="this resource requires a token issued to a user""#
    );

    let res = get("/reports", Some(&machine)).await.unwrap();
    assert_eq!(res.status(), 200, "clients may read reports");
    let reports: Value = res.json().await.unwrap();
    assert_eq!(reports["for"]["client"], client.id.as_str());
    let reports: Value = get("/reports", Some(&user))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reports["for"]["user"], me["user"]);

    let res = get("/reports", Some(&no_scope)).await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .ends_with(r#"scope="read""#)
    );

    let res = get("/me", None).await.unwrap();
    assert_eq!(
        (
            res.status().as_u16(),
            res.headers()["www-authenticate"].to_str().unwrap()
        ),
        (401, "Bearer")
    );
    assert_eq!(get("/healthz", None).await.unwrap().status(), 200);
}
