#!/usr/bin/env python3
"""report.py - medians over the runs, the goals, bench/results.json and the
printed table.

    report.py MACHINE_JSON RESULTS_JSONL OUT_JSON
"""
import json
import statistics
import sys

MiB = 1048576.0


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def r(v, nd=2):
    return None if v is None else round(v, nd)


def main(argv):
    machine = json.load(open(argv[0]))
    rows = [json.loads(ln) for ln in open(argv[1]) if ln.strip()]
    by = {}
    for row in rows:
        by.setdefault(row["bench"], []).append(row["data"])
    runs = machine["runs"]
    gen = by.get("mailgen", [{}])[0]

    # 1. throughput: per run, each milter set-up against Postfix alone
    def tp(prefix, gen_):
        none = by.get(prefix + "none", [])
        res = {"messages": gen_.get("count"), "bytes": gen_.get("bytes"),
               "concurrency": none[0]["concurrency"] if none else None,
               "without_milter_msgs_per_s": r(med(x["msgs_per_s"] for x in none), 1),
               "without_milter_mib_per_s": r(med(x["mb_per_s"] for x in none), 1),
               "without_cpu_ms_per_msg": r(med((x.get("cpu_s") or {}).get("ms_per_msg")
                                               for x in none), 2)}
        for sock in ("null", "unix", "inet"):
            xs = by.get(prefix + sock, [])
            pairs = list(zip(none, xs))
            res[sock] = {
                "msgs_per_s": r(med(x["msgs_per_s"] for x in xs), 1),
                "mib_per_s": r(med(x["mb_per_s"] for x in xs), 1),
                "ratio": r(med(b["msgs_per_s"] / a["msgs_per_s"] for a, b in pairs
                               if a.get("msgs_per_s") and b.get("msgs_per_s")), 3),
                "accept_ratio": r(med(b["accept_msgs_per_s"] / a["accept_msgs_per_s"]
                                      for a, b in pairs if a.get("accept_msgs_per_s")
                                      and b.get("accept_msgs_per_s")), 3),
                "milter_cpu_s": r(med(x.get("milter_cpu_s") for x in xs), 2),
                "cpu_ms_per_msg": r(med((x.get("cpu_s") or {}).get("ms_per_msg") for x in xs), 2),
                "cpu_ms_per_msg_by_part": {k: r(med(1000.0 * ((x.get("cpu_s") or {}).get(k) or 0)
                                                    / max(1, x["sent"]) for x in xs), 2)
                                           for k in ("postfix", "milter", "sink", "client")},
                # what the ratio would be if CPU were the only limit
                "cpu_ratio": r(med((a.get("cpu_s") or {}).get("ms_per_msg", 0)
                                   / b["cpu_s"]["ms_per_msg"] for a, b in pairs
                                   if (b.get("cpu_s") or {}).get("ms_per_msg")), 3),
                "ms_per_message_per_connection": r(med(
                    1000.0 * x["concurrency"] / x["msgs_per_s"] for x in xs
                    if x.get("msgs_per_s")), 2),
            }
        res["ms_per_message_per_connection_without"] = r(med(
            1000.0 * x["concurrency"] / x["msgs_per_s"] for x in none if x.get("msgs_per_s")), 2)
        res["client_cpu_s"] = r(med(x.get("client_cpu_s") for x in none), 2)
        res["without_cpu_ms_per_msg_by_part"] = {
            k: r(med(1000.0 * (x.get("cpu_s") or {}).get(k, 0) / max(1, x["sent"])
                     for x in none), 2) for k in ("postfix", "sink", "client")}
        res["per_run"] = {k: by.get(prefix + k, []) for k in ("none", "null", "unix", "inet")}
        return res

    throughput = tp("tp_", gen)
    throughput["sizes"], throughput["kinds"] = gen.get("sizes"), gen.get("kinds")
    throughput["ratio"] = throughput["unix"]["ratio"]
    # halo-milter against the do-nothing milter: its own work, per run
    nulls, unixes = by.get("tp_null", []), by.get("tp_unix", [])
    throughput["unix"]["ratio_to_nullmilter"] = r(med(
        b["msgs_per_s"] / a["msgs_per_s"] for a, b in zip(nulls, unixes)
        if a.get("msgs_per_s") and b.get("msgs_per_s")), 3)
    # CPU per message against the fair null milter (same negotiation, same
    # headers added), paired per run: the goal's measure
    throughput["unix"]["cpu_ratio_to_nullmilter"] = r(med(
        a["cpu_s"]["ms_per_msg"] / b["cpu_s"]["ms_per_msg"] for a, b in zip(nulls, unixes)
        if (a.get("cpu_s") or {}).get("ms_per_msg") and (b.get("cpu_s") or {}).get("ms_per_msg")), 3)
    throughput["one_connection"] = tp("tp1_", by.get("mailgen1", [{}])[0])
    # 7. the PostgreSQL store, 20 connections: against Postfix alone and
    # against halo-milter on SQLite, paired per run
    pgs = by.get("tp_pg_unix", [])
    nones = by.get("tp_none", [])
    throughput["pg_unix"] = {
        "msgs_per_s": r(med(x["msgs_per_s"] for x in pgs), 1),
        "ratio": r(med(b["msgs_per_s"] / a["msgs_per_s"] for a, b in zip(nones, pgs)
                       if a.get("msgs_per_s") and b.get("msgs_per_s")), 3),
        "ratio_to_sqlite": r(med(b["msgs_per_s"] / a["msgs_per_s"] for a, b in zip(unixes, pgs)
                                 if a.get("msgs_per_s") and b.get("msgs_per_s")), 3),
        "cpu_ms_per_msg": r(med((x.get("cpu_s") or {}).get("ms_per_msg") for x in pgs), 2),
        "per_run": pgs} if pgs else None
    bad = [x for k, xs in by.items() if k.startswith("tp") for x in xs
           if x.get("failed") or x.get("delivered") != x.get("sent")
           or (k.endswith(("unix", "inet")) and x.get("jobs") != x.get("sent"))]

    # 2. end of message
    eom = {}
    for key, label in (("eom_10240", "10KB"), ("eom_102400", "100KB"),
                       ("eom_10485760", "10MB"), ("eom_c20_102400", "100KB_20sess"),
                       ("eom_tcp_102400", "100KB_tcp"), ("eom_pg_102400", "100KB_pg"),
                       ("eom_pg_c20_102400", "100KB_20sess_pg"),
                       ("eom_pg_nosync_102400", "100KB_pg_nosync"),
                       ("eom_pg_nosync_c20_102400", "100KB_20sess_pg_nosync")):
        xs = by.get(key, [])
        if xs:
            eom[label] = {"count": xs[0]["count"], "sessions": xs[0].get("sessions", 1),
                          "p50": r(med(x["p50"] for x in xs), 3),
                          "p99": r(med(x["p99"] for x in xs), 3),
                          "max": r(med(x["max"] for x in xs), 3),
                          "per_run": xs}

    # 3. peak RSS
    rss = {}
    for key, label in (("rss_20971520", "20MB"), ("rss_5242880", "5MB")):
        xs = by.get(key, [])
        if xs:
            rss[label] = {"sessions": xs[0]["sessions"],
                          "peak": r(med(x["after_hwm_mb"] for x in xs), 1),
                          "before": r(med(x["before_hwm_mb"] for x in xs), 1),
                          "growth": r(med(x["growth_mb"] for x in xs), 1),
                          "ok_sessions": min(x["ok"] for x in xs),
                          "per_run": xs}

    # 6. peak RSS while the workers log one mail with attachments
    logrss = {}
    for key, label in (("logrss_1048576", "1MB"), ("logrss_20971520", "20MB"),
                       ("logrss_52428800", "50MB")):
        xs = by.get(key, [])
        if xs:
            # logged: the job is done and Halo holds every attachment
            # whole (the simulator said so)
            logrss[label] = {"peak": r(med(x["hwm_mb"] for x in xs), 1),
                             "before": r(med(x["before_hwm_mb"] for x in xs), 1),
                             "logged": all(x["logged"] and x.get("all_attachments_in_halo")
                                           for x in xs),
                             "attachments": xs[0].get("attachments"),
                             "attachments_in_halo": min(x.get("attachments_in_halo", 0)
                                                        for x in xs),
                             "seconds_to_final": r(med(x["seconds_to_final"] for x in xs), 1),
                             "per_run": xs}

    # TLS handshakes against Halo requests, during the requests mix
    tl = by.get("tls", [])
    tls = None
    if tl:
        tls = {"handshakes": sum(x["handshakes"] for x in tl),
               "resumed": sum(x["resumed"] for x in tl),
               "requests": sum(x["requests"] for x in tl), "workers": tl[0]["workers"],
               "per_run": tl}
        # each worker has its own connections: per worker, handshakes and
        # requests both divide by the number of workers. The floor is one
        # handshake per worker and Halo host, so a short run (BENCH_QUICK)
        # can miss the goal on that alone
        tls["handshakes_per_50_requests_per_worker"] = r(
            50.0 * tls["handshakes"] / tls["requests"], 3) if tls["requests"] else None

    # 4. requests per message
    rq = by.get("requests", [])
    rpm = r(med(x["requests_per_message"] for x in rq), 3)
    requests = {"per_run": rq}

    # 5. end to action
    ea = by.get("end_to_action", [])
    e2a = {"p50": r(med(x["p50"] for x in ea), 1), "p99": r(med(x["p99"] for x in ea), 1),
           "max": r(med(x["max"] for x in ea), 1),
           "messages": ea[0]["messages"] if ea else None,
           "rate_per_s": ea[0]["rate_per_s"] if ea else None,
           "sim_latency_ms_per_request": ea[0]["latency_ms_per_request"] if ea else None,
           "per_run": ea}
    eb = by.get("end_to_action_burst", [])
    e2a["burst"] = {"p50": r(med(x["p50"] for x in eb), 1), "p99": r(med(x["p99"] for x in eb), 1),
                    "max": r(med(x["max"] for x in eb), 1),
                    "messages": eb[0]["messages"] if eb else None, "per_run": eb}

    def goal(desc, value, ok):
        return {"goal": desc, "value": value, "met": bool(ok) if value is not None else False}

    p20 = rss.get("20MB", {}).get("peak")
    p5 = rss.get("5MB", {}).get("peak")
    # the goals of issue 16
    cr = throughput["unix"]["cpu_ratio_to_nullmilter"]
    e1 = eom.get("100KB", {}).get("p99")
    e20 = eom.get("100KB_20sess", {}).get("p99")
    l1 = logrss.get("1MB", {}).get("peak")
    l50 = logrss.get("50MB", {}).get("peak")
    hs50 = tls["handshakes_per_50_requests_per_worker"] if tls else None
    bp99 = e2a["burst"]["p99"]
    pg20 = eom.get("100KB_20sess_pg", {}).get("p99")
    goals = {
        "cpu_ratio_to_nullmilter": goal(">= 0.97", cr, cr is not None and cr >= 0.97),
        "eom_p99_100KB_1_session_ms": goal("< 2", e1, e1 is not None and e1 < 2),
        "eom_p99_100KB_20_sessions_ms": goal("< 10", e20, e20 is not None and e20 < 10),
        # only a mail that was logged counts: a refused one never went whole
        "rss_logging_50MB_mb": goal("< 64, mail logged with all attachments", l50, l50 is not None and l50 < 64
                                    and logrss["50MB"]["logged"]),
        "rss_logging_50MB_vs_1MB": goal("within 10 % of the 1 MB figure, both logged",
                                        r(l50 / l1, 3) if l1 and l50 else None,
                                        l1 and l50 and l50 <= 1.1 * l1
                                        and logrss["50MB"]["logged"] and logrss["1MB"]["logged"]),
        "requests_per_message": goal("<= 1.05", rpm, rpm is not None and rpm <= 1.05),
        "tls_handshakes_per_50_requests_per_worker": goal("<= 1", hs50,
                                                          hs50 is not None and hs50 <= 1),
        "end_to_action_burst_p99_ms": goal("< 1000 (burst of %s, +%s ms per request)" % (
            e2a["burst"]["messages"], e2a["sim_latency_ms_per_request"]), bp99,
            bp99 is not None and bp99 < 1000),
        # issue 14: the PostgreSQL store, a local server
        "eom_p99_100KB_20_sessions_pg_ms": goal("< 5 (PostgreSQL store, local server)", pg20,
                                                pg20 is not None and pg20 < 5),
    }
    out = {"machine": machine, "runs": runs, "throughput": throughput,
           "eom_latency_ms": eom, "peak_rss_mb": rss, "peak_rss_logging_mb": logrss,
           "tls": tls, "requests_per_message": rpm,
           "requests": requests, "end_to_action_ms": e2a, "goals": goals}
    with open(argv[2], "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")

    # ------------------------------------------------------------ the table
    def f(v, fmt="%.1f"):
        return "-" if v is None else fmt % v

    def g(name):
        x = goals[name]
        if x["value"] is None:
            return "%-8s %s" % ("n/a", x["goal"] + " (not measured)")
        return "%-8s %s" % ("met" if x["met"] else "MISSED", x["goal"])

    p = print
    p("")
    p("halo-milter benchmarks: median of %d run%s%s" % (runs, "" if runs == 1 else "s",
                                                      " (BENCH_QUICK)" if machine["quick"] else ""))
    p("machine: %d x %s, %.1f GiB RAM, %s, commit %s" % (
        machine["nproc"], machine["cpu_model"], machine["ram_gib"], machine["scratch_fs"],
        machine["commit"]))
    if machine["busy_before_start_pct"] > 10:
        p("WARNING: the machine was %.0f %% busy before the benchmark started"
          % machine["busy_before_start_pct"])
    p("")
    t = throughput
    p("1. throughput: %s messages (%.0f MiB, median %s KB, 5 KB-2 MB, 10%% with attachments)"
      % (t["messages"], (t["bytes"] or 0) / MiB, f((t["sizes"] or {}).get("median", 0) / 1024, "%.0f")))
    for tt, title in ((t, "%s connections" % t["concurrency"]),
                      (t["one_connection"], "1 connection, %s messages (per-message latency)"
                       % t["one_connection"]["messages"])):
        p("   %s" % title)
        p("     %-34s %7s %7s %10s %8s %6s %6s" % ("", "msg/s", "MiB/s", "ms/msg/conn",
                                                "CPU ms", "ratio", "CPU r."))
        p("     %-34s %7s %7s %10s %8s" % (
            "Postfix alone", f(tt["without_milter_msgs_per_s"]),
            f(tt["without_milter_mib_per_s"]), f(tt["ms_per_message_per_connection_without"]),
            f(tt["without_cpu_ms_per_msg"], "%.2f")))
        for sock, label in (("null", "+ nullmilter (does nothing), unix"),
                            ("unix", "+ halo-milter, unix socket"),
                            ("inet", "+ halo-milter, TCP loopback socket")):
            x = tt[sock]
            p("     %-34s %7s %7s %10s %8s %6s %6s" % (
                label, f(x["msgs_per_s"]), f(x["mib_per_s"]),
                f(x["ms_per_message_per_connection"]), f(x["cpu_ms_per_msg"], "%.2f"),
                f(x["ratio"], "%.3f"), f(x["cpu_ratio"], "%.3f")))
    p("   (CPU ms: CPU time of Postfix + milter + sink + client per message;"
      " CPU r.: the ratio if CPU were the only limit)")
    u = t["unix"]["cpu_ms_per_msg_by_part"]
    n = t["null"]["cpu_ms_per_msg_by_part"]
    w = t["without_cpu_ms_per_msg_by_part"]
    p("   CPU ms/msg, %s conns: Postfix alone %s, with nullmilter %s (+ nullmilter %s),"
      " with halo-milter %s (+ halo-milter %s)" % (
          t["concurrency"], f(w.get("postfix"), "%.2f"), f(n.get("postfix"), "%.2f"),
          f(n.get("milter"), "%.2f"), f(u.get("postfix"), "%.2f"), f(u.get("milter"), "%.2f")))
    p("   unix socket, %s connections: throughput ratio against the fair nullmilter %s,"
      " against Postfix alone %s" % (t["concurrency"], f(t["unix"]["ratio_to_nullmilter"], "%.3f"),
                                     f(t["ratio"], "%.3f")))
    p("   CPU ratio against the fair nullmilter %s (against Postfix alone %s)   %s" % (
        f(cr, "%.3f"), f(t["unix"]["cpu_ratio"], "%.3f"), g("cpu_ratio_to_nullmilter")))
    if bad:
        p("   WARNING: %d pass(es) lost, failed or did not log messages" % len(bad))
    p("2. end-of-message latency in the milter (ms; unix socket unless _tcp)")
    p("   %-13s %6s %9s %9s %9s" % ("size", "count", "p50", "p99", "max"))
    for label, x in eom.items():
        if label.endswith(("_pg", "_pg_nosync")):
            continue                    # section 7
        p("   %-13s %6d %9s %9s %9s" % (label, x["count"], f(x["p50"], "%.2f"),
                                       f(x["p99"], "%.2f"), f(x["max"], "%.2f")))
    if "10MB" in eom and "100KB" in eom and eom["100KB"]["p99"]:
        p("   ratio p99 10MB/100KB %.1f (100x the bytes)" % (eom["10MB"]["p99"] / eom["100KB"]["p99"]))
    p("   p99 at 100KB, 1 session: %s" % g("eom_p99_100KB_1_session_ms"))
    p("   p99 at 100KB, 20 concurrent sessions: %s" % g("eom_p99_100KB_20_sessions_ms"))
    p("3. peak RSS (VmHWM), %s concurrent sessions" % rss.get("20MB", {}).get("sessions"))
    for label, x in rss.items():
        p("   %-5s messages: %6s MB peak (%s MB at start, +%s MB)" % (
            label, f(x["peak"]), f(x["before"]), f(x["growth"])))
    if p20 and p5:
        p("   ratio peak 20MB/5MB %.2f (4x the bytes)" % (p20 / p5))
    p("   (workers = 0: the intake alone)")
    p("4. Halo requests per logged message (70% replies, 20% new from contacts,"
      " 10% unknown senders)")
    if rq:
        routes = {}
        for x in rq:
            for k, v in x["by_route"].items():
                routes[k] = routes.get(k, 0) + v
        p("   %s messages/run, %s requests per message   %s" % (
            rq[0]["messages"], f(rpm, "%.3f"), g("requests_per_message")))
        p("   all runs: %s" % ", ".join("%s %d" % kv for kv in sorted(routes.items())))
    if tls:
        p("   over TLS (tlsproxy.py): %d handshakes (%d resumed) for %d Halo requests, %d workers:"
          " %s handshakes per 50 requests per worker   %s" % (
              tls["handshakes"], tls["resumed"], tls["requests"], tls["workers"],
              f(hs50, "%.2f"), g("tls_handshakes_per_50_requests_per_worker")))
    else:
        p("   (plain http: BENCH_TLS=0, handshakes not counted)")
    p("5. end of message -> action in Halo, simulator +%s ms per request, %s msg/s"
      % (e2a["sim_latency_ms_per_request"], f(e2a["rate_per_s"], "%g")))
    p("   p50 %s ms   p99 %s ms   max %s ms   %s" % (f(e2a["p50"], "%.0f"), f(e2a["p99"], "%.0f"),
                                                  f(e2a["max"], "%.0f"), "(steady rate: no goal)"))
    b = e2a["burst"]
    if b["messages"]:
        p("   burst of %s at once: p50 %s ms   p99 %s ms   max %s ms" % (
            b["messages"], f(b["p50"], "%.0f"), f(b["p99"], "%.0f"), f(b["max"], "%.0f")))
    p("   burst p99: %s" % g("end_to_action_burst_p99_ms"))
    p("6. peak RSS (VmHWM) of the daemon while its workers log one mail with attachments")
    for label, x in logrss.items():
        p("   %-5s mail: %6s MB peak (%s MB before), %s, %s of %s attachments in Halo,"
          " final after %s s" % (
              label, f(x["peak"]), f(x["before"]),
              "logged" if x["logged"] else "NOT logged (%s)" % ", ".join(
                  "%s %s" % (k, x["per_run"][0].get(k)) for k in ("failed", "skipped")),
              x["attachments_in_halo"], x["attachments"], f(x["seconds_to_final"])))
    p("   50 MB: %s;  50 MB vs 1 MB: %s" % (g("rss_logging_50MB_mb"), g("rss_logging_50MB_vs_1MB")))
    p("7. the PostgreSQL store (a local server, Unix socket, fsync on; workers = 0)")
    p("   end of message, 100 KB (ms)        %9s %9s %9s" % ("p50", "p99", "max"))
    for label, title in (("100KB", "SQLite, 1 session"),
                         ("100KB_20sess", "SQLite, 20 sessions"),
                         ("100KB_pg", "PostgreSQL, 1 session"),
                         ("100KB_20sess_pg", "PostgreSQL, 20 sessions"),
                         ("100KB_pg_nosync", "  synchronous_commit off, 1"),
                         ("100KB_20sess_pg_nosync", "  synchronous_commit off, 20")):
        x = eom.get(label)
        if x:
            p("   %-34s %9s %9s %9s" % (title, f(x["p50"], "%.2f"), f(x["p99"], "%.2f"),
                                      f(x["max"], "%.2f")))
    pu = t["pg_unix"]
    if pu:
        p("   throughput, %s connections: %s msg/s; ratio against Postfix alone %s"
          " (SQLite %s), against halo-milter on SQLite %s" % (
              t["concurrency"], f(pu["msgs_per_s"]), f(pu["ratio"], "%.3f"),
              f(t["unix"]["ratio"], "%.3f"), f(pu["ratio_to_sqlite"], "%.3f")))
    p("   p99 at 100KB, 20 concurrent sessions: %s" % g("eom_p99_100KB_20_sessions_pg_ms"))
    p("")
    met = [k for k, v in goals.items() if v["met"]]
    measured = [k for k, v in goals.items() if v["value"] is not None]
    p("goals met: %d of %d measured (%d in all); unmet: %s" % (
        len(met), len(measured), len(goals),
        ", ".join(k for k in measured if k not in met) or "none"))
    if e2a["p50"] and e2a["sim_latency_ms_per_request"]:
        p("   ratio p50 / per-request latency %.1f" % (e2a["p50"] / e2a["sim_latency_ms_per_request"]))
    p("")
    p("written %s" % argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
