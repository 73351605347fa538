#!/usr/bin/env python3
"""Prints every load recorded in mloffloadd registries (the loads table): the plan's
device and CPU bytes next to what llama-server reported allocating, and the error.
Usage: tools/loads.py STATE_DIR/registry.db [...]   (Python 3 standard library only)"""
import json
import sqlite3
import sys


def mib(b):
    return b / 1048576.0


def main(paths):
    rows = []
    for p in paths:
        db = sqlite3.connect("file:%s?mode=ro" % p, uri=True)
        for model, plan, measured in db.execute(
                "SELECT model_id, plan, measured FROM loads WHERE measured IS NOT NULL"):
            plan, meas = json.loads(plan), json.loads(measured)
            dev = sum(v.get("model_bytes", 0) + v.get("kv_bytes", 0) + v.get("compute_bytes", 0)
                      for k, v in meas.items() if isinstance(v, dict) and k.startswith("RPC"))
            cpu = sum(v.get("model_bytes", 0) + v.get("kv_bytes", 0) + v.get("compute_bytes", 0)
                      for k, v in meas.items() if isinstance(v, dict) and k.startswith("CPU"))
            rows.append((model, plan.get("gpu_layers"), plan.get("device_bytes", 0), dev,
                         plan.get("cpu_bytes", 0), cpu))
    print("| model | layers on device | device planned MiB | device measured MiB | error | "
          "CPU planned MiB | CPU measured MiB | error |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    absent = 0
    for m, ngl, dp, dm, cp, cm in rows:
        if dp and not dm:
            # planned for a device llama.cpp did not have (the tests' fake NVML GPU with a
            # CPU build): everything ran on the CPU, nothing to compare
            absent += 1
            continue
        de = "%+.1f%%" % ((dp - dm) * 100.0 / dm) if dm else "-"
        ce = "%+.1f%%" % ((cp - cm) * 100.0 / cm) if cm else "-"
        print("| %s | %s | %.2f | %.2f | %s | %.2f | %.2f | %s |" % (
            m, ngl, mib(dp), mib(dm), de, mib(cp), mib(cm), ce))
    if absent:
        print("\n%d load(s) left out: planned for a GPU that llama.cpp did not have (a fake "
              "NVML GPU with a CPU build)." % absent)
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
