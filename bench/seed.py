#!/usr/bin/env python3
"""Seed a migrated Latchkey store for the benchmarks, in SQL (no per-row round trips).

  seed.py --sqlite PATH | --postgres URL
          --pepper PEPPER --secret SECRET --bench-client ID --bench-user UUID
          [--bench-tokens 1000] [--clients N] [--users N] [--tokens N]

Always: BENCH-TOKENS refresh tokens `bench-rt-K` (one grant each) held by the bench client
for the bench user; the refresh driver chains from them.
Scale (--clients/--users/--tokens, e.g. 100000/100000/1000000): clients `seed-client-NNNNNN`
whose secret is SECRET, users `seed-user-NNNNNN` with the bench user's password hash, and
live refresh tokens `seed-rt-NNNNNNN`, one grant each, spread over those clients and users.

Rows are generated inside the database: generate_series on PostgreSQL, a recursive CTE on
SQLite. Client secrets are stored as base64url(HMAC-SHA-256(pepper, "client-secret:" ||
secret)) and refresh tokens as base64url(SHA-256(token)) (see src/secrets.rs), so the
server must run with LATCHKEY_CLIENT_SECRET_PEPPER=PEPPER.
"""
import argparse
import base64
import hashlib
import hmac
import sqlite3
import subprocess
import time

DAY = 86400
SCOPE = "openid profile api:read"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def client_secret_hash(pepper: str, secret: str) -> str:
    return b64(hmac.new(pepper.encode(), b"client-secret:" + secret.encode(), hashlib.sha256).digest())


def token_hash(token: str) -> str:
    return b64(hashlib.sha256(token.encode()).digest())


def statements(a, now: int, secret_hash: str, dialect: str):
    """(description, SQL) pairs; {series(N)} expands to a 0..N-1 row source named s(i)."""
    if dialect == "postgres":
        series = "generate_series(0, {n} - 1) AS s(i)"
        pad = "lpad(({expr})::text, {w}, '0')"
        sha = "rtrim(translate(encode(sha256(convert_to({expr}, 'UTF8')), 'base64'), '+/', '-_'), '=')"
        false = "FALSE"
    else:
        series = "s"
        pad = "printf('%0{w}d', {expr})"
        sha = "sha256_b64url({expr})"
        false = "0"

    def src(n):
        return series.format(n=n)

    def with_series(n):
        if dialect == "postgres":
            return ""
        return f"WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {n} - 1) "

    def p(expr, w):
        return pad.format(expr=expr, w=w)

    def user_uuid(expr):
        return f"'00000000-0000-4000-8000-' || {p(expr, 12)}"

    out = []
    if a.bench_tokens:
        n = a.bench_tokens
        out.append(("bench grants", f"""
            INSERT INTO grants (id, client_id, user_id, scope, auth_time, created_at, expires_at)
            {with_series(n)}SELECT 'bench-grant-' || i, '{a.bench_client}', '{a.bench_user}', '{SCOPE}',
                   {now}, {now}, {now + 90 * DAY} FROM {src(n)}"""))
        out.append(("bench refresh tokens", f"""
            INSERT INTO refresh_tokens (hash, grant_id, scope, issued_at, expires_at)
            {with_series(n)}SELECT {sha.format(expr="'bench-rt-' || i")}, 'bench-grant-' || i, '{SCOPE}',
                   {now}, {now + 14 * DAY} FROM {src(n)}"""))
    if a.clients:
        n = a.clients
        out.append((f"{n} clients", f"""
            INSERT INTO clients (id, name, kind, secret_hash, auth_method, grant_types, redirect_uris,
                post_logout_redirect_uris, scopes, resources, access_token_ttl, refresh_idle_ttl,
                refresh_absolute_ttl, first_party, created_at)
            {with_series(n)}SELECT 'seed-client-' || {p('i', 6)}, 'seeded client ' || i, 'confidential',
                   '{secret_hash}', NULL, 'client_credentials password refresh_token', '', '',
                   '{SCOPE}', 'https://api.bench.local', 3600, NULL, NULL, {false}, {now}
            FROM {src(n)}"""))
    if a.users:
        n = a.users
        out.append((f"{n} users", f"""
            INSERT INTO users (id, username, password_hash, name, given_name, family_name, email,
                email_verified, disabled, created_at, updated_at)
            {with_series(n)}SELECT {user_uuid('i')}, 'seed-user-' || {p('i', 6)},
                   (SELECT password_hash FROM users WHERE id = '{a.bench_user}'),
                   'Seeded User ' || i, 'Seeded', 'User ' || i, 'seed-user-' || i || '@bench.local',
                   {false}, {false}, {now}, {now}
            FROM {src(n)}"""))
    if a.tokens:
        n = a.tokens
        nc = max(a.clients, 1)
        nu = max(a.users, 1)
        client = f"'seed-client-' || {p(f'i % {nc}', 6)}" if a.clients else f"'{a.bench_client}'"
        user = user_uuid(f"i % {nu}") if a.users else f"'{a.bench_user}'"
        out.append((f"{n} grants", f"""
            INSERT INTO grants (id, client_id, user_id, scope, auth_time, created_at, expires_at)
            {with_series(n)}SELECT 'seed-grant-' || {p('i', 7)}, {client}, {user}, '{SCOPE}',
                   {now}, {now}, {now + 90 * DAY} FROM {src(n)}"""))
        out.append((f"{n} refresh tokens", f"""
            INSERT INTO refresh_tokens (hash, grant_id, scope, issued_at, expires_at)
            {with_series(n)}SELECT {sha.format(expr="'seed-rt-' || " + p('i', 7))}, 'seed-grant-' || {p('i', 7)},
                   '{SCOPE}', {now}, {now + 14 * DAY} FROM {src(n)}"""))
    out.append(("analyze", "ANALYZE"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    db = ap.add_mutually_exclusive_group(required=True)
    db.add_argument("--sqlite")
    db.add_argument("--postgres")
    ap.add_argument("--pepper", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--bench-client", required=True)
    ap.add_argument("--bench-user", required=True)
    ap.add_argument("--bench-tokens", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=0)
    ap.add_argument("--users", type=int, default=0)
    ap.add_argument("--tokens", type=int, default=0)
    a = ap.parse_args()
    now = int(time.time())
    secret_hash = client_secret_hash(a.pepper, a.secret)
    t0 = time.time()
    if a.sqlite:
        conn = sqlite3.connect(a.sqlite, timeout=30)
        conn.create_function("sha256_b64url", 1, token_hash, deterministic=True)
        for what, sql in statements(a, now, secret_hash, "sqlite"):
            t = time.time()
            conn.execute(sql)
            conn.commit()
            print(f"  seeded {what} ({time.time() - t:.1f}s)", flush=True)
        conn.close()
    else:
        for what, sql in statements(a, now, secret_hash, "postgres"):
            t = time.time()
            subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", a.postgres, "-c", sql],
                           check=True, stdout=subprocess.DEVNULL)
            print(f"  seeded {what} ({time.time() - t:.1f}s)", flush=True)
    print(f"  seeding took {time.time() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
