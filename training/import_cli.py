"""Entry point of `facerec models import <kind> <checkpoint> <out.onnx> --id ID ...`.

  /usr/bin/python3 -m training.import_cli yolov5face yolov5s-face.pt out.onnx --id my_yolov5s --append-to-local M
  /usr/bin/python3 -m training.import_cli magface magface_iresnet50_MS1MV2_dp.pth out.onnx --id my_magface ...

Checks for PyTorch and ONNX before importing anything that needs them, then
hands the remaining arguments to the kind's importer. Every known failure is
one clear line on stderr and an exit status, never a traceback:
  0 imported; 2 bad arguments; 3 PyTorch or ONNX missing;
  4 refused: an unsafe global in the pickle (nothing from the file ran), a
    model this importer does not cover, or a missing/corrupt file.
"""
import importlib
import sys

EXIT_USAGE, EXIT_MISSING_DEPS, EXIT_REFUSED = 2, 3, 4
IMPORTERS = {"yolov5face": "training.import_yolov5face", "magface": "training.import_magface"}


def missing_dependencies():
    """None, or the message naming what is missing and how to install it."""
    try:
        import torch  # noqa: F401
        import onnx  # noqa: F401
    except ImportError as e:
        return (f"facerec models import needs PyTorch and ONNX in {sys.executable} ({e}); "
                "on Debian: apt-get install python3-torch python3-onnx")
    return None


def add_import_arguments(parser, checkpoint_help):
    """The arguments every checkpoint importer takes: the checkpoint, the ONNX
    file to write, the manifest id, and where the manifest entry goes."""
    parser.add_argument("checkpoint", help=checkpoint_help)
    parser.add_argument("onnx")
    parser.add_argument("--id", required=True)
    dest = parser.add_mutually_exclusive_group()
    dest.add_argument("--append-to", help="a full manifest (created as a copy of models/manifest.json)")
    dest.add_argument("--append-to-local", help="a local overlay manifest (created empty)")


def manifest_destination(args):
    """(manifest path or None, whether it is a local overlay) from add_import_arguments' flags."""
    return args.append_to or args.append_to_local, bool(args.append_to_local)


def run_cli(body):
    """Runs body() under the contract above."""
    msg = missing_dependencies()
    if msg:
        sys.stderr.write(msg + "\n")
        return EXIT_MISSING_DEPS
    from training.safe_unpickle import UnsafeCheckpointError
    from training.import_yolov5face import NotSupportedError
    try:
        body()
    except UnsafeCheckpointError as e:
        sys.stderr.write(f"{e}\n")
        return EXIT_REFUSED
    except NotSupportedError as e:
        sys.stderr.write(f"not imported: {e}\n")
        return EXIT_REFUSED
    except (OSError, ValueError, RuntimeError, EOFError, KeyError, AttributeError, TypeError) as e:
        # a missing, truncated or corrupt file surfaces as one of these from torch/pickle/zipfile
        sys.stderr.write(f"not imported: {type(e).__name__}: {e}\n")
        return EXIT_REFUSED
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in IMPORTERS:
        sys.stderr.write(f"usage: python3 -m training.import_cli {{{','.join(IMPORTERS)}}} CHECKPOINT OUT.onnx --id ID\n")
        return EXIT_USAGE
    msg = missing_dependencies()
    if msg:
        sys.stderr.write(msg + "\n")
        return EXIT_MISSING_DEPS
    return importlib.import_module(IMPORTERS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
