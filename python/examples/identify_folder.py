#!/usr/bin/env python3
"""Who is in each photo of a folder?

    python3 identify_folder.py --db gallery.db photos/            # one line per photo
    python3 identify_folder.py --db gallery.db photos/ --enroll people/   # enrol people/<Name>/*.jpg first

Prints each photo's faces (name and cosine similarity, or unknown) and, at the
end, how many photos each person appears in. Uses only facerec (no OpenCV).
"""
import argparse
import collections
import sys
from pathlib import Path

import facerec

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".heic", ".pgm", ".ppm"}


def images_under(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", help="folder of photos (searched recursively)")
    ap.add_argument("--db", default="gallery.db", help="the gallery (created when --enroll is given)")
    ap.add_argument("--enroll", help="a folder with one sub-folder of photos per person, enrolled first")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads per model (0: one per core)")
    args = ap.parse_args()

    rec = facerec.Recognizer(args.db, threads=args.threads,
                             gallery="create" if args.enroll else "must_exist")
    if args.enroll:
        for person in sorted(p for p in Path(args.enroll).iterdir() if p.is_dir()):
            report = rec.enroll(person.name, [str(p) for p in images_under(person)])
            print(f"enrolled {person.name}: {report.added} added, {report.duplicates} duplicates, "
                  f"{report.skipped} skipped", file=sys.stderr)
    print(f"gallery: {len(rec.people())} people; threshold {rec.threshold:.3f}", file=sys.stderr)

    seen = collections.Counter()
    for path in images_under(args.photos):
        try:
            result = rec.identify(str(path))
        except facerec.Error as e:  # a corrupt or unsupported file: say so, go on
            print(f"{path}: skipped ({e.code}: {e.message})")
            continue
        names = []
        for face in result:
            names.append(f"{face.identity} ({face.similarity:.2f})" if face.identity else
                         f"unknown ({face.similarity:.2f})")
            if face.identity:
                seen[face.identity] += 1
        print(f"{path}: " + (", ".join(names) if names else "no face"))
    for name, n in seen.most_common():
        print(f"{name}: in {n} photo(s)", file=sys.stderr)


if __name__ == "__main__":
    main()
