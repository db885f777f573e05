"""A stand-in for ``darknet detector train`` with pjreddie's observable behaviour, for fast
driver tests of the paths real darknet cannot be made to take on demand (NaN loss, a slow
iteration at a chosen moment, a silent failure).

Behaviour copied from pjreddie examples/detector.c and src/network.c: the start iteration
is ``seen / batch`` from the weights header (``-clear`` zeroes it); it prints a ``Region Avg
IOU`` line and an iteration line per iteration until ``max_batches``; then writes
``<backup>/<cfg base>_final.weights`` (header with the new ``seen``, payload copied from the
start weights or zeros); a missing input file is ``Couldn't open file`` and exit code 0.

Environment knobs: ``FAKE_SLEEP`` (seconds per iteration), ``FAKE_SLOW_FROM`` and
``FAKE_SLOW_SLEEP`` (iterations from then on take that long), ``FAKE_NAN_AT`` (print a
``-nan`` loss at that iteration), ``FAKE_FAIL`` (fail like darknet on a missing file),
``FAKE_ARGV_LOG`` (append argv as one JSON line per run).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
from pathlib import Path

from training_scripts.darknet.cfg import net_section, parse_cfg
from training_scripts.darknet.weights import payload_size


def main(argv: list[str]) -> int:
    if os.environ.get("FAKE_ARGV_LOG"):
        with open(os.environ["FAKE_ARGV_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps(argv) + "\n")
    args = [a for a in argv if a != "-clear"]
    clear = "-clear" in argv
    data_file, cfg_file = args[3], args[4]  # argv: fake_darknet.py detector train DATA CFG [WEIGHTS]
    weights = args[5] if len(args) > 5 and not args[5].startswith("-") else None
    if os.environ.get("FAKE_FAIL"):
        print("Couldn't open file: /nonexistent/train.txt", file=sys.stderr)
        return 0  # pjreddie's file_error() exits with status 0
    options = dict(line.split("=", 1) for line in Path(data_file).read_text().splitlines() if "=" in line)
    sections = parse_cfg(Path(cfg_file))
    net = net_section(sections)
    batch, max_batches = net.get_int("batch"), net.get_int("max_batches")
    payload = bytes(payload_size(sections))
    seen = 0
    if weights:
        blob = Path(weights).read_bytes()
        seen = struct.unpack("<q", blob[12:20])[0]
        payload = blob[20:]
    if clear:
        seen = 0
    base = Path(cfg_file).stem
    print(base)
    print("Learning Rate: 0.005, Momentum: 0.9, Decay: 0.0005", flush=True)
    sleep = float(os.environ.get("FAKE_SLEEP", "0"))
    slow_from = int(os.environ.get("FAKE_SLOW_FROM", "0") or 0)
    nan_at = int(os.environ.get("FAKE_NAN_AT", "0") or 0)
    avg = -1.0
    while seen // batch < max_batches:
        iteration = seen // batch + 1
        wait = float(os.environ["FAKE_SLOW_SLEEP"]) if slow_from and iteration >= slow_from else sleep
        time.sleep(wait)
        print("Loaded: 0.000040 seconds", flush=True)
        print(
            "Region Avg IOU: 0.250000, Class: 0.400000, Obj: 0.300000, No Obj: 0.010000, "
            "Avg Recall: 0.200000,  count: 4",
            flush=True,
        )
        seen += batch
        loss = 100.0 / iteration
        avg = loss if avg < 0 else 0.9 * avg + 0.1 * loss
        loss_text = "-nan" if iteration == nan_at else f"{loss:f}"
        print(
            f"{iteration}: {loss_text}, {avg:f} avg, 0.005000 rate, {wait:f} seconds, "
            f"{iteration * batch} images",
            flush=True,
        )
    final = Path(options["backup"]) / f"{base}_final.weights"
    final.write_bytes(struct.pack("<iiiq", 0, 2, 0, seen) + payload)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
