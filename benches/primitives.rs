//! Micro-benchmarks of the per-request primitives: JWS signing per algorithm, client-secret
//! verification, argon2id verification and access-token verification. `bench/run.sh` reads
//! the medians (target/criterion/*/new/estimates.json) to state each endpoint's CPU limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use latchkey::jwt::{self, AccessClaims, Audience};
use latchkey::keys::{self, KeyRing, LoadedKey};
use latchkey::oauth::{ClientSecret, KeyAlg, Password};
use latchkey::secrets::{self, SecretHasher};
use latchkey::store::{self, PoolSettings};

const ISSUER: &str = "http://127.0.0.1:8080";
const NOW: i64 = 1_750_000_000;

/// The claims of a client_credentials token, as the token endpoint builds them.
fn claims() -> AccessClaims {
    AccessClaims {
        iss: ISSUER.into(),
        sub: "3f1d2c8e-bench-client".into(),
        aud: Audience::One("https://api.bench.local".into()),
        exp: NOW + 3600,
        iat: NOW,
        nbf: None,
        jti: secrets::random_b64(16).unwrap(),
        client_id: "3f1d2c8e-bench-client".into(),
        scope: "api:read".into(),
        auth_time: None,
        grant_id: None,
    }
}

fn signing(c: &mut Criterion) {
    let mut g = c.benchmark_group("sign");
    for alg in KeyAlg::ALL {
        let key = LoadedKey::parse(&keys::generate(alg, NOW, NOW).unwrap()).unwrap();
        let input = vec![b'x'; 420]; // a typical header.claims signing input
        g.bench_function(format!("raw/{}", alg.as_str()), |b| {
            b.iter(|| key.sign(black_box(&input)).unwrap())
        });
        let claims = claims();
        g.bench_function(format!("jwt/{}", alg.as_str()), |b| {
            b.iter(|| jwt::sign(&key, jwt::ACCESS_TOKEN_TYP, black_box(&claims)).unwrap())
        });
    }
    g.finish();
}

fn verification(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("verify");
    for alg in KeyAlg::ALL {
        // A key ring as the server holds it, over a throwaway SQLite file.
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/bench.db", dir.path().display());
        let settings = PoolSettings {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(3),
        };
        let view = rt.block_on(async {
            let store = store::connect(&url, settings).await.unwrap();
            store.migrate().await.unwrap();
            let ring = KeyRing::open(store.as_ref(), alg, 86400, NOW)
                .await
                .unwrap();
            ring.view(NOW).unwrap()
        });
        let token = jwt::sign(&view.signing, jwt::ACCESS_TOKEN_TYP, &claims()).unwrap();
        g.bench_function(format!("access_token/{}", alg.as_str()), |b| {
            b.iter(|| jwt::verify_access_token(black_box(&token), &view, ISSUER, NOW).unwrap())
        });
    }
    let hasher = SecretHasher::new(b"bench-pepper-0123456789abcdef0123456789");
    let secret = ClientSecret::new(secrets::random_token().unwrap());
    let stored = hasher.hash_client_secret(&secret);
    g.bench_function("client_secret", |b| {
        b.iter(|| assert!(hasher.verify_client_secret(black_box(&secret), &stored)))
    });
    g.finish();

    // argon2id (m = 19 MiB, t = 2): milliseconds per call, so fewer, longer samples.
    let mut g = c.benchmark_group("verify_slow");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(4));
    let password = Password::new("correct horse battery staple");
    let phc = secrets::hash_password(&password).unwrap();
    g.bench_function("password_argon2id", |b| {
        b.iter(|| assert!(secrets::verify_password(black_box(&password), &phc)))
    });
    // What the server does: the 19 MiB of argon2 blocks is kept between calls.
    let mut memory = Vec::new();
    g.bench_function("password_argon2id_reused_memory", |b| {
        b.iter(|| {
            assert!(secrets::verify_password_in(
                black_box(&password),
                &phc,
                &mut memory
            ))
        })
    });
    g.finish();
}

/// The same work on every core at once, one thread per core: each iteration runs `cores`
/// calls in parallel, so `cores / time per iteration` is what the machine really does when
/// all cores are busy with it (siblings of one physical core, or a shared memory bus, give
/// less than `cores ×` the single-thread rate). `bench/run.sh` shows both limits.
fn all_cores(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut g = c.benchmark_group("all_cores");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(4));
    let key = LoadedKey::parse(&keys::generate(KeyAlg::RS256, NOW, NOW).unwrap()).unwrap();
    let claims = claims();
    g.bench_function("jwt/RS256", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for _ in 0..cores {
                    s.spawn(|| {
                        for _ in 0..8 {
                            jwt::sign(&key, jwt::ACCESS_TOKEN_TYP, black_box(&claims)).unwrap();
                        }
                    });
                }
            })
        })
    });
    let password = Password::new("correct horse battery staple");
    let phc = secrets::hash_password(&password).unwrap();
    let mut memory: Vec<Vec<argon2::Block>> = (0..cores).map(|_| Vec::new()).collect();
    g.bench_function("password_argon2id_reused_memory", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for m in memory.iter_mut() {
                    let (password, phc) = (&password, &phc);
                    s.spawn(move || assert!(secrets::verify_password_in(password, phc, m)));
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, signing, verification, all_cores);
criterion_main!(benches);
