#!/usr/bin/env python3
"""The helper of kill9_anywhere.sh: starts a retort command and SIGKILLs it, checks what a kill left
on disk, and compares a resumed run folder with an uninterrupted one.

  whole LOG DIR CMD...                run CMD to the end; prints "TOTAL_MS FIRST_MS STAGE2_MS" (FIRST:
                                      when the first checkpoint or weights file appeared under DIR;
                                      STAGE2: when the first file under DIR/stage2 did, 0 if never)
  kill LOG DIR MODE DELAY_MS CMD...   run CMD and SIGKILL it. MODE time: at DELAY_MS after the start;
                                      MODE write: at the first temporary file (NAME.tmp: a checkpoint,
                                      weights or results write in progress) seen after DELAY_MS;
                                      MODE checkpoint: at the first checkpoint.pt.tmp after DELAY_MS.
                                      Prints "killed MS STALE" or "exited MS - RC" (it ended first);
                                      STALE: the temporaries an earlier kill left (comma-separated, -)
  check DIR STALE FINAL...            after a kill: every *.safetensors loads (header and size), every
                                      *.pt is a whole zip (CRC checked), every *.json parses; prints
                                      what is on disk. Exit 1 on a half-written file, 3 when a FINAL
                                      product exists (the run had finished)
  same WHOLE RESUMED                  every file of the uninterrupted folder WHOLE against RESUMED
"""
import csv
import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zipfile


def now_ms(t0):
    return (time.monotonic() - t0) * 1000.0


def files_under(d):
    out = []
    for root, _, names in os.walk(d):
        for n in names:
            out.append(os.path.relpath(os.path.join(root, n), d))
    return sorted(out)


def temporaries(d):
    """NAME.tmp files under d with their (mtime, size): writes in progress, or left by a kill."""
    out = {}
    for f in files_under(d) if os.path.isdir(d) else []:
        if f.endswith(".tmp"):
            try:
                st = os.stat(os.path.join(d, f))
                out[f] = (st.st_mtime_ns, st.st_size)
            except OSError:  # renamed into place meanwhile
                pass
    return out


def start(log, cmd):
    return subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def whole(log, d, cmd):
    t0 = time.monotonic()
    p = start(log, cmd)
    first = None
    stage2 = 0
    while p.poll() is None:
        if (first is None or not stage2) and os.path.isdir(d):
            files = files_under(d)
            if first is None and any(f.endswith("checkpoint.pt") or f.endswith(".safetensors") for f in files):
                first = now_ms(t0)
            if not stage2 and any(f.startswith("stage2" + os.sep) for f in files):
                stage2 = max(1, now_ms(t0))
        time.sleep(0.005)
    total = now_ms(t0)
    if p.returncode != 0:
        sys.exit(f"exit {p.returncode}: {' '.join(cmd)} (see {log})")
    print(f"{int(total)} {int(first if first is not None else total / 2)} {int(stage2)}")


def kill(log, d, mode, delay_ms, cmd):
    # temporaries an earlier kill left in the folder: not a write of this run
    before = temporaries(d)
    fresh = lambda: [f for f, v in temporaries(d).items() if before.get(f) != v]
    t0 = time.monotonic()
    p = start(log, cmd)
    while p.poll() is None and now_ms(t0) < delay_ms:
        time.sleep(0.001)
    if mode in ("write", "checkpoint"):
        # Poll without sleeping: a checkpoint's temporary lives a few milliseconds (write, fsync).
        suffix = ".tmp" if mode == "write" else "checkpoint.pt.tmp"
        while p.poll() is None and not any(f.endswith(suffix) for f in fresh()):
            pass
    if p.poll() is not None:
        print(f"exited {int(now_ms(t0))} - {p.returncode}")
        return
    p.send_signal(signal.SIGKILL)
    at = now_ms(t0)
    p.wait()
    stale = [f for f, v in temporaries(d).items() if before.get(f) == v]
    print(f"killed {int(at)} {','.join(stale) or '-'}")


def safetensors_ok(path):
    b = open(path, "rb").read()
    if len(b) < 8:
        return f"{len(b)} bytes"
    n = struct.unpack("<Q", b[:8])[0]
    if 8 + n > len(b):
        return f"header of {n} bytes in a file of {len(b)}"
    try:
        h = json.loads(b[8:8 + n])
    except ValueError as e:
        return f"header is not JSON: {e}"
    end = max([v["data_offsets"][1] for k, v in h.items() if k != "__metadata__"] + [0])
    if 8 + n + end != len(b):
        return f"{len(b)} bytes, the header describes {8 + n + end}"
    return None


def zip_ok(path):
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
            return f"member {bad} fails its CRC" if bad else None
    except (zipfile.BadZipFile, OSError) as e:
        return f"not a whole zip: {e}"


def last_step(csv_path):
    step = 0
    try:
        for row in csv.reader(open(csv_path)):
            if row and row[0].isdigit():
                step = int(row[0])
    except OSError:
        pass
    return step


