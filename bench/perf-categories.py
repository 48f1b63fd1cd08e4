#!/usr/bin/env python3
"""Where the service's CPU goes: reads `perf script -F comm,tid,ip,sym,dso` (a file, or - for
stdin) and puts each sample in the first category that appears anywhere in its stack (so the
order of RULES matters: the RSA verify before the HTTP stack it runs under), then prints shares.
See README "Where the CPU went"."""
import sys, collections
RULES = [
 ("RSA verify (aws-lc)", ["rsa_verify","EVP_DigestVerify","BN_mod_exp"]),
 ("logging (tracing-subscriber fmt, write to stderr)", ["tracing_subscriber","tracing_core::","tracing::span","nu_ansi"]),
 ("database client (sqlx, Postgres protocol)", ["sqlx"]),
 ("form parse, sign string, notification checks", ["alipay_notify::alipay::form","alipay_notify::alipay::callback","alipay_notify::alipay::notification","RawParams","SignString"]),
 ("group commit, batching, event building", ["alipay_notify::orders","alipay_notify::notify"]),
 ("metrics", ["prometheus_client","alipay_notify::metrics"]),
 ("middleware (request id, trace span, headers, router)", ["tower_http","axum::","tower::","uuid"]),
 ("@kernel", []),
 ("HTTP/1 (hyper) and connection watchdog", ["hyper","alipay_notify::http::server"]),
 ("tokio runtime (scheduling, timers, parking)", ["tokio::"]),
]
samples=[]; cur=[]; head=None
for line in (sys.stdin if sys.argv[1] == '-' else open(sys.argv[1])):
    if not line.strip():
        if head: samples.append((head,cur))
        head=None; cur=[]; continue
    if not line.startswith((' ','\t')):
        head=line.split()[0]; cur=[]; continue
    cur.append(line.strip())
if head: samples.append((head,cur))
counts=collections.Counter(); kern=collections.Counter()
for comm,frames in samples:
    text="\n".join(frames)
    cat=None
    for name,keys in RULES:
        if name=="@kernel":
            if frames and "[kernel" in frames[0]: cat="kernel: socket reads/writes, wakeups (syscalls)"; break
            continue
        if any(k in text for k in keys): cat=name; break
    if cat is None:
        leaf=frames[0] if frames else ""
        if "[kernel" in leaf: cat="kernel (other)"
        elif "libc" in leaf: cat="libc (malloc, memcpy)"
        else: cat="other"
    counts[cat]+=1
n=sum(counts.values())
for k,v in counts.most_common(): print(f"{100*v/n:5.1f}%  {k}")
print(n,"samples")
