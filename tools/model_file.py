"""Writing a converted ONNX model: shared by the setup-time tools
(tflite_import, ultraface_resize, quantize)."""
import os


def write_atomically(model, path):
    """Writes `model` (an onnx.ModelProto) to `path` through `path`.tmp and a
    rename, so that a reader (facerec's hash check, a second fetch) never sees
    a half-written file. Raises OSError; the temporary file is then removed."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(model.SerializeToString())
        os.replace(tmp, path)
    except OSError:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
