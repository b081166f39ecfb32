//! Load driver for request chains oha cannot express. Prints oha-shaped JSON (summary,
//! latencyPercentiles, statusCodeDistribution, errorDistribution) so bench.py reads both alike.
//!
//!   latchkey-bench-driver refresh --url http://127.0.0.1:PORT/token --auth 'Basic …' \
//!       --prefix bench-rt- --first 0 --spare 64 --conns 32 --secs 10
//!   latchkey-bench-driver code --url http://127.0.0.1:PORT/token --auth 'Basic …' \
//!       --authorize '/authorize?response_type=code&…' --cookies FILE \
//!       --redirect-uri URI --verifier V --conns 32 --secs 10
//!
//! refresh: each connection starts from token PREFIX{FIRST + i} and then presents the token
//! each response returns (a client refreshing over and over, rotation on). A failed request
//! breaks the chain; the connection then takes the next unused seeded token, up to --spare.
//!
//! code: one flow = GET /authorize with a signed-in browser's cookies (one line of FILE per
//! browser, connection i uses line i mod n) -> 303 to the redirect URI with a code -> POST
//! /token (authorization_code + PKCE verifier). Latency and status are per flow.
//!
//! Connections are plain HTTP/1.1 keep-alive, one request in flight each; the run stops at
//! --secs (flows in flight then are not counted), like `oha -z`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

#[derive(Default)]
struct Opts {
    mode: String,
    url: String,
    auth: String,
    prefix: String,
    first: usize,
    spare: usize,
    conns: usize,
    secs: f64,
    authorize: String,
    cookies: Vec<String>,
    redirect_uri: String,
    verifier: String,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    status: BTreeMap<u16, u64>,
    errors: BTreeMap<String, u64>,
    /// Why answers were not 2xx: "step status error-code", for diagnosis only (they are
    /// already counted by status).
    refusals: BTreeMap<String, u64>,
}

impl Tally {
    fn error(&mut self, what: String) {
        *self.errors.entry(what).or_default() += 1;
    }
}

fn parse_args() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let mut o = Opts {
        mode: args.next().unwrap_or_default(),
        prefix: "bench-rt-".into(),
        spare: 64,
        conns: 1,
        secs: 1.0,
        ..Default::default()
    };
    if o.mode != "refresh" && o.mode != "code" {
        return Err(format!(
            "unknown mode {:?}; expected refresh or code",
            o.mode
        ));
    }
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
            "--authorize" => o.authorize = v,
            "--redirect-uri" => o.redirect_uri = v,
            "--verifier" => o.verifier = v,
            "--cookies" => {
                let text = std::fs::read_to_string(&v).map_err(|e| format!("--cookies: {e}"))?;
                o.cookies = text
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if o.url.is_empty() {
        return Err("--url is required".into());
    }
    if o.mode == "code" && (o.authorize.is_empty() || o.cookies.is_empty()) {
        return Err("code needs --authorize and --cookies".into());
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

/// The value of query parameter `name` in a Location (codes are base64url: no decoding).
fn query_param(location: &str, name: &str) -> Option<String> {
    let (_, query) = location.split_once('?')?;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
}

/// One keep-alive connection to the server.
struct Conn {
    authority: String,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
}

type Answer = (u16, Option<String>, Bytes);

impl Conn {
    async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Answer, String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(&self.authority)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let _ = stream.set_nodelay(true);
            let (s, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(conn);
            self.sender = Some(s);
        }
        let Some(s) = self.sender.as_mut() else {
            return Err("no connection".into());
        };
        let res: Response<_> = match s.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(format!("http: {e}"));
            }
        };
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match res.into_body().collect().await {
            Ok(b) => Ok((status, location, b.to_bytes())),
            Err(e) => {
                self.sender = None;
                Err(format!("body: {e}"))
            }
        }
    }

    fn post(&self, path: &str, auth: &str, body: String) -> Result<Request<Full<Bytes>>, String> {
        Request::post(path)
            .header("host", self.authority.as_str())
            .header("authorization", auth)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())
    }
}

/// What one flow ended with: the status to count, for refresh the next token, and why
/// it was refused.
enum Flow {
    Done(u16, Option<String>, Option<String>),
    Failed(String),
}

/// "step status error" for a refused answer (the OAuth `error` code when there is one).
fn refusal(step: &str, status: u16, body: &[u8]) -> Option<String> {
    (status >= 400).then(|| {
        let code = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "-".into());
        format!("{step} {status} {code}")
    })
}

