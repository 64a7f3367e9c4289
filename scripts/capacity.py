#!/usr/bin/env python3
"""capacity.py — how many cllm-server and cllm-trust replicas N concurrent users need.

A calculation, not a guess: every per-replica figure is an input that a command measured
(docs/scaling.md lists which), and every output row says which resource bounds it.

  scripts/capacity.py [--figures FILE.json] [--serve-json F] [--attest-json F]
                      [--users 100,1000,10000,100000] [--json] [--set NAME=VALUE ...]

--figures    a JSON object overriding any of the defaults below (the defaults are the figures
             docs/scaling.md records, with the command and machine that produced them);
--serve-json the JSON that `cllm bench serve --json` printed for ONE replica at saturation
             (tokens_per_second becomes decode_tps);
--attest-json the JSON that `cllm bench attest --json` printed against one cllm-trust
             (attestations_per_second becomes trust_attest_per_s);
--set        one figure, e.g. --set request_interval_s=30.

The model (docs/scaling.md, "The model"):
  demand     users make one request every request_interval_s, each prompt_tokens in and
             gen_tokens out: decode demand = users * gen_tokens / request_interval_s tokens/s;
  compute    a replica decodes decode_tps tokens/s at saturation and prefills prefill_tps;
             replicas run at target_utilisation so queues stay short;
  memory     per replica: model_mib + fixed_mib + in-flight sequences * context KV
             + connected users * conn_kib (each user keeps one RA-TLS connection);
             in-flight sequences follow Little's law (arrival rate * time in service);
  trust      every replica re-attests every reattest_s and at start; every NEW client
             connection costs the server one handshake (server_handshake_ms of CPU);
             cllm-trust is asked only by replicas (tokens), not per user request;
  relay      one TCP passthrough connection pair per user: relay_conn_kib each;
  PostgreSQL every attestation = nonce insert + nonce delete + one audit append; the audit
             chain is one serialised append (pg_appends_per_s bounds it).
"""
import argparse
import json
import math
import sys

DEFAULTS = {
    # Per replica (2 vCPUs). Decode/prefill: Qwen3-0.6B Q4_K_M, batched (docs/performance.md §3.2:
    # tg128 82 t/s one sequence, 8 sequences 1.8-2.2x) — measured on the 2-vCPU AMD EPYC.
    "decode_tps": 160.0,
    "prefill_tps": 260.0,
    "max_active": 8,            # sequences a replica decodes at once (--max-active)
    "model_mib": 397.0,         # 0.6B Q4_K_M file
    "fixed_mib": 53.0,          # tokenizer tables, code, stacks (performance.md §3.4)
    "kv_kib_per_token": 112.0,  # Qwen3-0.6B F16 KV: 2 * 28 layers * 8 heads * 128 * 2 bytes
    "conn_kib": 78.6,           # one idle RA-TLS connection (performance.md §6)
    "server_handshake_ms": 4.0,  # server CPU per RA-TLS handshake (performance.md §4.1: 8.9 ms p50 both sides)
    "replica_mem_mib": 4096.0,  # memory of one replica VM/pod
    # cllm-trust (performance.md §5.1): attestations/s of one trust replica, sim mode, 16 clients.
    "trust_attest_per_s": 350.0,
    "reattest_s": 3600.0,       # a replica re-attests (new key + token) this often
    "starts_per_replica_per_h": 1.0,  # restarts/scale-ups: each start = attest + key release
    "pg_appends_per_s": 2000.0,  # ESTIMATE, not measured: serialised audit appends/s on one PostgreSQL
    # ESTIMATE, not measured: nginx stream passthrough, two 16 KiB proxy buffers + state per user.
    "relay_conn_kib": 40.0,
    "relay_max_conns": 100000.0,  # worker_connections * workers / 2 in deploy/relay/nginx.conf
    # Users.
    "request_interval_s": 60.0,  # one request per user per minute (a person chatting)
    "prompt_tokens": 512.0,
    "gen_tokens": 256.0,
    "new_connections_per_user_per_s": 1.0 / 600.0,  # a client reconnects every 10 minutes
    "target_utilisation": 0.7,
}


def load_figures(args):
    f = dict(DEFAULTS)
    if args.figures:
        with open(args.figures) as fh:
            over = json.load(fh)
        unknown = set(over) - set(f)
        if unknown:
            sys.exit(f"capacity.py: unknown figure(s) in {args.figures}: {', '.join(sorted(unknown))}")
        f.update({k: float(v) for k, v in over.items()})
    if args.serve_json:
        with open(args.serve_json) as fh:
            s = json.load(fh)
        if s.get("failed", 0):
            sys.exit(f"capacity.py: {args.serve_json} has failed requests; measure again")
        f["decode_tps"] = float(s["tokens_per_second"])
    if args.attest_json:
        with open(args.attest_json) as fh:
            a = json.load(fh)
        rate = a.get("attestations_per_second", a.get("per_second"))
        if rate is None:
            sys.exit(f"capacity.py: {args.attest_json} has no attestations_per_second")
        f["trust_attest_per_s"] = float(rate)
    for kv in args.set or []:
        name, _, value = kv.partition("=")
        if name not in f or not value:
            sys.exit(f"capacity.py: --set {kv}: expected NAME=VALUE with NAME one of {', '.join(sorted(f))}")
        f[name] = float(value)
    for k, v in f.items():
        if not math.isfinite(v) or v < 0:
            sys.exit(f"capacity.py: figure {k}={v} must be a finite non-negative number")
    for k in ("decode_tps", "prefill_tps", "max_active", "trust_attest_per_s", "pg_appends_per_s",
              "request_interval_s", "target_utilisation", "replica_mem_mib", "relay_max_conns"):
        if f[k] <= 0:
            sys.exit(f"capacity.py: figure {k} must be > 0")
    return f


