#!/usr/bin/env python3
"""Latchkey vs node-oidc-provider, side by side on loopback. Started by bench/run.sh, which
builds and installs everything first; see bench/README.md.

Every case is bounded in time (oha -z, or the driver's --secs), warmed up (not in --smoke),
and run twice at 32 connections and twice at 1 (once each in --smoke). Server CPU comes from
/proc/PID/stat over the run, peak RSS from VmHWM after resetting it (/proc/PID/clear_refs).
"""
import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
LATCHKEY = TARGET / "release" / "latchkey"
OHA = WORK / "loadgen" / "root" / "bin" / "oha"
DRIVER = WORK / "target" / "release" / "latchkey-bench-driver"
PEER = WORK / "peer"
RAW = WORK / "results"

PEPPER = "bench-pepper-7d3c1f0a9b8e4d2c6a5f0e1d3c2b1a09"  # fixed so seeded secrets verify
SEED_SECRET = "bench-seeded-client-secret-0123456789abcdef"
PASSWORD = "bench-password-correct-horse"
API = "https://api.bench.local"
SCALE = {"clients": 100_000, "users": 100_000, "tokens": 1_000_000}
SMOKE_SCALE = {"clients": 1_000, "users": 1_000, "tokens": 10_000}
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
HZ = os.sysconf("SC_CLK_TCK")
DEADLINE_ERRORS = ("aborted due to deadline",)

