//! Example relying party: `cargo run --example relying_party -- CLIENT_ID [CLIENT_SECRET]`
//! with Latchkey running at LATCHKEY_ISSUER (default http://127.0.0.1:8080). Register the
//! client with redirect URI http://127.0.0.1:3000/callback (see README). Open
//! http://127.0.0.1:3000/ and sign in.

mod rp;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let client_id = args
        .next()
        .ok_or("usage: relying_party CLIENT_ID [CLIENT_SECRET]")?;
    let client_secret = args.next();
    let issuer =
        std::env::var("LATCHKEY_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let config = rp::RpConfig {
        issuer,
        client_id,
        client_secret,
        redirect_uri: "http://127.0.0.1:3000/callback".into(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!(
        "example app on http://127.0.0.1:3000/ (issuer {})",
        config.issuer
    );
    axum::serve(listener, rp::router(config)).await?;
    Ok(())
}
