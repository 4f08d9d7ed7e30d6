#!/usr/bin/env python3
"""The reference clock of bench/run.sh's lab detection delay.

Watches one namespace's Pods and Events through two `kubectl get -w` streams and prints, for
each kubelet signal of an image pull failure, the moment (ms since the Unix epoch, this host's
clock) it arrived here:

    <recv_ms> event <pod> <reason> <lastTimestamp>   the kubelet's Event "Error: <reason>"
    <recv_ms> pod <pod> <reason> -                    a Pod update whose container waits with <reason>

Reasons: ErrImagePull, ImagePullBackOff. Runs until terminated (SIGTERM/SIGINT).

    python3 bench/kubelet-watch.py --context CTX --namespace NS > watch.tsv
"""
import argparse
import json
import signal
import subprocess
import sys
import threading
import time

REASONS = ("ErrImagePull", "ImagePullBackOff")
lock = threading.Lock()
seen_pod_states = set()


def emit(*fields):
    with lock:
        sys.stdout.write(" ".join(str(f) for f in fields) + "\n")
        sys.stdout.flush()


def objects(stream):
    """Yields (receive time in ms, object) for each JSON document kubectl writes."""
    decoder = json.JSONDecoder()
    buf = ""
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            return
        recv_ms = time.time_ns() // 1_000_000
        buf += chunk.decode("utf-8", "replace")
        while True:
            buf = buf.lstrip()
            if not buf:
                break
            try:
                obj, end = decoder.raw_decode(buf)
            except ValueError:
                break  # incomplete: wait for more
            buf = buf[end:]
            yield recv_ms, obj


def on_event(recv_ms, event):
    message = event.get("message") or ""
    for reason in REASONS:
        if message == f"Error: {reason}":
            involved = event.get("involvedObject") or {}
            emit(recv_ms, "event", involved.get("name", "?"), reason,
                 event.get("lastTimestamp") or event.get("eventTime") or "-")


def on_pod(recv_ms, pod):
    name = (pod.get("metadata") or {}).get("name", "?")
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in REASONS and (name, reason) not in seen_pod_states:
            seen_pod_states.add((name, reason))
            emit(recv_ms, "pod", name, reason, "-")


def watch(args, resource, handle):
    cmd = ["kubectl", "--context", args.context, "-n", args.namespace, "get", resource,
           "--watch", "--output-watch-events", "-o", "json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, bufsize=0)
    procs.append(proc)
    for recv_ms, obj in objects(proc.stdout):
        inner = obj.get("object", obj) if isinstance(obj, dict) else {}
        if obj.get("type") == "DELETED":
            continue
        handle(recv_ms, inner)


procs = []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--context", required=True)
    parser.add_argument("--namespace", required=True)
    args = parser.parse_args()

    def stop(*_):
        for p in procs:
            p.terminate()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threads = [threading.Thread(target=watch, args=(args, r, h), daemon=True)
               for r, h in (("events", on_event), ("pods", on_pod))]
    for t in threads:
        t.start()
    emit(time.time_ns() // 1_000_000, "started", "-", "-", "-")
    while any(t.is_alive() for t in threads):
        time.sleep(0.2)
    stop()


if __name__ == "__main__":
    main()