children = []  # Popen objects we started and must stop
pg_dbs = []  # PostgreSQL databases we created and must drop


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------- processes and /proc

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class RssWatch:
    """Peak RSS over a window: VmHWM after a reset, with a 50 ms VmRSS sampler as fallback."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
            self.reset = True
        except OSError:
            self.reset = False
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        while not self.stop.wait(0.05):
            try:
                self.peak = max(self.peak, status_kib(self.pid, "VmRSS"))
            except OSError:
                return

    def done(self):
        self.stop.set()
        self.thread.join()
        hwm = status_kib(self.pid, "VmHWM") if self.reset else 0
        return max(self.peak, hwm) / 1024


def wait_http(url, secs=20):
    end = time.time() + secs
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {secs}s")


def stop_process(p, grace=10):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def cleanup():
    for p in reversed(children):
        stop_process(p)
    children.clear()
    if (PEER / "server.pid").exists():
        subprocess.run([str(PEER / "stop.sh")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for name in pg_dbs:
        psql(PG_ADMIN, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", check=False)
    pg_dbs.clear()


def psql(url, sql, check=True):
    return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                          check=check, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# ---------------------------------------------------------------- HTTP helpers

def basic(client_id, secret):
    raw = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def post_form(url, form, auth):
    req = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST",
                                 headers={"Authorization": auth,
                                          "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def hidden(html, name):
    marker = f'name="{name}" value="'
    start = html.find(marker)
    if start < 0:
        return None
    start += len(marker)
    return html[start:html.find('"', start)].replace("&amp;", "&").replace("&#x2f;", "/").replace("&#x2F;", "/")


def browser_sign_in(base, authorize_query, username, password):
    """A scripted browser: authorize -> login -> (consent) -> redirect to the client. Returns
    the Cookie header of the signed-in session, ready for warm authorize requests."""
    opener = urllib.request.build_opener(NoRedirect)
    jar = {}

    def go(path, form=None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(base + path, data=data, method="POST" if form is not None else "GET",
                                     headers={"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())})
        try:
            res = opener.open(req, timeout=10)
        except urllib.error.HTTPError as e:
            res = e
        for c in res.headers.get_all("Set-Cookie") or []:
            name, _, value = c.split(";", 1)[0].partition("=")
            if value and "max-age=0" not in c.lower():
                jar[name.strip()] = value.strip()
            else:
                jar.pop(name.strip(), None)
        return res.status if hasattr(res, "status") else res.code, res.headers.get("Location"), res.read().decode()

    status, loc, _ = go("/authorize?" + authorize_query)
    for _ in range(8):
        if not loc or not loc.startswith("/"):
            break
        if loc.startswith("/login") or loc.startswith("/consent"):
            _, _, page = go(loc)
            form = {"request": hidden(page, "request"), "csrf": hidden(page, "csrf")}
            if loc.startswith("/login"):
                form.update(username=username, password=password)
                status, loc, _ = go("/login", form)
            else:
                form.update(decision="approve")
                status, loc, _ = go("/consent", form)
        else:
            status, loc, _ = go(loc)
    if not loc or "code=" not in loc:
        raise RuntimeError(f"browser sign-in did not end with a code (status {status}, location {loc})")
    return "; ".join(f"{k}={v}" for k, v in jar.items())


# ---------------------------------------------------------------- servers

class Latchkey:
    """One `latchkey serve` over a fresh store (SQLite file in its own folder, or a new
    PostgreSQL database), with a bench client and user created through the CLI."""

    def __init__(self, db, alg, tag, scale=None, bench_tokens=1000):
        self.db, self.alg, self.tag = db, alg, tag
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dir = WORK / "run" / tag
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.env = dict(os.environ,
                        LATCHKEY_LISTEN=f"127.0.0.1:{self.port}", LATCHKEY_ISSUER=self.base,
                        LATCHKEY_KEYS__ALGORITHM=alg, LATCHKEY_LOG_LEVEL="warn",
                        LATCHKEY_TOKENS__AUDIENCE=API, LATCHKEY_CLIENT_SECRET_PEPPER=PEPPER)
        if db == "postgres":
            self.pg_name = f"latchkey_bench_{os.getpid()}_{tag.replace('-', '_')}".lower()
            psql(PG_ADMIN, f"DROP DATABASE IF EXISTS {self.pg_name} WITH (FORCE)")
            psql(PG_ADMIN, f"CREATE DATABASE {self.pg_name}")
            pg_dbs.append(self.pg_name)
            u = urllib.parse.urlsplit(PG_ADMIN)
            self.env["LATCHKEY_DATABASE_URL"] = urllib.parse.urlunsplit(u._replace(path="/" + self.pg_name))
        else:
            self.env["LATCHKEY_DATABASE_URL"] = ""  # ./data/latchkey.db in self.dir
        c = self.cli(["client", "create", "--name", "bench", "--grant-type", "client_credentials",
                      "--grant-type", "password", "--grant-type", "refresh_token",
                      "--scope", "api:read openid profile", "--resource", API, "--json"])
        self.client_id, self.secret = c["client_id"], c["client_secret"]
        u = self.cli(["user", "create", "--username", "bench-user", "--name", "Bench User",
                      "--email", "bench-user@bench.local", "--password-stdin", "--json"], stdin=PASSWORD + "\n")
        self.user_id = u["id"]
        self.seed(scale, bench_tokens)
        self.start()

    def cli(self, args, stdin=None):
        out = subprocess.run([str(LATCHKEY), *args], cwd=self.dir, env=self.env, input=stdin,
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"latchkey {' '.join(args[:2])} failed: {out.stderr.strip()[:400]}")
        return json.loads(out.stdout)

    def seed(self, scale, bench_tokens):
        scale = scale or {}
        target = ([f"--sqlite={self.dir / 'data' / 'latchkey.db'}"] if self.db == "sqlite"
                  else [f"--postgres={self.env['LATCHKEY_DATABASE_URL']}"])
        # key=value: generated ids may start with "-"
        args = [sys.executable, str(HERE / "seed.py"), *target, f"--pepper={PEPPER}",
                f"--secret={SEED_SECRET}", f"--bench-client={self.client_id}", f"--bench-user={self.user_id}",
                f"--bench-tokens={bench_tokens}"]
        for k in ("clients", "users", "tokens"):
            args.append(f"--{k}={scale.get(k, 0)}")
        subprocess.run(args, check=True, stdout=None if scale else subprocess.DEVNULL)

    def start(self):
        self.log = open(self.dir / "server.log", "w")
        self.proc = subprocess.Popen([str(LATCHKEY), "serve"], cwd=self.dir, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        children.append(self.proc)
        wait_http(self.base + "/readyz")
        time.sleep(1.0)
        self.pid = self.proc.pid
        self.idle_rss = status_kib(self.pid, "VmRSS") / 1024

    def stop(self):
        stop_process(self.proc)
        children.remove(self.proc)
        self.log.close()
        if self.db == "postgres":
            psql(PG_ADMIN, f"DROP DATABASE IF EXISTS {self.pg_name} WITH (FORCE)", check=False)
            pg_dbs.remove(self.pg_name)

    def auth(self):
        return basic(self.client_id, self.secret)

    def token(self, form, auth=None):
        return post_form(self.base + "/token", form, auth or self.auth())


class Peer:
    """node-oidc-provider through the peer's own run.sh/stop.sh (copied to bench/work/peer)."""

    def __init__(self, alg):
        self.alg, self.port = alg, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PORT=str(self.port))
        subprocess.run([str(PEER / "run.sh"), alg], env=env, check=True, stdout=subprocess.DEVNULL)
        self.pid = int((PEER / "server.pid").read_text())
        time.sleep(0.5)
        self.idle_rss = status_kib(self.pid, "VmRSS") / 1024

    def stop(self):
        subprocess.run([str(PEER / "stop.sh")], check=True, stdout=subprocess.DEVNULL)

    def auth(self):
        return basic("bench-client", "bench-secret")