def plan(users, f):
    u = f["target_utilisation"]
    req_per_s = users / f["request_interval_s"]
    decode_demand = req_per_s * f["gen_tokens"]
    prefill_demand = req_per_s * f["prompt_tokens"]
    # Compute: the fraction of a replica's second spent decoding plus prefilling.
    busy = decode_demand / f["decode_tps"] + prefill_demand / f["prefill_tps"]
    handshakes_per_s = users * f["new_connections_per_user_per_s"]
    busy += handshakes_per_s * f["server_handshake_ms"] / 1000.0
    r_compute = max(1, math.ceil(busy / u))
    # Little's law: a request spends prefill + decode time at the replica's share of throughput.
    service_s = f["prompt_tokens"] / f["prefill_tps"] + f["gen_tokens"] / (f["decode_tps"] / f["max_active"])
    in_flight = req_per_s * service_s
    ctx = f["prompt_tokens"] + f["gen_tokens"]
    kv_mib_per_seq = ctx * f["kv_kib_per_token"] / 1024.0

    def mem_per_replica(r):
        seqs = min(in_flight / r, f["max_active"])
        return (f["model_mib"] + f["fixed_mib"] + seqs * kv_mib_per_seq +
                (users / r) * f["conn_kib"] / 1024.0)

    r_mem = 1
    while mem_per_replica(r_mem) > f["replica_mem_mib"]:
        r_mem += 1
        if r_mem > 10_000_000:
            return None
    # Sequences are bounded by max_active per replica: the rest wait in the queue.
    r_slots = max(1, math.ceil(in_flight / (f["max_active"] * u)))
    replicas = max(r_compute, r_mem, r_slots)
    bound = next(name for name, r in (("compute", r_compute), ("memory", r_mem), ("decode slots", r_slots))
                 if r == replicas)
    # A start costs two trust requests (token, model key), a re-attestation one.
    trust_load = replicas * (1.0 / f["reattest_s"] + 2.0 * f["starts_per_replica_per_h"] / 3600.0)
    trust_replicas = max(2, math.ceil(trust_load / (f["trust_attest_per_s"] * u)))  # two for availability
    pg_writes = trust_load * 3
    relays = max(2, math.ceil(users / (f["relay_max_conns"] * u)))
    return {
        "users": users,
        "requests_per_s": round(req_per_s, 2),
        "decode_tokens_per_s": round(decode_demand, 1),
        "server_replicas": replicas,
        "bound_by": bound,
        "replicas_compute": r_compute,
        "replicas_memory": r_mem,
        "replicas_slots": r_slots,
        "in_flight_sequences": round(in_flight, 1),
        "memory_per_replica_mib": round(mem_per_replica(replicas), 1),
        "new_handshakes_per_s": round(handshakes_per_s, 2),
        "trust_attestations_per_s": round(trust_load, 3),
        "trust_replicas": trust_replicas,
        "postgres_writes_per_s": round(pg_writes, 3),
        "postgres_headroom": round(f["pg_appends_per_s"] / max(pg_writes / 3, 1e-9), 0),
        "relay_instances": relays,
        "relay_memory_mib": round(users * f["relay_conn_kib"] / 1024.0, 1),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--figures")
    p.add_argument("--serve-json")
    p.add_argument("--attest-json")
    p.add_argument("--users", default="100,1000,10000,100000")
    p.add_argument("--set", action="append", metavar="NAME=VALUE")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    f = load_figures(args)
    try:
        counts = [int(x) for x in args.users.split(",") if x]
    except ValueError:
        sys.exit("capacity.py: --users takes a comma-separated list of integers")
    if not counts or any(n <= 0 for n in counts):
        sys.exit("capacity.py: --users needs positive integers")
    rows = [plan(n, f) for n in counts]
    if any(r is None for r in rows):
        sys.exit("capacity.py: one replica cannot hold a single user's memory; check the figures")
    if args.json:
        print(json.dumps({"figures": f, "plans": rows}, indent=2))
        return
    print("figures: " + ", ".join(f"{k}={v:g}" for k, v in f.items()))
    head = ("users", "req/s", "decode t/s", "servers", "bound by", "mem/server MiB", "trust", "pg writes/s",
            "relays", "relay MiB")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print(f"| {r['users']:,} | {r['requests_per_s']:g} | {r['decode_tokens_per_s']:,.0f} | "
              f"{r['server_replicas']:,} | {r['bound_by']} | {r['memory_per_replica_mib']:,.0f} | "
              f"{r['trust_replicas']} | {r['postgres_writes_per_s']:g} | {r['relay_instances']} | "
              f"{r['relay_memory_mib']:,.0f} |")


if __name__ == "__main__":
    main()
