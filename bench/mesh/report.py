#!/usr/bin/env python3
"""Post-processing for bench/mesh/run.sh: reads the raw outputs it saved, prints numbers. Never sends traffic.

  report.py median-rps FILE...        median of wrk's "Requests/sec" over the files (integer)
  report.py table RESULTS_DIR         the markdown report: machine, table, ratios, errors, target verdicts

The wrk and h2load parsers (and the node-CPU-per-request median) are bench/proxy/report.py's, loaded from
there; percentiles, meta.env and formatting are bench/lib/report_common.py's.

RESULTS_DIR layout (written by run.sh); TARGET is direct, haproxy-tls or weft-tunnel:
  meta.env                            key=value lines (machine, versions, rates, durations, noise)
  tls.txt                             protocol and cipher openssl got from node B's TLS port
  incidents.txt                       a path that stopped answering before a run (its nodes were restarted)
  tp_ka/TARGET.REP.wrk                wrk, keep-alive
  tp_close/TARGET.REP.wrk             wrk with "Connection: close"
  {tp_ka,tp_close}/TARGET.REP.cpu     CPU seconds of both nodes during the run
  {tp_ka,tp_close}/TARGET.REP.conns   established TCP connections node A → node B's TLS port, mid-run
  */haproxy-tls.REP.info-{before,mid,after}   `show info` of HAProxy node B (TLS counters)
  bulk/TARGET.REP.curl                "HTTP_CODE BYTES SECONDS" of one curl download (or curl's error)
  lat_ka/TARGET.REP.{log,out}         h2load --log-file rows and h2load's summary, keep-alive at a fixed rate
  lat_new/TARGET.REP.{log,out}        the same, one request per connection
  hs/TARGET.REP.{out,cpu}             openssl s_time -new output; CPU seconds of node B during it
  noise/PHASE.TARGET.REP              build/test processes before/after, others' CPU %
"""
import glob
import importlib.util
import os
import re
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from report_common import fmt, fmt_ratio, ratio, read_meta  # noqa: E402

_spec = importlib.util.spec_from_file_location("proxy_report", os.path.join(HERE, "..", "proxy", "report.py"))
proxy_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(proxy_report)
wrk_result, median_rps = proxy_report.wrk_result, proxy_report.median_rps
latency, cpu_per_request = proxy_report.latency, proxy_report.cpu_per_request

TARGETS = ["direct", "haproxy-tls", "weft-tunnel"]
LABEL = {"direct": "direct", "haproxy-tls": "HAProxy TLS", "weft-tunnel": "Weft tunnel"}
MIB = 1048576


def files(dir_, phase, target, ext):
    return sorted(glob.glob(os.path.join(dir_, phase, f"{target}.*.{ext}")))


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def wrk_phase(dir_, phase, target):
    """(median req/s, errors) of a wrk phase; a run without a result counts as one error."""
    fs = files(dir_, phase, target, "wrk")
    if not fs:
        return None, 0
    return median_rps(fs), sum((wrk_result(f) or (0, 0, 1))[2] for f in fs)


def bulk(dir_, target, expected_bytes):
    """(median MiB/s, failures): a run fails unless curl got 200 and the whole file."""
    speeds, failures = [], 0
    for f in files(dir_, "bulk", target, "curl"):
        m = re.search(r"^(\d{3}) (\d+) ([0-9.]+)$", open(f).read(), re.M)
        if m and m.group(1) == "200" and int(m.group(2)) == expected_bytes and float(m.group(3)) > 0:
            speeds.append(int(m.group(2)) / float(m.group(3)) / MIB)
        else:
            failures += 1
    return median(speeds), failures