# ---------------------------------------------------------------- load

def measure(label, pid, cmd, secs):
    """Runs one load command (oha or the driver, both printing oha-shaped JSON) against `pid`."""
    rss = RssWatch(pid)
    t0, s0 = cpu_ticks(pid), time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 60)
    t1, s1 = cpu_ticks(pid), time.time()
    peak = rss.done()
    RAW.mkdir(parents=True, exist_ok=True)
    (RAW / f"{label}.json").write_text(out.stdout)
    if out.returncode != 0:
        raise RuntimeError(f"{label}: load generator failed: {out.stderr.strip()[:400]}")
    d = json.loads(out.stdout)
    sc = d.get("statusCodeDistribution") or {}
    ok = sum(v for k, v in sc.items() if k.startswith("2"))
    total = d["summary"]["total"]
    errs = sum(v for k, v in sc.items() if not k.startswith("2"))
    errs += sum(v for k, v in (d.get("errorDistribution") or {}).items()
                if not any(k.startswith(x) for x in DEADLINE_ERRORS))
    if d.get("refusals"):
        log(f"    {label}: refused: {d['refusals']}")
    lp = d.get("latencyPercentiles") or {}
    return {"rps": ok / total, "p50": (lp.get("p50") or 0) * 1000, "p99": (lp.get("p99") or 0) * 1000,
            "ok": ok, "errors": errs, "cpu": (t1 - t0) / HZ / (s1 - s0) * 100, "rss": peak}


def oha_cmd(secs, conns, spec):
    cmd = [str(OHA), "-z", f"{secs}s", "-c", str(conns), "--worker-threads", "2", "--no-tui",
           "--output-format", "json"]
    if spec.get("method"):
        cmd += ["-m", spec["method"]]
    if spec.get("auth"):
        cmd += ["-H", f"Authorization: {spec['auth']}"]
    for h in spec.get("headers", []):
        cmd += ["-H", h]
    if spec.get("body") is not None:
        cmd += ["-T", "application/x-www-form-urlencoded", "-d", spec["body"]]
    return cmd + [spec["url"]]


