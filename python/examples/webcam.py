#!/usr/bin/env python3
"""Name the faces of a webcam (or a video file) live.

    python3 webcam.py --db gallery.db                 # camera 0, a window; q quits
    python3 webcam.py --db gallery.db --source clip.mp4 --no-window --max-frames 50

Needs OpenCV's Python module for the camera and the window (Debian:
python3-opencv). Frames go to facerec as they come from OpenCV: numpy uint8
(H, W, 3) BGR. Recognition runs in a worker thread (facerec releases the GIL),
so the display keeps its frame rate and shows the latest answer.
"""
import argparse
import sys
import threading
import time

try:
    import cv2
except ImportError:
    sys.exit("webcam.py needs OpenCV's Python module (Debian: apt-get install python3-opencv)")

import facerec


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="gallery.db")
    ap.add_argument("--source", default="0", help="camera index or video file/URL (default 0)")
    ap.add_argument("--no-window", action="store_true", help="print the names instead of showing a window")
    ap.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: never)")
    args = ap.parse_args()

    rec = facerec.Recognizer(args.db, gallery="must_exist")
    cap = cv2.VideoCapture(int(args.source) if args.source.isdigit() else args.source)
    if not cap.isOpened():
        sys.exit(f"cannot open {args.source}")

    latest = {"frame": None, "result": None, "n": 0, "done": 0}
    lock = threading.Lock()
    stop = threading.Event()

    def recognise():  # the newest frame each time; older ones are dropped
        done = -1
        while not stop.is_set():
            with lock:
                frame, n = latest["frame"], latest["n"]
            if frame is None or n == done:
                time.sleep(0.005)
                continue
            result = rec.identify(frame)
            done = n
            with lock:
                latest["result"], latest["done"] = result, n
            if args.no_window:
                names = [f.identity or "unknown" for f in result]
                print(f"frame {n}: {', '.join(names) if names else 'no face'}", flush=True)

    worker = threading.Thread(target=recognise, daemon=True)
    worker.start()
    frames = 0
    while True:
        ok, frame = cap.read()
        if not ok or (args.max_frames and frames >= args.max_frames):
            break
        frames += 1
        with lock:
            latest["frame"], latest["n"] = frame, frames
            result = latest["result"]
        if args.no_window:
            time.sleep(1 / 30)
            continue
        for f in result or []:
            x1, y1, x2, y2 = map(int, f.box)
            colour = (0, 200, 0) if f.identity else (0, 0, 230)
            cv2.rectangle(frame, (x1, y1), (x2, y2), colour, 2)
            cv2.putText(frame, f"{f.identity or 'unknown'} {f.similarity:.2f}", (x1, max(12, y1 - 5)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2)
        cv2.imshow("facerec", frame)
        if cv2.waitKey(1) & 0xFF == ord("q"):
            break
    # The last frame read gets its answer before we stop.
    deadline = time.monotonic() + 30
    while latest["done"] < frames and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    worker.join(timeout=10)
    cap.release()
    if not args.no_window:
        cv2.destroyAllWindows()


if __name__ == "__main__":
    main()