def handshakes(dir_, target):
    """(median connections/s, median node-B CPU µs per handshake, failed runs) from openssl s_time -new.
    The rate is s_time's connection count ÷ the wall-clock time of the run (TARGET.REP.wall): s_time's
    own "real seconds" are whole seconds, and its -time limit is not wall-clock time."""
    rates, cpu, failures = [], [], 0
    for f in files(dir_, "hs", target, "out"):
        text = open(f).read()
        m = re.search(r"(\d+) connections in \d+ real seconds", text)
        wall = f[:-4] + ".wall"
        seconds = float(open(wall).read()) if os.path.exists(wall) else 0.0
        if not m or seconds <= 0 or re.search(r"ERROR|error", text):
            failures += 1
        if m and seconds > 0:
            n = int(m.group(1))
            rates.append(n / seconds)
            c = f[:-4] + ".cpu"
            if os.path.exists(c) and n > 0:
                cpu.append(float(open(c).read()) / n * 1e6)
    return median(rates), median(cpu), failures


def conns(dir_, phase, target):
    """Median of the mid-run counts of node A → node B connections."""
    values = []
    for f in files(dir_, phase, target, "conns"):
        try:
            values.append(int(open(f).read().strip()))
        except ValueError:
            pass
    return median(values)


def haproxy_info(path):
    info = {}
    if os.path.exists(path):
        for line in open(path):
            if ": " in line:
                k, v = line.rstrip("\n").split(": ", 1)
                info[k] = v
    return info


def haproxy_tls(dir_, phase):
    """HAProxy node B during a phase: median TLS connections accepted per run (CumSslConns after − before)
    and median share of resumed sessions at mid-run (SslFrontendSessionReuse_pct)."""
    accepted, reuse = [], []
    for before in files(dir_, phase, "haproxy-tls", "info-before"):
        b = haproxy_info(before)
        a = haproxy_info(before[: -len("before")] + "after")
        mid = haproxy_info(before[: -len("before")] + "mid")
        if "CumSslConns" in a and "CumSslConns" in b:
            accepted.append(int(a["CumSslConns"]) - int(b["CumSslConns"]))
        if "SslFrontendSessionReuse_pct" in mid:
            reuse.append(int(mid["SslFrontendSessionReuse_pct"]))
    return median(accepted), median(reuse)


def header(meta):
    print(f"## Mesh tunnel benchmark — {meta.get('date', '?')}")
    print()
    print(f"Machine: {meta.get('cores', '?')} cores ({meta.get('cpu_model', '?')}), {meta.get('mem_gib', '?')} GiB, "
          f"{meta.get('kernel', '?')}; {meta.get('haproxy', '?')}; {meta.get('openssl', '?')}; {meta.get('wrk', '?')}; "
          f"{meta.get('h2load', '?')}; {meta.get('python', '?')}; load average at the end {meta.get('load_end', '?')}.")
    targets = meta.get("targets", "").split()
    line = f"Each node runs {meta.get('node_threads', '?')} threads"
    if "weft-tunnel" in targets:
        line = (f"Weft: {meta.get('weft_bin', '?')}, commit {meta.get('weft_commit', '?')}; {meta.get('swift', '')}. "
                + line + " (HAProxy `nbthread`, `weft proxy --threads`)")
    if "haproxy-tls" in targets:
        line += ("; HAProxy node A resumes TLS sessions to node B: "
                 + ("yes (its default)" if meta.get("ssl_reuse", "1") == "1" else "no (no-ssl-reuse)"))
    print(line + ".")
    if "weft-tunnel" in targets and meta.get("weft_debug") == "1":
        print("WARNING: the weft binary is a debug build (its path has /debug/): Weft's numbers are not for reporting.")
    print()