def check(d, stale, finals):
    bad = []
    files = files_under(d)
    for f in files:
        p = os.path.join(d, f)
        why = None
        if f.endswith(".safetensors"):
            why = safetensors_ok(p)
        elif f.endswith(".pt"):
            why = zip_ok(p)
        elif f.endswith(".json"):
            try:
                json.load(open(p))
            except ValueError as e:
                why = f"not JSON: {e}"
        if why:
            bad.append(f"{f}: {why}")
    # what was on disk: the last logged step of each metrics.csv, the checkpoints, any temporaries
    seen = []
    for f in files:
        if f.endswith("metrics.csv"):
            where = os.path.dirname(f)
            seen.append(f"{where + '/' if where else ''}step {last_step(os.path.join(d, f))}")
    ckpts = [f for f in files if f.endswith(".pt") and "checkpoint" in f]
    seen.append(f"{len(ckpts)} checkpoint{'s' if len(ckpts) != 1 else ''}")
    tmps = [f for f in files if f.endswith(".tmp")]
    for t in tmps:
        size = os.path.getsize(os.path.join(d, t))
        seen.append(f"{t} left by the earlier kill" if t in stale else f"{t} mid-write ({size} bytes)")
    print(", ".join(seen))
    if bad:
        print("half-written: " + "; ".join(bad))
        sys.exit(1)
    if any(os.path.exists(os.path.join(d, f)) for f in finals):
        sys.exit(3)


# Wall-clock fields: the only parts of a run folder that are meant to differ between two runs with
# the same seed and threads. Everything else is compared byte for byte or value for value.
# JSON keys and Markdown / CSV columns (bench-distill's speed-up is a ratio of two timings).
TIMING_KEYS = {"seconds", "seconds_per_iteration", "train_seconds", "ms_per_sample", "speedup",
               "s/it", "ms/sample", "speed-up"}


def strip_json(v):
    if isinstance(v, dict):
        return {k: strip_json(x) for k, x in v.items() if k not in TIMING_KEYS}
    if isinstance(v, list):
        return [strip_json(x) for x in v]
    return v


def strip_csv(text):
    rows = list(csv.reader(io.StringIO(text)))
    keep = [i for i, c in enumerate(rows[0]) if c not in TIMING_KEYS] if rows else []
    return [[r[i] for i in keep if i < len(r)] for r in rows]


def strip_md(text):
    # a Markdown table's timing columns ("seconds", "s/it") go; other lines stay as they are
    out, keep = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            cells = line.strip().strip("|").split("|")
            if keep is None or len(cells) != keep[0]:
                if not set(line) <= set("|-: "):
                    keep = (len(cells), [i for i, c in enumerate(cells) if c.strip() not in TIMING_KEYS])
            out.append("|".join(cells[i] for i in keep[1] if i < len(cells)))
        else:
            keep = None
            out.append(line)
    return out


# Files not compared, and why:
#   .lock           the folder lock: a killed holder leaves its pid, a clean exit empties it
#   report.html     the status page: wall times, ETA, "taking over from pid N" after a kill
#   *.log           not written by retort here
#   checkpoint.pt   LibTorch's archive names submodules by their address in memory and numbers the
#                   tensors in that order, so two uninterrupted runs already differ byte for byte
#                   (and distill's carries the stage's wall seconds); the final weights written
#                   from it are compared instead, and every kill checks it is a whole zip.
SKIP_NAMES = {".lock", "report.html", "checkpoint.pt"}


def first_difference(x, y, path=""):
    """The first path at which two JSON values differ, with both values."""
    if isinstance(x, dict) and isinstance(y, dict):
        for k in sorted(set(x) | set(y)):
            if x.get(k) != y.get(k):
                return first_difference(x.get(k), y.get(k), f"{path}.{k}")
    elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        for i, (a, b) in enumerate(zip(x, y)):
            if a != b:
                return first_difference(a, b, f"{path}[{i}]")
    return f"{path or '.'}: {json.dumps(x)[:80]} vs {json.dumps(y)[:80]}"


def compare(whole_dir, resumed_dir):
    diffs = []
    wf, rf = files_under(whole_dir), files_under(resumed_dir)
    extra = [f for f in rf if f not in wf and os.path.basename(f) not in SKIP_NAMES]
    for f in extra:
        diffs.append(f"{f}: only in the resumed folder")
    compared = 0
    for f in wf:
        base = os.path.basename(f)
        if base in SKIP_NAMES:
            continue
        a, b = os.path.join(whole_dir, f), os.path.join(resumed_dir, f)
        if not os.path.exists(b):
            diffs.append(f"{f}: missing in the resumed folder")
            continue
        x, y = open(a, "rb").read(), open(b, "rb").read()
        compared += 1
        if x == y:
            continue
        if base.endswith(".json"):
            jx, jy = strip_json(json.loads(x)), strip_json(json.loads(y))
            if jx == jy:
                continue
            diffs.append(f"{f}: differs at {first_difference(jx, jy)}")
            continue
        elif base.endswith(".jsonl"):
            lx = [strip_json(json.loads(l)) for l in x.decode().splitlines()]
            ly = [strip_json(json.loads(l)) for l in y.decode().splitlines()]
            if lx == ly:
                continue
        elif base.endswith(".csv"):
            if strip_csv(x.decode()) == strip_csv(y.decode()):
                continue
        elif base.endswith(".md"):
            if strip_md(x.decode()) == strip_md(y.decode()):
                continue
        diffs.append(f"{f}: differs ({len(x)} vs {len(y)} bytes)")
    return compared, diffs


def main():
    what = sys.argv[1]
    a = sys.argv[2:]
    if what == "whole":
        whole(a[0], a[1], a[2:])
    elif what == "kill":
        kill(a[0], a[1], a[2], float(a[3]), a[4:])
    elif what == "check":
        check(a[0], a[1].split(","), a[2:])
    elif what == "same":
        compared, diffs = compare(a[0], a[1])
        if diffs:
            print("; ".join(diffs))
            sys.exit(1)
        print(f"{compared} files")
    else:
        sys.exit(f"unknown: {what}")


if __name__ == "__main__":
    main()