class Runner:
    def __init__(self, mode):
        self.mode = mode
        self.secs = {"full": 10, "quick": 3, "smoke": 1}[mode]
        self.c1_secs = {"full": 5, "quick": 2, "smoke": 1}[mode]
        self.warm = {"full": 2, "quick": 1, "smoke": 0}[mode]
        self.reps = 1 if mode == "smoke" else 2
        self.rows = []  # dicts: scenario, server, store, conns, runs[], note
        self.driver_cursor = 0
        self.code_flow_advertised = False
        self.failures = []

    def cmd(self, spec, secs, conns):
        if spec["kind"] == "oha":
            return oha_cmd(secs, conns, spec)
        if spec["kind"] == "code":
            return [str(DRIVER), "code", "--url", spec["url"], "--auth", spec["auth"],
                    "--authorize", spec["authorize"], "--cookies", spec["cookies"],
                    "--redirect-uri", spec["redirect_uri"], "--verifier", spec["verifier"],
                    "--conns", str(conns), "--secs", str(secs)]
        # refresh chains: each invocation gets fresh seeded tokens
        first = self.driver_cursor
        self.driver_cursor += conns + spec["spare"]
        return [str(DRIVER), "refresh", "--url", spec["url"], "--auth", spec["auth"],
                "--prefix", "bench-rt-", "--first", str(first), "--spare", str(spec["spare"]),
                "--conns", str(conns), "--secs", str(secs)]

    def case(self, scenario, server, store, pid, spec, conns_list=(32, 1), extra=None):
        tag = f"{server}-{store}-{scenario}".replace(" ", "_").replace("/", "_")
        if self.warm:
            measure(f"warm-{tag}", pid, self.cmd(spec, self.warm, 32), self.warm)
        for conns in conns_list:
            secs = self.secs if conns > 1 else self.c1_secs
            runs = [measure(f"{tag}-c{conns}-r{r}", pid, self.cmd(spec, secs, conns), secs)
                    for r in range(1, self.reps + 1)]
            row = {"scenario": scenario, "server": server, "store": store, "conns": conns,
                   "runs": runs, **(extra or {})}
            self.rows.append(row)
            m = mean(runs, "rps")
            log(f"  {scenario:<28} {server:<9} {store:<8} c{conns:<3} {m:>9.0f} rps  "
                f"p50 {mean(runs, 'p50'):6.2f} ms  p99 {mean(runs, 'p99'):7.2f} ms  "
                f"err {sum(r['errors'] for r in runs)}  cpu {mean(runs, 'cpu'):.0f}%  "
                f"rss {max(r['rss'] for r in runs):.0f} MiB")

    def mixed(self, lk, store, base_spec, load_spec):
        """client_credentials at 1 connection while the password grant runs flat out."""
        secs = self.secs
        bg = subprocess.Popen(oha_cmd(secs + 2, 32, load_spec), stdout=subprocess.DEVNULL)
        children.append(bg)
        try:
            time.sleep(1)
            runs = [measure(f"latchkey-{store}-cc-under-password-r1", lk.pid,
                            oha_cmd(secs, 1, base_spec), secs)]
        finally:
            bg.wait(secs + 30)
            children.remove(bg)
        self.rows.append({"scenario": "client_credentials ES256 during password load",
                          "server": "latchkey", "store": store, "conns": 1, "runs": runs})
        log(f"  cc ES256 c1 during password c32 ({store}): p99 {runs[0]['p99']:.2f} ms")


def mean(runs, key):
    return sum(r[key] for r in runs) / len(runs) if runs else 0.0


# ---------------------------------------------------------------- scenarios

def token_spec(base, auth, body="grant_type=client_credentials&scope=api:read"):
    return {"kind": "oha", "method": "POST", "url": base + "/token", "auth": auth, "body": body}


def get_spec(url, auth=None):
    return {"kind": "oha", "url": url, "auth": auth}


def user_token(lk, username="bench-user", auth=None):
    return lk.token({"grant_type": "password", "username": username, "password": PASSWORD,
                     "scope": "openid profile api:read"}, auth)


def code_flow_spec(lk, browsers=8):
    """A first-party web client and `browsers` signed-in sessions (each its own user)."""
    redirect = "http://127.0.0.1:9/cb"
    c = lk.cli(["client", "create", "--name", "web", "--grant-type", "authorization_code",
                "--grant-type", "refresh_token", "--redirect-uri", redirect, "--scope", "openid profile",
                "--first-party", "--json"])
    verifier = "bench-pkce-verifier-" + "x" * 40
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urllib.parse.urlencode({"response_type": "code", "client_id": c["client_id"], "redirect_uri": redirect,
                                    "scope": "openid profile", "state": "bench-state", "nonce": "bench-nonce",
                                    "code_challenge": challenge, "code_challenge_method": "S256"})
    cookies = []
    for i in range(browsers):
        name = f"bench-browser-{i}"
        lk.cli(["user", "create", "--username", name, "--password-stdin", "--json"], stdin=PASSWORD + "\n")
        cookies.append(browser_sign_in(lk.base, query, name, PASSWORD))
    path = lk.dir / "cookies.txt"
    path.write_text("\n".join(cookies) + "\n")
    return {"kind": "code", "url": lk.base + "/token", "auth": basic(c["client_id"], c["client_secret"]),
            "authorize": "/authorize?" + query, "cookies": str(path), "redirect_uri": redirect,
            "verifier": verifier}


