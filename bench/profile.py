#!/usr/bin/env python3
"""Where the time goes in one scenario: a system-wide `perf record` while bench.py's load
runs, then the split by process (latchkey, postgres, oha, kernel) and the hottest symbols.

  python3 bench/profile.py SCENARIO [--db sqlite|postgres] [--alg ES256] [--conns 32] [--secs 8]

SCENARIO: cc, introspect, userinfo, refresh, password, jwks, code. Needs `perf`
(Debian: linux-perf) and what bench/run.sh builds and installs. Writes
bench/work/profile-SCENARIO-DB.{data,txt}.
"""
import argparse
import subprocess
import sys
import threading
import urllib.parse

import bench


def spec_for(name, lk):
    if name == "cc":
        return bench.token_spec(lk.base, lk.auth())
    if name == "jwks":
        return bench.get_spec(lk.base + "/jwks")
    if name == "introspect":
        tok = lk.token({"grant_type": "client_credentials", "scope": "api:read"})["access_token"]
        return {"kind": "oha", "method": "POST", "url": lk.base + "/introspect", "auth": lk.auth(),
                "body": "token=" + tok}
    if name == "userinfo":
        return bench.get_spec(lk.base + "/userinfo", "Bearer " + bench.user_token(lk)["access_token"])
    if name == "password":
        body = urllib.parse.urlencode({"grant_type": "password", "username": "bench-user",
                                       "password": bench.PASSWORD, "scope": "openid profile api:read"})
        return bench.token_spec(lk.base, lk.auth(), body)
    if name == "refresh":
        return {"kind": "driver", "url": lk.base + "/token", "auth": lk.auth(), "spare": 32}
    if name == "code":
        return bench.code_flow_spec(lk)
    sys.exit(f"unknown scenario {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("--db", default="postgres", choices=["sqlite", "postgres"])
    ap.add_argument("--alg", default="ES256")
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--secs", type=int, default=8)
    a = ap.parse_args()
    out = bench.WORK / f"profile-{a.scenario}-{a.db}"
    r = bench.Runner("quick")
    lk = bench.Latchkey(a.db, a.alg, f"profile-{a.db}")
    pid = lk.pid
    try:
        spec = spec_for(a.scenario, lk)
        bench.measure("profile-warm", lk.pid, r.cmd(spec, 2, a.conns), 2)
        perf = subprocess.Popen(["perf", "record", "-a", "-F", "499", "-o", f"{out}.data", "--",
                                 "sleep", str(a.secs)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = {}
        t = threading.Thread(target=lambda: result.update(
            bench.measure("profile", lk.pid, r.cmd(spec, a.secs - 1, a.conns), a.secs)))
        t.start()
        t.join()
        perf.wait()
    finally:
        lk.stop()
        bench.cleanup()
    # Other processes on the machine show in the split; the symbols are the server's only.
    by_comm = subprocess.run(["perf", "report", "-i", f"{out}.data", "--stdio", "--sort", "pid,comm",
                              "--percent-limit", "1"], capture_output=True, text=True).stdout
    by_sym = subprocess.run(["perf", "report", "-i", f"{out}.data", "--stdio", "--pid", str(pid),
                             "--sort", "dso,symbol", "--percent-limit", "0.8"],
                            capture_output=True, text=True).stdout
    keep = lambda txt: "\n".join(x for x in txt.splitlines() if x.strip() and not x.startswith("#"))
    text = (f"{a.scenario} on {a.db} ({a.alg}), {a.conns} connections: {result.get('rps', 0):.0f} rps, "
            f"p99 {result.get('p99', 0):.2f} ms, latchkey CPU {result.get('cpu', 0):.0f}%\n\n"
            f"CPU samples by process (latchkey is pid {pid}):\n{keep(by_comm)}\n\n"
            f"Hottest symbols in latchkey (share of its samples):\n{keep(by_sym)}\n")
    (out.with_suffix(".txt")).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
