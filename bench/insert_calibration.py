#!/usr/bin/python3
"""Writes an embedder's impostor calibration into models/manifest.json.

    build/facerec eval calibrate --root ../shared/data/lfw --embedder ID --json > cal.json
    /usr/bin/python3 bench/insert_calibration.py cal.json [models/manifest.json]

The manifest is hand-formatted, so the entry is inserted (or replaced) as one
line, "open_set_calibration": {...}, right after the embedder's "id" line;
the rest of the file is left byte for byte. The result must still parse as
JSON and hold the calibration, or nothing is written.
"""
import json
import re
import sys


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    cal = json.load(open(sys.argv[1]))
    manifest_path = sys.argv[2] if len(sys.argv) == 3 else "models/manifest.json"
    embedder = cal["embedder"]
    line = '      "open_set_calibration": ' + json.dumps(cal["open_set_calibration"], separators=(", ", ": ")) + ",\n"
    lines = open(manifest_path).read().splitlines(keepends=True)
    out, inserted, skip = [], False, False
    id_re = re.compile(r'^\s*\{?\s*"id":\s*"' + re.escape(embedder) + '"')
    for l in lines:
        if l.lstrip().startswith('"open_set_calibration"') and skip:
            continue  # the old calibration of this embedder
        skip = False
        out.append(l)
        if id_re.match(l):
            out.append(line)
            inserted, skip = True, True
    if not inserted:
        sys.exit(f"no manifest entry with id {embedder} in {manifest_path}")
    text = "".join(out)
    parsed = json.loads(text)
    entry = next(m for m in parsed["models"] if m["id"] == embedder)
    assert entry["open_set_calibration"] == cal["open_set_calibration"]
    open(manifest_path, "w").write(text)
    print(f"{manifest_path}: open_set_calibration of {embedder} written")


if __name__ == "__main__":
    main()