def run_peer(r, alg, infos):
    log(f"peer {alg}")
    peer = Peer(alg)
    infos[f"peer-{alg}"] = peer.idle_rss
    try:
        r.case(f"client_credentials {alg}", "peer", "memory", peer.pid, token_spec(peer.base, peer.auth()))
        if alg == "RS256":
            r.case("jwks", "peer", "memory", peer.pid, get_spec(peer.base + "/jwks"))
            r.case("discovery", "peer", "memory", peer.pid,
                   get_spec(peer.base + "/.well-known/openid-configuration"))
            tok = post_form(peer.base + "/token", {"grant_type": "client_credentials", "scope": "api:read",
                                                   "resource": "https://opaque.bench.local"}, peer.auth())
            spec = {"kind": "oha", "method": "POST", "url": peer.base + "/token/introspection",
                    "auth": peer.auth(), "body": "token=" + tok["access_token"]}
            r.case("introspection", "peer", "memory", peer.pid, spec,
                   extra={"note": "opaque token (the peer cannot introspect its JWTs)"})
    finally:
        peer.stop()


def run_latchkey(r, store, alg, infos, scenarios):
    log(f"latchkey {alg} on {store}")
    lk = Latchkey(store, alg, f"{store}-{alg}")
    infos[f"latchkey-{store}-{alg}"] = lk.idle_rss
    try:
        cc = token_spec(lk.base, lk.auth())
        with urllib.request.urlopen(lk.base + "/.well-known/openid-configuration", timeout=5) as d:
            r.code_flow_advertised = "authorization_endpoint" in json.load(d)
        if "cc" in scenarios:
            r.case(f"client_credentials {alg}", "latchkey", store, lk.pid, cc)
        if "jwks" in scenarios:
            r.case("jwks", "latchkey", store, lk.pid, get_spec(lk.base + "/jwks"))
            r.case("discovery", "latchkey", store, lk.pid, get_spec(lk.base + "/.well-known/openid-configuration"))
        if "introspect" in scenarios:
            tok = lk.token({"grant_type": "client_credentials", "scope": "api:read"})["access_token"]
            spec = {"kind": "oha", "method": "POST", "url": lk.base + "/introspect", "auth": lk.auth(),
                    "body": "token=" + tok}
            name = "introspection" if alg == "RS256" else f"introspection {alg}"
            r.case(name, "latchkey", store, lk.pid, spec, extra={"note": f"JWT access token ({alg})"})
        if "user" in scenarios:
            pw_body = urllib.parse.urlencode({"grant_type": "password", "username": "bench-user",
                                              "password": PASSWORD, "scope": "openid profile api:read"})
            pw = token_spec(lk.base, lk.auth(), pw_body)
            r.case("password", "latchkey", store, lk.pid, pw, extra={"note": "argon2id m=19MiB t=2; ES256 tokens"})
            r.mixed(lk, store, cc, pw)
            refresh = {"kind": "driver", "url": lk.base + "/token", "auth": lk.auth(), "spare": 32}
            r.case("refresh", "latchkey", store, lk.pid, refresh,
                   extra={"note": "rotation on; each request presents the token the last one returned"})
            at = user_token(lk)["access_token"]
            r.case("userinfo", "latchkey", store, lk.pid,
                   get_spec(lk.base + "/userinfo", "Bearer " + at), extra={"note": "ES256"})
            if r.code_flow_advertised:
                r.case("code flow", "latchkey", store, lk.pid, code_flow_spec(lk),
                       extra={"note": "flows/s: warm-session GET /authorize -> 303 with code -> "
                                      "POST /token (PKCE S256, scope openid profile, ES256 ID token)"})
    finally:
        lk.stop()


def run_scale(r, store, infos, counts):
    log(f"latchkey ES256 on {store}, scale store {counts}")
    lk = Latchkey(store, "ES256", f"{store}-scale", scale=counts)
    infos[f"latchkey-{store}-scale"] = lk.idle_rss
    try:
        seeded = basic("seed-client-050000" if counts["clients"] > 50000 else "seed-client-000500", SEED_SECRET)
        r.case("client_credentials ES256", "latchkey", f"{store}+scale", lk.pid, token_spec(lk.base, seeded))
        tok = lk.token({"grant_type": "client_credentials", "scope": "api:read"}, seeded)["access_token"]
        spec = {"kind": "oha", "method": "POST", "url": lk.base + "/introspect", "auth": seeded, "body": "token=" + tok}
        r.case("introspection ES256", "latchkey", f"{store}+scale", lk.pid, spec)
        refresh = {"kind": "driver", "url": lk.base + "/token", "auth": lk.auth(), "spare": 32}
        r.case("refresh", "latchkey", f"{store}+scale", lk.pid, refresh)
        user = "seed-user-050000" if counts["users"] > 50000 else "seed-user-000500"
        at = user_token(lk, user, seeded)["access_token"]
        r.case("userinfo", "latchkey", f"{store}+scale", lk.pid, get_spec(lk.base + "/userinfo", "Bearer " + at))
    finally:
        lk.stop()


