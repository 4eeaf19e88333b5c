"""facerec for Python: detect, align, embed and name faces.

    import facerec
    rec = facerec.Recognizer("gallery.db")
    rec.enroll("Ada", ["ada1.jpg", "ada2.jpg"])
    for face in rec.identify(frame_bgr):        # numpy uint8 (H, W, 3) BGR, a path or bytes
        print(face.box, face.identity or "unknown", face.similarity)

A thin layer over the C++ library's FaceRecognizer (the same object the
`facerec` CLI and `facerec serve` use), so results are the CLI's. Every
method releases the GIL while it works. Errors are subclasses of
facerec.Error carrying .code (e.g. "no_face"); see help(facerec.Recognizer).
"""
from ._facerec import (  # noqa: F401
    AlreadyExistsError,
    CancelledError,
    Candidate,
    DatabaseError,
    DecodeError,
    EnrollItem,
    EnrollReport,
    Error,
    Face,
    HashMismatchError,
    IdentifyResult,
    InternalError,
    InvalidArgumentError,
    IoError,
    MismatchError,
    ModelError,
    NoFaceError,
    NotFoundError,
    Person,
    Recognizer,
    TooLargeError,
    VerifyResult,
    load_image,
)

__all__ = [name for name in dir() if not name.startswith("_")]
__version__ = "0.1.0"
