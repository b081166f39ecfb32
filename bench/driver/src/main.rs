//! Load driver for request chains oha cannot express. Prints oha-shaped JSON (summary,
//! latencyPercentiles, statusCodeDistribution, errorDistribution) so bench.py reads both alike.
//!
//!   latchkey-bench-driver refresh --url http://127.0.0.1:PORT/token --auth 'Basic …' \
//!       --prefix bench-rt- --first 0 --spare 64 --conns 32 --secs 10 [--warmup 2]
//!
//! refresh: each connection starts from token PREFIX{FIRST + i} and then presents the token
//! each response returns (a client refreshing over and over, rotation on). A failed request
//! breaks the chain; the connection then takes the next unused seeded token, up to --spare.
//!
//! Connections are plain HTTP/1.1 keep-alive, one request in flight each; the run stops at
//! --secs (requests in flight then are not counted), like `oha -z`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

struct Opts {
    url: String,
    auth: String,
    prefix: String,
    first: usize,
    spare: usize,
    conns: usize,
    secs: f64,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    status: BTreeMap<u16, u64>,
    errors: BTreeMap<String, u64>,
}

fn parse_args() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("refresh") => {}
        other => return Err(format!("unknown mode {other:?}; expected refresh")),
    }
    let mut o = Opts {
        url: String::new(),
        auth: String::new(),
        prefix: "bench-rt-".into(),
        first: 0,
        spare: 64,
        conns: 1,
        secs: 1.0,
    };
    while let Some(flag) = args.next() {
        let v = args.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--url" => o.url = v,
            "--auth" => o.auth = v,
            "--prefix" => o.prefix = v,
            "--first" => o.first = num(&v)?,
            "--spare" => o.spare = num(&v)?,
            "--conns" => o.conns = num(&v)?.max(1),
            "--secs" => o.secs = v.parse().map_err(|e| format!("--secs: {e}"))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if o.url.is_empty() {
        return Err("--url is required".into());
    }
    Ok(o)
}

fn form_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn connection(
    o: Arc<Opts>,
    index: usize,
    next_spare: Arc<AtomicUsize>,
    deadline: Instant,
) -> Tally {
    let mut t = Tally::default();
    let uri: hyper::Uri = match o.url.parse() {
        Ok(u) => u,
        Err(e) => {
            *t.errors.entry(format!("bad url: {e}")).or_default() += 1;
            return t;
        }
    };
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    let path = uri.path().to_owned();
    let mut token = Some(format!("{}{}", o.prefix, o.first + index));
    let mut sender: Option<http1::SendRequest<Full<Bytes>>> = None;
    while Instant::now() < deadline {
        let Some(current) = token.take() else {
            let k = next_spare.fetch_add(1, Ordering::Relaxed);
            if k >= o.spare {
                *t.errors.entry("out of seeded tokens".into()).or_default() += 1;
                return t;
            }
            token = Some(format!("{}{}", o.prefix, o.first + o.conns + k));
            continue;
        };
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            match TcpStream::connect(&authority).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    match http1::handshake(TokioIo::new(stream)).await {
                        Ok((s, conn)) => {
                            tokio::spawn(conn);
                            sender = Some(s);
                        }
                        Err(e) => {
                            *t.errors.entry(format!("handshake: {e}")).or_default() += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            token = Some(current);
                            continue;
                        }
                    }
                }
                Err(e) => {
                    *t.errors.entry(format!("connect: {e}")).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    token = Some(current);
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        let body = format!(
            "grant_type=refresh_token&refresh_token={}",
            form_escape(&current)
        );
        let req = Request::post(path.as_str())
            .header("host", authority.as_str())
            .header("authorization", o.auth.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)));
        let Ok(req) = req else {
            *t.errors.entry("request build".into()).or_default() += 1;
            return t;
        };
        let start = Instant::now();
        let sent = tokio::time::timeout_at(deadline.into(), async {
            let res = s.send_request(req).await?;
            let status = res.status().as_u16();
            let body = res.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        })
        .await;
        match sent {
            Err(_) => break, // in flight at the deadline: not counted
            Ok(Err(e)) => {
                *t.errors.entry(format!("http: {e}")).or_default() += 1;
                sender = None;
            }
            Ok(Ok((status, body))) => {
                t.latencies_us.push(start.elapsed().as_micros() as u64);
                *t.status.entry(status).or_default() += 1;
                if status == 200 {
                    token = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["refresh_token"].as_str().map(str::to_owned));
                }
            }
        }
    }
    t
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1e6
}

#[tokio::main]
async fn main() {
    let o = match parse_args() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("latchkey-bench-driver: {e}");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(o.secs);
    let spare = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..o.conns)
        .map(|i| tokio::spawn(connection(o.clone(), i, spare.clone(), deadline)))
        .collect();
    let mut all = Tally::default();
    for task in tasks {
        match task.await {
            Ok(t) => {
                all.latencies_us.extend(t.latencies_us);
                for (k, v) in t.status {
                    *all.status.entry(k).or_default() += v;
                }
                for (k, v) in t.errors {
                    *all.errors.entry(k).or_default() += v;
                }
            }
            Err(e) => *all.errors.entry(format!("task: {e}")).or_default() += 1,
        }
    }
    let total = start.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    let n = all.latencies_us.len();
    let out = serde_json::json!({
        "summary": {
            "total": total,
            "requestsPerSec": n as f64 / total,
            "successRate": if n == 0 { 0.0 } else {
                *all.status.get(&200).unwrap_or(&0) as f64 / n as f64
            },
        },
        "latencyPercentiles": {
            "p50": percentile(&all.latencies_us, 0.50),
            "p90": percentile(&all.latencies_us, 0.90),
            "p99": percentile(&all.latencies_us, 0.99),
        },
        "statusCodeDistribution": all.status.iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
            .collect::<serde_json::Map<_, _>>(),
        "errorDistribution": all.errors,
    });
    println!("{out}");
}