def code_flow_available(r):
    """The code-flow scenario applies once discovery advertises the authorization endpoint."""
    return r.code_flow_advertised


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["full", "quick", "smoke"], default="full")
    ap.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--no-scale", action="store_true")
    ap.add_argument("--only", help="comma list of scenario groups to run: cc, jwks (with discovery), "
                                   "introspect, user (password, refresh, userinfo, code flow)")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--render-only", action="store_true", help="re-render from bench/work/results/last-run.json")
    a = ap.parse_args()
    saved = RAW / "last-run.json"
    if a.render_only:
        import report  # noqa: E402  (bench/report.py)
        d = json.loads(saved.read_text())
        r = Runner(d["mode"])
        r.rows, r.code_flow_advertised = d["rows"], d["code_flow_advertised"]
        r.failures = d.get("failures", [])
        a.mode, a.db = d["mode"], d["db"]
        os.environ["BENCH_LOADAVG"] = d.get("loadavg", "?")
        stamp = (d["generated"], d["commit"]) if "commit" in d else None
        Path(a.out).write_text(report.render(r, d["infos"], a, d["wall"], d["code_flow"], stamp))
        return log(f"wrote {a.out} from {saved}")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))
    started = time.time()
    # What was built and measured: the tree as the run starts.
    stamp = (time.strftime("%Y-%m-%d %H:%M %Z"),
             subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip())
    r = Runner(a.mode)
    infos = {}
    stores = ["sqlite", "postgres"] if a.db == "both" else [a.db]
    if "postgres" in stores and psql(PG_ADMIN, "SELECT 1", check=False).returncode != 0:
        sys.exit(f"PostgreSQL is not reachable at {PG_ADMIN} (set BENCH_PG_URL or use --db sqlite)")
    plan = []
    if not a.no_peer:
        plan += [(f"peer {alg}", run_peer, (r, alg, infos)) for alg in ("RS256", "ES256", "EdDSA")]
    only = set(a.only.split(",")) if a.only else None
    if only and only - {"cc", "jwks", "introspect", "user"}:
        sys.exit(f"--only: unknown group(s) {', '.join(sorted(only - {'cc', 'jwks', 'introspect', 'user'}))}")
    for i, store in enumerate(stores):
        for alg, groups in (("RS256", {"cc", "introspect"} | ({"jwks"} if i == 0 else set())),
                            ("ES256", {"cc", "introspect", "user"}), ("EdDSA", {"cc"})):
            groups = groups & only if only else groups
            if groups:
                plan.append((f"latchkey {alg} {store}", run_latchkey, (r, store, alg, infos, groups)))
    if not a.no_scale:
        plan += [(f"scale {store}", run_scale, (r, store, infos, SMOKE_SCALE if a.mode == "smoke" else SCALE))
                 for store in stores]
    failures = []
    try:
        for name, fn, fn_args in plan:
            try:
                fn(*fn_args)
            except (RuntimeError, OSError, ValueError, KeyError, subprocess.SubprocessError) as e:
                log(f"  FAILED: {name}: {e}")
                failures.append(f"{name}: {e}")
                cleanup()
    finally:
        cleanup()
    r.failures = failures
    wall = time.time() - started
    RAW.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({"mode": a.mode, "db": a.db, "rows": r.rows, "infos": infos, "wall": wall,
                                 "failures": failures,
                                 "code_flow": code_flow_available(r), "code_flow_advertised": r.code_flow_advertised,
                                 "loadavg": os.environ.get("BENCH_LOADAVG", "?"),
                                 "generated": stamp[0], "commit": stamp[1]}))
    import report  # noqa: E402  (bench/report.py)
    Path(a.out).write_text(report.render(r, infos, a, wall, code_flow_available(r), stamp))
    log(f"wrote {a.out} ({wall:.0f}s of load and setup)")
    if failures:
        sys.exit(f"{len(failures)} part(s) failed: " + "; ".join(failures))


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
