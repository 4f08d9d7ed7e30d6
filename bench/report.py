#!/usr/bin/env python3
"""bench/run.sh's arithmetic (python3's standard library only).

  report.py detection --run N --report LAB_RUN.json --watch WATCH.tsv
      pairs each break of `kindlab lab run --output json` with bench/kubelet-watch.py's
      reference clock; prints records (`S detect.kl N <ms>` ...) for records.tsv.
  report.py report --records records.tsv --logs DIR --json OUT.json --svg OUT.svg --runs N
                   [--fact key=value ...]
      medians, targets (met yes/no), the table on stdout, the JSON and the cold-phases picture.
"""
import argparse
import datetime
import json
import os
import re
import statistics
import sys

# --- detection -----------------------------------------------------------------------------


def lab_runs(path):
    with open(path) as f:
        doc = json.load(f)
    return doc["runs"] if isinstance(doc, dict) and "runs" in doc else [doc]


def read_watch(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[1] in ("event", "pod"):
                rows.append({"recv_ms": int(parts[0]), "source": parts[1], "pod": parts[2],
                             "reason": parts[3], "ts": parts[4]})
    return rows


def parse_ts_ms(ts):
    try:
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    return int(t.timestamp() * 1000)


def detection(args):
    watch = read_watch(args.watch)
    for i, run in enumerate(lab_runs(args.report), 1):
        broke = run.get("broke_unix_ms")
        if not broke:
            sys.exit("the lab report has no broke_unix_ms: a kindlab without it")
        phase = next((p for p in run["phases"] if p["name"] == "ErrImagePull"), None)
        if phase is None:
            sys.exit(f"break {i}: kindlab's report has no ErrImagePull phase")
        noticed = broke + round(phase["at_s"] * 1000)
        m = re.match(r"pod (\S+) waiting", phase.get("detail", ""))
        pod = m.group(1) if m else None
        after = [w for w in watch if w["reason"] == "ErrImagePull" and w["recv_ms"] >= broke
                 and w["recv_ms"] <= noticed + 60_000 and (pod is None or w["pod"] == pod)]
        if not after:
            sys.exit(f"break {i}: the watch saw no ErrImagePull for pod {pod} after the break")
        ref = min(after, key=lambda w: w["recv_ms"])
        print(f"S detect.kl {args.run} {noticed - ref['recv_ms']}")
        print(f"S detect_break_to_notice.kl {args.run} {noticed - broke}")
        print(f"S detect_break_to_watch.kl {args.run} {ref['recv_ms'] - broke}")
        print(f"S detect_ref_is_event.kl {args.run} {1 if ref['source'] == 'event' else 0}")
        events = [w for w in after if w["source"] == "event" and parse_ts_ms(w["ts"])]
        if events:
            ts = parse_ts_ms(events[0]["ts"])
            print(f"S detect_vs_event_ts.kl {args.run} {noticed - ts}")
        print(f"break {i}: pod {pod}, broke {broke}, watch got {ref['source']} at +{ref['recv_ms'] - broke} ms, "
              f"kindlab noticed at +{noticed - broke} ms: delay {noticed - ref['recv_ms']} ms", file=sys.stderr)


# --- report --------------------------------------------------------------------------------


def read_records(path):
    samples, failed, na = {}, {}, {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 3)
            if parts[0] == "S" and len(parts) == 4:
                samples.setdefault(parts[1], []).append(float(parts[3]))
            elif parts[0] == "F" and len(parts) == 4:
                failed.setdefault(parts[1], parts[3])
            elif parts[0] == "N" and len(parts) >= 3:
                na[parts[1]] = " ".join(parts[2:])
    return samples, failed, na


def median(values):
    return statistics.median(values) if values else None


# (id, what, numerator key, denominator key or None, limit, unit, target text)
TARGETS = [
    ("cold_vs_script", "cold up", "cold.kl", "cold.sh", 0.80, "s", "kindlab <= 0.8x script"),
    ("cold_vs_ctlptl", "cold up", "cold.kl", "cold.ct", 0.80, "s", "kindlab <= 0.8x ctlptl way"),
    ("cold_vs_bare_kind", "cold up", "cold.kl", "cold.kind", 1.15, "s", "kindlab <= 1.15x bare kind create"),
    ("warm_vs_script", "warm up", "warm.kl", "warm.sh", 0.50, "s", "kindlab <= 0.5x script warm"),
    ("repair_vs_cold", "repair up", "repair.kl", "cold.kl", 0.20, "s", "kindlab <= 0.2x kindlab cold"),
    ("status_vs_kubectl", "status", "status.kl", "status.kubectl", 0.50, "s", "kindlab status <= 0.5x kubectl get pods -A"),
    ("reset_vs_down_up", "reset", "reset.kl", "down_up.kl", 0.10, "s", "kindlab reset <= 0.1x down + up"),
    ("detection_delay", "lab detection", "detect.kl", None, 250, "ms", "median delay <= 250 ms"),
    ("peak_rss", "peak RSS of cold up", "rss_own.kl", None, 50, "MB", "kindlab's own <= 50 MB"),
]
OTHER = {"cold.sh": "script", "cold.ct": "ctlptl way", "cold.kind": "bare kind", "warm.sh": "script",
         "cold.kl": "kindlab cold", "status.kubectl": "kubectl get pods -A", "down_up.kl": "down + up"}


def fmt(v, unit):
    if v is None:
        return None
    return f"{v:.0f}" if unit == "ms" else f"{v:.1f}" if unit == "MB" else f"{v:.2f}"


def shown(key, med, unit, failed, na):
    if med is not None:
        return fmt(med, unit)
    if key in failed:
        return "FAILED"
    if key in na:
        return "not available"
    return "not run"


def report(args):
    samples, failed, na = read_records(args.records)
    facts = dict(f.split("=", 1) for f in args.fact)
    med = {k: median(v) for k, v in samples.items()}
    targets, rows = [], []
    for tid, what, num, den, limit, unit, text in TARGETS:
        a, b = med.get(num), med.get(den) if den else None
        measured = (a / b if a is not None and b else None) if den else a
        met = None if measured is None else measured <= limit + 1e-9
        why = None
        for k in (num, den):
            if k and k in na:
                why = f"{k}: not available: {na[k]}"
            elif k and k in failed:
                why = f"{k}: failed, see {failed[k]}"
        targets.append({
            "id": tid, "measurement": what, "target": text, "limit": limit,
            "kindlab": round(a, 3) if a is not None else None, "unit": unit,
            "compared_with": OTHER.get(den) if den else None,
            "other": round(b, 3) if b is not None else None,
            "measured": round(measured, 3) if measured is not None else None,
            "met": met, "why_not_measured": why,
        })
        rows.append([what if not den else f"{what} vs {OTHER.get(den, den)}",
                     shown(num, a, unit, failed, na),
                     shown(den, b, unit, failed, na) if den else "-",
                     (f"{measured:.2f}" if den else fmt(measured, unit)) if measured is not None else "-",
                     text, {True: "yes", False: "no", None: "n/a"}[met]])
    header = ["measurement", "kindlab", "other", "measured", "target", "met?"]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    print()
    print(f"medians of {args.runs} run(s); seconds unless a unit is named (load average at start "
          f"{facts.get('load_average_at_start')}, at end {facts.get('load_average_at_end')}):")
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))

    def info(key, unit="s"):
        return shown(key, med.get(key), unit, failed, na)
    print()
    print(f"also: ctlptl warm {info('warm.ct')} s, script repair {info('repair.sh')} s; "
          f"peak RSS by /usr/bin/time -v {info('rss_timev.kl', 'MB')} MB (max over kindlab and the "
          f"children it waited for); detection: break to kindlab noticing "
          f"{info('detect_break_to_notice.kl', 'ms')} ms, to the watch receiving "
          f"{info('detect_break_to_watch.kl', 'ms')} ms, kindlab noticing minus the kubelet "
          f"event's own timestamp {info('detect_vs_event_ts.kl', 'ms')} ms (1 s resolution: the true "
          f"delay is up to 1000 ms less)")
    if na:
        for k, why in na.items():
            print(f"not available: {k}: {why}")

    doc = {
        "date": facts.get("date"),
        "machine": {k: facts.get(k) for k in ("nproc", "memory", "kernel", "load_average_at_start",
                                               "load_average_at_end", "other_kind_clusters")},
        "versions": {k: facts.get(k) for k in ("kindlab", "git", "kind", "kubectl", "docker_engine", "ctlptl")},
        "node_image": facts.get("node_image"),
        "names": facts.get("names"),
        "runs": args.runs,
        "targets": targets,
        "medians": {k: round(v, 3) for k, v in sorted(med.items()) if v is not None},
        "samples": {k: v for k, v in sorted(samples.items())},
        "failed": failed,
        "not_available": na,
        "all_targets_met": all(t["met"] for t in targets),
        "picture": os.path.basename(args.svg),
    }
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"\nwrote {args.json}")
    lanes = cold_lanes(args.logs)
    if lanes:
        with open(args.svg, "w") as f:
            f.write(svg(lanes, facts))
        print(f"wrote {args.svg}")
    else:
        print("no cold run of run 1 to draw", file=sys.stderr)


