"""Reads a `run-flow --json` report of charge_orders on stdin; prints how far apart things started."""

import json
import sys

report = json.load(sys.stdin)
charges = [n["result"] for n in report["nodes"] if n["name"] == "ChargeCard"]
receipts = [n["result"] for n in report["nodes"] if n["name"] == "SendReceipt"]


def shortest_gap(starts):
    starts = sorted(starts)
    return min(b - a for a, b in zip(starts, starts[1:]))


print(f"{report['flow']}: {report['status']}, {len(charges)} charges, {len(receipts)} receipts")
for customer in sorted({c["customer"] for c in charges}):
    starts = [c["started"] for c in charges if c["customer"] == customer]
    if len(starts) == 1:
        print(f"  {customer}: 1 charge")
    else:
        print(f"  {customer}: {len(starts)} charges, {shortest_gap(starts):.1f} s apart or more")
print(f"  the closest two charges (different customers): {shortest_gap([c['started'] for c in charges]):.1f} s apart")
print(f"  the closest two receipts: {shortest_gap([r['started'] for r in receipts]):.1f} s apart")
