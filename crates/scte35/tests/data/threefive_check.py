#!/usr/bin/env python3
"""Cross-checks public_cues.tsv against threefive (`pip install threefive`), an independent SCTE-35 decoder.

For every cue: the command type, the splice PTS (time_signal / splice_insert time with pts_adjustment), the
splice_insert break_duration and each segmentation descriptor's type id, duration and sub-segment fields must
agree with the expected columns our golden test (tests/public_cues.rs) asserts. Prints each disagreement and
exits non-zero if there is one.

    python3 crates/scte35/tests/data/threefive_check.py
"""
import os
import sys

from threefive import Cue

HERE = os.path.dirname(os.path.abspath(__file__))
PTS_MODULUS = 1 << 33


# Where threefive 3.1.5 is the one that misreads; what the cue's own project asserts is named.
KNOWN = {
    "/DA8AAAAAAAAAP///wb+06ACpQAmAiRDVUVJAACcHX//AACky4AMEERJU0NZTVdGMDQ1MjAwMEgxAQEMm4c0":
        "splice_command_length 0xFFF (legacy): threefive drops the descriptors; scte35-go asserts one",
    "/DA6AAAAAAAAAP///wb+GIZQCAAkAiJDVUVJAAv9L3//AAFeMHAMDkRJU0M2NzQ5NjNfOTk4MAEBsXXbjg":
        "splice_command_length 0xFFF (legacy): threefive drops the descriptors",
    "/DDHAAAAABc0AP/wBQb/tVo+agCxAhdDVUVJQA4hwH+fCAgAAAAAPj6IcCMAAAIXQ1VFSUAOI1x/nwgIAAAAAD4+iHARAAACF0NVRUlADiHgf58ICAAAAAA+Poi2EAAAAhxDVUVJQA4hyn/fAABSlKwICAAAAAA+Poi2IgAAAkZDVUVJQA4h1n/PAABSlKwNMgoMFHf5uXs0AAAAAAAADhh0eXBlPUxBJmR1cj02MDAwMCZ0aWVy/DDHAAAAAAAAAP8ABQb/HPCt2w==":
        "MID UPID holding a reserved UPID type: threefive raises; scte35-go asserts the five descriptors",
    "/DBHAAAAAAAA///wBQb+AAAAAAAxAi9DVUVJAAAAA3+/BCAGCis0AQEBBQEBDSATAAAA0skDbI8ZU0OrcBTS1xi/2hEAAPUV9+0=":
        "32-byte UMID UPID: threefive reads the wrong length; SCTE35Parser asserts Program End (0x11)",
    "0xFC30280000000000000000700506FF1252E9220012021043554549000000007F9F0A013050000015871049":
        "EIDR UPID of 1 byte (not 12): kept as bytes here, SCTE35Parser rejects it, threefive raises",
}


def ticks(seconds):
    return None if seconds is None else round(seconds * 90000)


def close(a, b):
    return a is None and b is None or (a is not None and b is not None and abs(a - b) <= 1)


def main():
    bad = 0
    rows = 0
    known = 0
    for line in open(os.path.join(HERE, "public_cues.tsv"), encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        source, cue, command_type, _kind, _event, pts, duration_us, segs = line.rstrip("\n").split("\t")
        rows += 1
        if cue in KNOWN:
            print(f"{source}: known threefive difference: {KNOWN[cue]}")
            known += 1
            continue
        problems = []
        try:
            c = Cue(cue)
            c.decode()
        except Exception as e:  # threefive raises on some inputs it cannot read
            bad += 1
            print(f"{source}: {cue}\n    threefive cannot read it: {e!r}")
            continue
        if c.command.command_type != int(command_type):
            problems.append(f"command_type {c.command.command_type} != {command_type}")
        their_pts = getattr(c.command, "pts_time", None)
        if pts != "-" and their_pts is not None:
            adjusted = (ticks(their_pts) + ticks(c.info_section.pts_adjustment)) % PTS_MODULUS
            if not close(adjusted, int(pts)):
                problems.append(f"pts {adjusted} != {pts}")
        if c.command.command_type == 5 and duration_us != "-":
            bd = getattr(c.command, "break_duration", None)
            if not close(ticks(bd), int(duration_us) * 9 // 100):
                problems.append(f"break_duration {bd} s != {duration_us} us")
        theirs = [d for d in c.descriptors if getattr(d, "tag", None) == 2 and d.identifier == "CUEI"]
        ours = [] if segs == "-" else segs.split(",")
        if len(theirs) != len(ours):
            problems.append(f"{len(theirs)} segmentation descriptors != {len(ours)}")
        for d, o in zip(theirs, ours):
            parts = o.split("/")
            if d.segmentation_event_cancel_indicator:
                continue
            if d.segmentation_type_id != int(parts[0], 16):
                problems.append(f"segmentation_type_id {d.segmentation_type_id:#x} != {parts[0]}")
            dur = next((int(p[1:]) for p in parts if p.startswith("d")), None)
            if not close(ticks(d.segmentation_duration), dur):
                problems.append(f"segmentation_duration {d.segmentation_duration} s != {dur} ticks")
            sub = next((p[3:] for p in parts if p.startswith("sub")), None)
            got = (d.sub_segment_num, d.sub_segments_expected)
            if sub is not None:
                if got != tuple(int(x) for x in sub.split("of")):
                    problems.append(f"sub_segment {got} != {sub}")
            elif got not in ((None, None), (0, 0)):
                # threefive fills 0/0 for the types that may carry them when the bytes are absent.
                problems.append(f"sub_segment {got}, expected none")
        if problems:
            bad += 1
            print(f"{source}: {cue}\n    " + "\n    ".join(problems))
    print(f"{rows} cues: {rows - known - bad} agree with threefive, {known} known differences, {bad} disagree")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