# --- the picture -----------------------------------------------------------------------------

KINDLAB_PHASES = {"preflight": "preflight", "registry": "registry", "cluster": "cluster",
                  "images": "build+push", "wire-nodes": "wiring", "deploy": "apply+rollout"}
COLORS = {"preflight": "#9e9e9e", "registry": "#8e24aa", "cluster": "#1e88e5", "wiring": "#00897b",
          "build": "#f4511e", "push": "#fb8c00", "build+push": "#f4511e", "apply": "#43a047",
          "rollout": "#7cb342", "apply+rollout": "#43a047", "kind create cluster": "#1e88e5"}


def start_end(log):
    start = end = None
    with open(log) as f:
        for line in f:
            if line.startswith("start "):
                start = float(line.split()[1])
            elif line.startswith("end "):
                end = float(line.split()[1])
    return start, end


def script_phases(log, t0):
    phases = []
    with open(log) as f:
        for line in f:
            p = line.split()
            if len(p) == 4 and p[0] == "phase" and p[1] != "finished":
                s, e = float(p[2]) - t0, float(p[3]) - t0
                if phases and phases[-1][0] == p[1]:
                    phases[-1] = (p[1], phases[-1][1], e)
                else:
                    phases.append((p[1], s, e))
    return phases


def cold_lanes(logs):
    lanes = []
    for side, label in (("kl", "kindlab up"), ("sh", "script"), ("ct", "ctlptl way"), ("kind", "bare kind")):
        log = os.path.join(logs, f"{side}-cold-1.log")
        if not os.path.exists(log):
            continue
        t0, t1 = start_end(log)
        if t0 is None or t1 is None:
            continue
        phases = []
        if side == "kl":
            try:
                with open(os.path.join(logs, "kl-cold-1.json")) as f:
                    up = json.load(f)
            except (OSError, ValueError):
                continue
            for a in up.get("actions", []):
                if a.get("started_s") is None:
                    continue
                phases.append((KINDLAB_PHASES.get(a["action"], a["action"]), a["started_s"],
                               a["started_s"] + a["duration"]))
        elif side == "kind":
            phases.append(("kind create cluster", 0.0, t1 - t0))
        else:
            phases = script_phases(log, t0)
        lanes.append((label, t1 - t0, phases))
    return lanes


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg(lanes, facts):
    left, right, width, row, gap, top = 150, 60, 1000, 18, 14, 56
    span = max(total for _, total, _ in lanes) or 1
    scale = (width - left - right) / span
    x = lambda t: left + max(t, 0) * scale
    height = top + sum((len(p) + 1) * row + gap for _, _, p in lanes) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="18" font-size="14" font-weight="bold">One cold up, phase by phase, on one time axis</text>',
           f'<text x="10" y="36" fill="#555">{esc(facts.get("date", ""))}, {esc(facts.get("nproc", "?"))} CPUs, '
           f'load average at start {esc(facts.get("load_average_at_start", "?"))}, kindlab {esc(facts.get("git", ""))}, '
           f'run 1; the grey bar is the whole command</text>']
    step = 5 if span <= 60 else 10
    axis_y = height - 30
    for t in range(0, int(span) + 1, step):
        out.append(f'<line x1="{x(t):.1f}" y1="{top - 6}" x2="{x(t):.1f}" y2="{axis_y}" stroke="#eee"/>')
        out.append(f'<text x="{x(t):.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#555">{t} s</text>')
    y = top
    for label, total, phases in lanes:
        out.append(f'<text x="10" y="{y + 13}" font-weight="bold">{esc(label)}</text>')
        out.append(f'<rect x="{x(0):.1f}" y="{y + 3}" width="{total * scale:.1f}" height="{row - 6}" fill="#bdbdbd"/>')
        out.append(f'<text x="{x(total) + 4:.1f}" y="{y + 13}" fill="#333">{total:.1f} s</text>')
        y += row
        for name, s, e in phases:
            w = max((e - s) * scale, 1.5)
            color = COLORS.get(name, "#607d8b")
            out.append(f'<text x="22" y="{y + 13}" fill="#333">{esc(name)}</text>')
            out.append(f'<rect x="{x(s):.1f}" y="{y + 2}" width="{w:.1f}" height="{row - 4}" fill="{color}">'
                       f'<title>{esc(name)}: {s:.2f}-{e:.2f} s ({e - s:.2f} s)</title></rect>')
            out.append(f'<text x="{x(s) + w + 4:.1f}" y="{y + 13}" fill="#555">{e - s:.1f} s</text>')
            y += row
        y += gap
    out.append(f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="#999"/>')
    out.append("</svg>\n")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("detection")
    d.add_argument("--run", required=True)
    d.add_argument("--report", required=True)
    d.add_argument("--watch", required=True)
    r = sub.add_parser("report")
    r.add_argument("--records", required=True)
    r.add_argument("--logs", required=True)
    r.add_argument("--json", required=True)
    r.add_argument("--svg", required=True)
    r.add_argument("--runs", type=int, required=True)
    r.add_argument("--fact", action="append", default=[])
    args = parser.parse_args()
    detection(args) if args.cmd == "detection" else report(args)


if __name__ == "__main__":
    main()
