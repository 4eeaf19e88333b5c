"""python3 -m tools.tflite_import IN.tflite OUT.onnx [--dynamic-batch] [--dynamic-spatial] [--split-prelu]
python3 -m tools.tflite_import --list-ops IN.tflite

Converts a float TFLite model to ONNX (see convert.py for the layout rules).
The output is written to a temporary name and renamed when complete.
Exit status: 0 ok; 1 usage or I/O error; 2 the model cannot be converted
(unsupported operator, quantized tensor, malformed file), with the reason on
stderr; 4 a Python module is missing (onnx, numpy, flatbuffers).
"""
import argparse
import collections
import sys

from ..model_file import write_atomically


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m tools.tflite_import", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tflite")
    ap.add_argument("onnx", nargs="?")
    ap.add_argument("--dynamic-batch", action="store_true", help="symbolic batch dimension 'N'")
    ap.add_argument("--dynamic-spatial", action="store_true", help="symbolic H and W (fully convolutional nets)")
    ap.add_argument("--split-prelu", action="store_true",
                    help="rewrite each Conv -> PReLU into Conv, Relu and Add only (tools/prelu_split.py: into a "
                         "following depthwise Conv where there is one, else Conv + Relu(Conv) -> Add), the form "
                         "ONNX Runtime fuses in float and int8")
    ap.add_argument("--list-ops", action="store_true", help="print the operators the file uses and exit")
    a = ap.parse_args(argv)
    try:
        import numpy  # noqa: F401
        import flatbuffers  # noqa: F401
        import onnx  # noqa: F401
    except ImportError as e:
        print(f"tflite_import: missing Python module: {e.name} (Debian: apt-get install python3-onnx "
              f"python3-numpy python3-flatbuffers; run with /usr/bin/python3)", file=sys.stderr)
        return 4
    from .convert import ConversionError, convert
    from .reference import UnsupportedOpError
    from .schema import TFLiteFormatError, read_model
    try:
        with open(a.tflite, "rb") as f:
            data = f.read()
    except OSError as e:
        print(f"tflite_import: cannot read {a.tflite}: {e.strerror}", file=sys.stderr)
        return 1
    try:
        model = read_model(data)
        if a.list_ops:
            for name, count in sorted(collections.Counter(op.name for op in model.operators).items()):
                print(f"{name} {count}")
            return 0
        if not a.onnx:
            ap.error("OUT.onnx is required")
        import hashlib
        doc = f"converted from a TFLite file with sha256 {hashlib.sha256(data).hexdigest()}"
        m = convert(model, dynamic_batch=a.dynamic_batch, dynamic_spatial=a.dynamic_spatial, doc=doc)
        if a.split_prelu:
            from ..prelu_split import split_prelu
            m, n = split_prelu(m)
            if n == 0:
                raise ConversionError("--split-prelu: no Conv -> PReLU in the model")
            m.doc_string += f"; {n} Conv -> PReLU rewritten by tools/prelu_split.py"
    except (TFLiteFormatError, UnsupportedOpError, ConversionError) as e:
        print(f"tflite_import: {a.tflite}: {e}", file=sys.stderr)
        return 2
    try:
        write_atomically(m, a.onnx)
    except OSError as e:
        print(f"tflite_import: cannot write {a.onnx}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