async fn refresh_flow(c: &mut Conn, o: &Opts, path: &str, token: &str) -> Flow {
    let body = format!(
        "grant_type=refresh_token&refresh_token={}",
        form_escape(token)
    );
    let req = match c.post(path, &o.auth, body) {
        Ok(r) => r,
        Err(e) => return Flow::Failed(e),
    };
    match c.send(req).await {
        Err(e) => Flow::Failed(e),
        Ok((status, _, body)) => {
            let next = (status == 200)
                .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
                .flatten()
                .and_then(|v| v["refresh_token"].as_str().map(str::to_owned));
            Flow::Done(status, next, refusal("token", status, &body))
        }
    }
}

async fn code_flow(c: &mut Conn, o: &Opts, path: &str, cookie: &str) -> Flow {
    let req = Request::get(o.authorize.as_str())
        .header("host", c.authority.as_str())
        .header("cookie", cookie)
        .body(Full::new(Bytes::new()));
    let req = match req {
        Ok(r) => r,
        Err(e) => return Flow::Failed(e.to_string()),
    };
    let code = match c.send(req).await {
        Err(e) => return Flow::Failed(e),
        Ok((status, location, body)) => {
            match location.as_deref().and_then(|l| query_param(l, "code")) {
                Some(code) if status == 303 || status == 302 => code,
                // Not a code: a login page (cold session) or an error; counted by status.
                _ => {
                    let status = if status < 400 { 599 } else { status };
                    let why = format!(
                        "authorize {status} {}",
                        location
                            .as_deref()
                            .and_then(|l| query_param(l, "error"))
                            .unwrap_or_else(|| {
                                String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned()
                            })
                    );
                    return Flow::Done(status, None, Some(why));
                }
            }
        }
    };
    let body = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
        form_escape(&code),
        form_escape(&o.redirect_uri),
        form_escape(&o.verifier)
    );
    let req = match c.post(path, &o.auth, body) {
        Ok(r) => r,
        Err(e) => return Flow::Failed(e),
    };
    match c.send(req).await {
        Err(e) => Flow::Failed(e),
        Ok((status, _, body)) => Flow::Done(status, None, refusal("token", status, &body)),
    }
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
            t.error(format!("bad url: {e}"));
            return t;
        }
    };
    let path = uri.path().to_owned();
    let mut c = Conn {
        authority: uri.authority().map(|a| a.to_string()).unwrap_or_default(),
        sender: None,
    };
    let mut token = Some(format!("{}{}", o.prefix, o.first + index));
    while Instant::now() < deadline {
        let start = Instant::now();
        let flow = if o.mode == "code" {
            let cookie = &o.cookies[index % o.cookies.len()];
            tokio::time::timeout_at(deadline.into(), code_flow(&mut c, &o, &path, cookie)).await
        } else {
            let Some(current) = token.take() else {
                let k = next_spare.fetch_add(1, Ordering::Relaxed);
                if k >= o.spare {
                    t.error("out of seeded tokens".into());
                    return t;
                }
                token = Some(format!("{}{}", o.prefix, o.first + o.conns + k));
                continue;
            };
            let flow =
                tokio::time::timeout_at(deadline.into(), refresh_flow(&mut c, &o, &path, &current))
                    .await;
            if matches!(flow, Ok(Flow::Failed(_))) {
                token = Some(current); // transport trouble: the token was not spent
            }
            flow
        };
        match flow {
            Err(_) => break, // in flight at the deadline: not counted
            Ok(Flow::Failed(e)) => {
                t.error(e);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(Flow::Done(status, next, why)) => {
                t.latencies_us.push(start.elapsed().as_micros() as u64);
                *t.status.entry(status).or_default() += 1;
                if let Some(why) = why {
                    *t.refusals.entry(why).or_default() += 1;
                }
                if o.mode == "refresh" {
                    token = next;
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
                for (k, v) in t.refusals {
                    *all.refusals.entry(k).or_default() += v;
                }
            }
            Err(e) => all.error(format!("task: {e}")),
        }
    }
    let total = start.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    let n = all.latencies_us.len();
    let ok = *all.status.get(&200).unwrap_or(&0);
    let out = serde_json::json!({
        "summary": {
            "total": total,
            "requestsPerSec": n as f64 / total,
            "successRate": if n == 0 { 0.0 } else { ok as f64 / n as f64 },
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
        "refusals": all.refusals,
    });
    println!("{out}");
}