def table(dir_):
    meta = read_meta(dir_)
    targets = [t for t in TARGETS if t in meta.get("targets", " ".join(TARGETS)).split()]
    warmup = float(meta.get("latency_warmup_s", "1"))
    bulk_bytes = int(meta.get("bulk_mib", "0")) * MIB
    header(meta)

    tp, tp_err, tpc, tpc_err, bk, bk_fail, hs, hs_cpu, hs_fail = {}, {}, {}, {}, {}, {}, {}, {}, {}
    for t in targets:
        tp[t], tp_err[t] = wrk_phase(dir_, "tp_ka", t)
        tpc[t], tpc_err[t] = wrk_phase(dir_, "tp_close", t)
        bk[t], bk_fail[t] = bulk(dir_, t, bulk_bytes)
        if t != "direct":
            hs[t], hs_cpu[t], hs_fail[t] = handshakes(dir_, t)
    lka = {t: latency(os.path.join(dir_, "lat_ka"), t, warmup) for t in targets}
    lnew = {t: latency(os.path.join(dir_, "lat_new"), t, warmup) for t in targets}
    cpu_ka = {t: cpu_per_request(os.path.join(dir_, "tp_ka"), t) for t in targets if t != "direct"}
    cpu_close = {t: cpu_per_request(os.path.join(dir_, "tp_close"), t) for t in targets if t != "direct"}
    conns_ka = {t: conns(dir_, "tp_ka", t) for t in targets if t != "direct"}
    conns_close = {t: conns(dir_, "tp_close", t) for t in targets if t != "direct"}

    reps_tp, reps_lat = meta.get("reps_tp", "?"), meta.get("reps_lat", "?")
    rka, rnew = meta.get("rate_ka", "?"), meta.get("rate_new", "?")
    rows = [
        (f"throughput, keep-alive (req/s, median of {reps_tp} × {meta.get('tp_duration_s', '?')} s, wrk {meta.get('wrk_args', '')})", tp, 0),
        (f"single-stream download (MiB/s, median of {reps_tp} × {meta.get('bulk_mib', '?')} MiB, curl)", bk, 0),
        (f"latency p50, keep-alive, at {rka} req/s (µs)", {t: lka[t] and lka[t]["p50"] for t in targets}, 0),
        (f"latency p99, keep-alive, at {rka} req/s (µs)", {t: lka[t] and lka[t]["p99"] for t in targets}, 0),
        (f"throughput, new connection per request (req/s, median of {reps_tp} × {meta.get('tpc_duration_s', '?')} s)", tpc, 0),
        (f"latency p50, new connection per request, at {rnew} req/s (µs)", {t: lnew[t] and lnew[t]["p50"] for t in targets}, 0),
        (f"latency p99, new connection per request, at {rnew} req/s (µs)", {t: lnew[t] and lnew[t]["p99"] for t in targets}, 0),
        (f"TLS handshakes on node B's port (conn/s, openssl s_time -new, median of {reps_tp} × {meta.get('hs_duration_s', '?')} s)", hs, 0),
        ("node B CPU per handshake (µs)", hs_cpu, 0),
        ("CPU of both nodes per request, keep-alive (µs)", cpu_ka, 1),
        ("CPU of both nodes per request, new connection per request (µs)", cpu_close, 1),
        ("TCP connections node A → node B, mid-run, keep-alive (64 client connections)", conns_ka, None),
        ("TCP connections node A → node B, mid-run, new connection per request", conns_close, None),
    ]
    has = {t: t in targets for t in TARGETS}
    pairs = []  # (label, numerator, denominator)
    if has["weft-tunnel"] and has["haproxy-tls"]:
        pairs.append(("Weft/HAProxy", "weft-tunnel", "haproxy-tls"))
    if has["haproxy-tls"] and has["direct"]:
        pairs.append(("HAProxy/direct", "haproxy-tls", "direct"))
    if has["weft-tunnel"] and has["direct"]:
        pairs.append(("Weft/direct", "weft-tunnel", "direct"))
    print("| measurement | " + " | ".join(LABEL[t] for t in targets) + "".join(f" | {p[0]}" for p in pairs) + " |")
    print("|---|" + "---|" * (len(targets) + len(pairs)))
    for label, values, digits in rows:
        line = f"| {label} | " + " | ".join(fmt(values.get(t), digits or 0) for t in targets)
        for _, a, b in pairs:  # digits None: a count, no ratios
            line += " | " + (fmt_ratio(ratio(values.get(a), values.get(b))) if digits is not None else "")
        print(line + " |")
    print()

    print("Achieved fixed rates (req/s, median over repetitions, after the warm-up second): " + "; ".join(
        f"{LABEL[t]} keep-alive {fmt(lka[t]['rate'] if lka[t] else None)}, new-conn {fmt(lnew[t]['rate'] if lnew[t] else None)}"
        for t in targets) + ".")
    if os.path.exists(os.path.join(dir_, "tls.txt")):
        print("Node B's TLS ports (openssl s_client with node A's certificate): "
              + "; ".join(line.strip() for line in open(os.path.join(dir_, "tls.txt")) if line.strip()) + ".")
    if has["haproxy-tls"]:
        for phase, name in (("tp_ka", "keep-alive"), ("tp_close", "new connection per request")):
            accepted, reuse = haproxy_tls(dir_, phase)
            if accepted is not None:
                print(f"HAProxy node B, wrk {name}: {fmt(accepted)} TLS connections accepted per run (median), "
                      f"{fmt(reuse)}% of them resumed sessions at mid-run (`show info` SslFrontendSessionReuse_pct).")
    problems = []
    for t in targets:
        if tp_err.get(t):
            problems.append(f"{LABEL[t]}: {tp_err[t]} wrk errors (keep-alive)")
        if tpc_err.get(t):
            problems.append(f"{LABEL[t]}: {tpc_err[t]} wrk errors (new connection per request)")
        if bk_fail.get(t):
            problems.append(f"{LABEL[t]}: {bk_fail[t]} failed or incomplete downloads")
        if hs_fail.get(t):
            problems.append(f"{LABEL[t]}: {hs_fail[t]} s_time runs with errors or no result")
        for name, d in (("keep-alive", lka[t]), ("new-conn", lnew[t])):
            if d and d["failures"]:
                problems.append(f"{LABEL[t]}: {d['failures']} failed/timed-out h2load requests ({name})")
    print("Errors: " + ("; ".join(problems) if problems else "none (all responses 2xx, no socket errors)") + ".")
    incidents_path = os.path.join(dir_, "incidents.txt")
    incidents = [line.rstrip() for line in open(incidents_path)] if os.path.exists(incidents_path) else []
    if incidents:
        print("Paths that stopped answering (checked with one GET / before every run):")
        for line in incidents:
            print(f"- {line}")
    others, compiling = [], 0
    for f in glob.glob(os.path.join(dir_, "noise", "*")):
        parts = open(f).read().split()
        if len(parts) >= 3:
            others.append(int(parts[2]))
            if int(parts[0]) > 0 or int(parts[1]) > 0:
                compiling += 1
    n_runs = meta.get("runs", "?")
    if others:
        print(f"Other processes' CPU during the measured runs: median {statistics.median(others):.0f}%, "
              f"max {max(others)}% of one core; a Swift build/test process was running around {compiling} "
              f"of {n_runs} runs; {meta.get('noisy_runs', '0')} of {n_runs} runs count as noisy "
              f"(such a process seen, or others > {meta.get('noise_threshold', '15')}% of a core).")
    if meta.get("quiet_note"):
        print(f"WARNING: {meta['quiet_note']}.")
    print()

    if has["weft-tunnel"]:
        verdicts = []
        if has["haproxy-tls"]:
            for name, d in (("throughput (keep-alive req/s)", tp), ("throughput (single-stream MiB/s)", bk)):
                r = ratio(d.get("weft-tunnel"), d.get("haproxy-tls"))
                if r is not None:
                    verdicts.append((f"{name} ≥ 1.0× HAProxy TLS", r >= 1.0,
                                     fmt_ratio(r) + ("" if r >= 1.0 else f", {100 * (1 - r):.0f}% short")))
        if has["direct"]:
            for q in ("p50", "p99"):
                w, d = lka.get("weft-tunnel"), lka.get("direct")
                r = ratio(w and w[q], d and d[q])
                if r is not None:
                    verdicts.append((f"latency {q} (keep-alive) ≤ 4× direct", r <= 4.0,
                                     fmt_ratio(r) + ("" if r <= 4.0 else f", {100 * (r / 4.0 - 1):.0f}% over")))
        for name, met, text in verdicts:
            print(f"- {name}: {text} — {'MET' if met else 'MISSED'}")
        if problems or incidents:
            print("- (errors or stalled paths above: the verdicts are not valid for this run)")


def main(argv):
    if len(argv) >= 2 and argv[1] == "median-rps":
        print(median_rps(argv[2:]))
    elif len(argv) == 3 and argv[1] == "table":
        table(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
