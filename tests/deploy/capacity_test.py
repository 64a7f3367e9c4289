#!/usr/bin/env python3
"""capacity_test.py — scripts/capacity.py: the plan grows with the users, names its bound, honours
measured inputs and refuses bad ones (ctest capacity_test, label deploy)."""
import json
import os
import subprocess
import sys
import tempfile

root = sys.argv[1]
script = os.path.join(root, "scripts", "capacity.py")


def run(*args, ok=True):
    p = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        sys.exit(f"FAIL: capacity.py {' '.join(args)} exited {p.returncode}: {p.stderr}")
    if not ok and p.returncode == 0:
        sys.exit(f"FAIL: capacity.py {' '.join(args)} accepted bad input")
    return p


def plans(*args):
    return json.loads(run("--json", *args).stdout)["plans"]


rows = plans("--users", "100,1000,10000,100000")
assert [r["users"] for r in rows] == [100, 1000, 10000, 100000], rows
for a, b in zip(rows, rows[1:]):
    assert b["server_replicas"] >= a["server_replicas"], (a, b)
    assert b["relay_memory_mib"] > a["relay_memory_mib"], (a, b)
for r in rows:
    assert r["bound_by"] in ("compute", "memory", "decode slots"), r
    assert r["server_replicas"] == max(r["replicas_compute"], r["replicas_memory"], r["replicas_slots"]), r
    assert r["trust_replicas"] >= 2 and r["relay_instances"] >= 2, r
# Compute-bound: ten times the decode rate per replica, about a tenth of the replicas.
fast = plans("--users", "100000", "--set", "decode_tps=1600", "--set", "prefill_tps=2600")[0]
assert fast["server_replicas"] * 9 < rows[-1]["server_replicas"] < fast["server_replicas"] * 11, (fast, rows[-1])
# A tiny replica memory makes memory the bound.
mem = plans("--users", "1000", "--set", "replica_mem_mib=460", "--set", "decode_tps=100000",
            "--set", "prefill_tps=100000")[0]
assert mem["bound_by"] == "memory", mem
# Measured inputs: a bench serve JSON sets decode_tps; one with failures is refused.
with tempfile.TemporaryDirectory() as d:
    good, bad = os.path.join(d, "good.json"), os.path.join(d, "bad.json")
    json.dump({"tokens_per_second": 1234.5, "failed": 0}, open(good, "w"))
    json.dump({"tokens_per_second": 1234.5, "failed": 3}, open(bad, "w"))
    figures = json.loads(run("--json", "--serve-json", good).stdout)["figures"]
    assert figures["decode_tps"] == 1234.5, figures
    run("--serve-json", bad, ok=False)
run("--set", "decode_tps=-1", ok=False)
run("--set", "nonsense=1", ok=False)
run("--users", "0", ok=False)
run("--users", "abc", ok=False)
print("capacity_test: ok")
