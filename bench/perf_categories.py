#!/usr/bin/env python3
"""Splits `perf script` output (sampled with --call-graph dwarf) of the gateway into where the
time goes: each sample is charged to the first category (in the order below) whose marker
appears anywhere in its stack. Deep stacks are cut at the dwarf stack size, so a few samples
land in a less specific category.  usage: perf script -i perf.data | perf_categories.py
"""

import collections
import sys

RULES = [
    ("policy evaluation (regorus)", ("regorus", "Policy::evaluate", "policy::input")),
    ("inbound SigV4 verification", ("waguard::auth",)),
    ("outbound SigV4 signing", ("sign_headers", "aws_sigv4")),
    ("audit records (build, serialize, hash)",
     ("decision_record", "audit_outcome", "audit::chain", "AuditLog::submit", "AuditLog::record")),
    ("request log line (tracing)", ("tracing",)),
    ("metrics", ("prometheus",)),
    ("routing and validation", ("operation::route", "validate::", "Gateway::interpret")),
    ("upstream HTTP client (hyper client)", ("hyper::client", "hyper_util::client", "Upstream::dispatch")),
    ("inbound HTTP (hyper server)", ("hyper::proto", "hyper::server", "hyper_util::server")),
    ("other gateway code", ("waguard::",)),
    ("tokio runtime", ("tokio::",)),
]


def main():
    counts = collections.Counter()
    for sample in sys.stdin.read().split("\n\n"):
        lines = [l for l in sample.strip().split("\n") if l.strip()]
        if not lines:
            continue
        thread = lines[0].split()[0]
        frames = lines[1:]
        if thread != "tokio-rt-worker":
            counts[f"thread {thread}"] += 1
            continue
        for name, markers in RULES:
            if any(m in f for f in frames for m in markers):
                counts[name] += 1
                break
        else:
            leaf = frames[0] if frames else ""
            kind = "kernel" if "[kernel" in leaf else "libc" if "libc" in leaf else "unattributed"
            counts[f"other ({kind})"] += 1
    total = sum(counts.values()) or 1
    for name, n in counts.most_common():
        print(f"{100 * n / total:6.1f}%  {name}")
    print(f"({total} samples)")


if __name__ == "__main__":
    main()
