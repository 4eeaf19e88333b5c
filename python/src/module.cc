// facerec._facerec: the Python face of FaceRecognizer (include/facerec/recognizer.h).
//
// A thin layer: every call converts its arguments, releases the GIL, calls the
// facade once, takes the GIL back and converts the result. No recognition
// logic lives here; the CLI, `facerec serve` and this module give the same
// answers because they make the same facade calls.
//
// Images: a numpy uint8 array of shape (H, W, 3) in BGR order (as OpenCV's
// cv2.imread and VideoCapture give them; any strides), a path (str or
// os.PathLike), or encoded bytes (JPEG, PNG, ...). Anything else is
// InvalidArgumentError, checked before any work; a dtype is never cast.
//
// Errors: a failed Status becomes an instance of one subclass of
// facerec.Error (one per ErrorCode), carrying .code (e.g. "no_face"),
// .code_value (the ErrorCode's integer) and .message.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "facerec/json.h"
#include "facerec/recognizer.h"

namespace py = pybind11;
using namespace facerec;

namespace {

// ---- errors ---------------------------------------------------------------------

struct CodeInfo {
  ErrorCode code;
  const char* name;    // .code
  const char* cls;     // the Python class
  const char* doc;
};
constexpr std::array<CodeInfo, 13> kCodes = {{
    {ErrorCode::kInvalidArgument, "invalid_argument", "InvalidArgumentError",
     "The caller passed something unusable: a wrong dtype or shape, a bad name, an option out of range. "
     "Also a ValueError."},
    {ErrorCode::kNotFound, "not_found", "NotFoundError", "A file, person or model that does not exist."},
    {ErrorCode::kIo, "io", "IoError", "Reading or writing a file failed."},
    {ErrorCode::kDecode, "decode", "DecodeError", "Not an image, a truncated or corrupt file, an unsupported format."},
    {ErrorCode::kTooLarge, "too_large", "TooLargeError", "Over a configured limit (pixels, file bytes)."},
    {ErrorCode::kModel, "model", "ModelError", "A model file that cannot be loaded or does not fit its spec."},
    {ErrorCode::kHashMismatch, "hash_mismatch", "HashMismatchError", "A model file whose sha256 is wrong."},
    {ErrorCode::kNoFace, "no_face", "NoFaceError", "No face where one was required (embed, verify)."},
    {ErrorCode::kMismatch, "mismatch", "MismatchError", "E.g. a gallery built with another embedder."},
    {ErrorCode::kDatabase, "database", "DatabaseError", "The gallery (SQLite) failed or is not a gallery."},
    {ErrorCode::kCancelled, "cancelled", "CancelledError", "Interrupted."},
    {ErrorCode::kInternal, "internal", "InternalError", "An internal error."},
    {ErrorCode::kAlreadyExists, "already_exists", "AlreadyExistsError",
     "E.g. renaming a person to a name already enrolled."},
}};

// Filled once at import (the module's own exception classes).
std::map<ErrorCode, py::object>& error_classes() {
  static std::map<ErrorCode, py::object> classes;
  return classes;
}
py::object& base_error() {
  static py::object base;
  return base;
}

// Thrown by the wrappers (GIL held or not) and translated at the boundary.
struct StatusError : std::exception {
  Status status;
  explicit StatusError(Status s) : status(std::move(s)) {}
  const char* what() const noexcept override { return status.message().c_str(); }
};

[[noreturn]] void fail(const Status& s) { throw StatusError(s); }
[[noreturn]] void fail(ErrorCode code, std::string message) { throw StatusError(Status(code, std::move(message))); }
template <class T>
T take(Result<T>&& r) {
  if (!r.ok()) fail(r.status());
  return std::move(r).value();
}
void check(const Status& s) {
  if (!s.ok()) fail(s);
}

void translate(const StatusError& e) {
  auto& classes = error_classes();
  auto it = classes.find(e.status.code());
  py::object cls = it != classes.end() ? it->second : base_error();
  const char* name = "internal";
  for (const auto& c : kCodes)
    if (c.code == e.status.code()) name = c.name;
  py::object exc = cls(e.status.message());
  exc.attr("code") = name;
  exc.attr("code_value") = static_cast<int>(e.status.code());
  exc.attr("message") = e.status.message();
  PyErr_SetObject(cls.ptr(), exc.ptr());
}

// ---- images ---------------------------------------------------------------------

// An image argument, converted with the GIL held; decoded (if a path or
// bytes) without it.
struct ImageArg {
  cv::Mat bgr;           // set for arrays
  std::string path;      // or a path
  std::string bytes;     // or encoded bytes
  bool is_bytes = false;
  std::string what;      // for messages and enrolment sources
};

ImageArg image_arg(const py::handle& obj, const char* what) {
  ImageArg a;
  a.what = what;
  if (py::isinstance<py::bytes>(obj) || py::isinstance<py::bytearray>(obj)) {
    a.bytes = py::isinstance<py::bytes>(obj) ? std::string(obj.cast<py::bytes>())
                                             : std::string(obj.cast<py::bytearray>());
    a.is_bytes = true;
    return a;
  }
  if (py::isinstance<py::str>(obj) || py::hasattr(obj, "__fspath__")) {
    a.path = py::str(py::module_::import("os").attr("fsdecode")(obj)).cast<std::string>();
    a.what = a.path;
    return a;
  }
  if (!py::isinstance<py::array>(obj))
    fail(ErrorCode::kInvalidArgument, std::string(what) + ": expected a numpy uint8 array of shape (H, W, 3) (BGR), "
                                           "a path or encoded bytes; got " +
                                           py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
  auto arr = py::reinterpret_borrow<py::array>(obj);
  if (!arr.dtype().is(py::dtype::of<uint8_t>()))
    fail(ErrorCode::kInvalidArgument, std::string(what) + ": dtype " + py::str(arr.dtype()).cast<std::string>() +
                                           ", expected uint8 (0..255 BGR; convert explicitly, e.g. "
                                           "(x * 255).clip(0, 255).astype(numpy.uint8))");
  if (arr.ndim() != 3 || arr.shape(2) != 3) {
    std::string shape = "(";
    for (py::ssize_t i = 0; i < arr.ndim(); ++i) shape += (i ? ", " : "") + std::to_string(arr.shape(i));
    fail(ErrorCode::kInvalidArgument,
          std::string(what) + ": shape " + shape + (arr.ndim() == 1 ? ",)" : ")") + ", expected (H, W, 3) BGR");
  }
  if (arr.shape(0) < 1 || arr.shape(1) < 1 || arr.shape(0) > 1'000'000 || arr.shape(1) > 1'000'000)
    fail(ErrorCode::kInvalidArgument, std::string(what) + ": an image of " + std::to_string(arr.shape(1)) + "x" +
                                           std::to_string(arr.shape(0)) + " pixels");
  // A private copy (the caller may reuse its buffer while the GIL is
  // released; a webcam loop does), made once, by numpy, straight into the
  // cv::Mat whatever the array's strides (crops such as frame[y0:y1, x0:x1]
  // and other views included).
  a.bgr = cv::Mat(static_cast<int>(arr.shape(0)), static_cast<int>(arr.shape(1)), CV_8UC3);
  py::array dst(py::dtype::of<uint8_t>(), {arr.shape(0), arr.shape(1), py::ssize_t{3}}, a.bgr.data,
                py::capsule(a.bgr.data, [](void*) {}));  // a view of a.bgr, which outlives it
  py::module_::import("numpy").attr("copyto")(dst, arr);
  return a;
}

// GIL released.
cv::Mat load(const FaceRecognizer& rec, const ImageArg& a) {
  if (!a.bgr.empty()) return a.bgr;
  if (a.is_bytes) return take(rec.decode(a.bytes, a.what));
  return take(rec.load(a.path));
}

py::array_t<float> vector_array(const std::vector<float>& v) {
  py::array_t<float> out(static_cast<py::ssize_t>(v.size()));
  std::memcpy(out.mutable_data(), v.data(), v.size() * sizeof(float));
  return out;
}

py::object json_object(const nlohmann::json& j) { return py::module_::import("json").attr("loads")(j.dump()); }

// ---- results --------------------------------------------------------------------

struct PyFace {
  AnalyzedFace face;
  bool identified = false;  // from identify(): identity/similarity/candidates mean something
  Decision decision;
  std::string low_quality;
  std::string reason;
};

PyFace from_identified(const IdentifiedFace& f) {
  return {f.face, true, f.decision, f.low_quality, f.reason()};
}
PyFace from_analyzed(const AnalyzedFace& f) {
  PyFace p;
  p.face = f;
  return p;
}

// The faces are stored once, in result; Python's `faces` (a new list at each
// access, as pybind11 converts a std::vector) is made from them.
struct PyIdentifyResult {
  std::string image;
  IdentifyResult result;
  std::vector<PyFace> faces() const {
    std::vector<PyFace> out;
    out.reserve(result.faces.size());
    for (const auto& f : result.faces) out.push_back(from_identified(f));
    return out;
  }
};

struct PyVerifyResult {
  VerifyResult result;
  std::string detector, embedder;
};

std::string repr_float(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

// ---- the recognizer -------------------------------------------------------------

GalleryMode gallery_mode(const std::string& s) {
  if (s == "create") return GalleryMode::kCreate;
  if (s == "must_exist") return GalleryMode::kMustExist;
  if (s == "none") return GalleryMode::kNone;
  fail(ErrorCode::kInvalidArgument, "gallery='" + s + "': expected 'create', 'must_exist' or 'none'");
}

class PyRecognizer {
 public:
  PyRecognizer(const std::optional<std::string>& db, const std::optional<std::string>& detector,
               const std::optional<std::string>& embedder, const std::optional<std::string>& manifest,
               const std::string& config, int threads, std::optional<float> threshold, std::optional<double> fpir,
               const std::string& gallery, std::optional<int64_t> max_pixels,
               const std::optional<std::string>& detect_policy) {
    ConfigLayer flags;
    flags.db = db;
    flags.detector = detector;
    flags.embedder = embedder;
    flags.manifest = manifest;
    if (threads != 0) flags.threads = threads;
    flags.threshold = threshold;
    flags.fpir = fpir;
    flags.max_pixels = max_pixels;
    flags.detect_policy = detect_policy;
    const GalleryMode mode = gallery_mode(gallery);
    py::gil_scoped_release nogil;
    RecognizerConfig cfg = take(resolve_config(flags, config));
    cfg.gallery = mode;
    rec_ = take(FaceRecognizer::create(cfg));
  }

  const FaceRecognizer& rec() const { return *rec_; }
  FaceRecognizer& rec() { return *rec_; }

 private:
  std::unique_ptr<FaceRecognizer> rec_;
};

PyIdentifyResult identify(const PyRecognizer& self, const py::object& image, int top_k, std::optional<float> threshold,
                          std::optional<double> fpir) {
  ImageArg a = image_arg(image, "image");
  if (top_k < 1 || top_k > 1000) fail(ErrorCode::kInvalidArgument, "top_k must be within 1..1000");
  if (fpir && !(*fpir > 0 && *fpir < 1)) fail(ErrorCode::kInvalidArgument, "fpir is a rate within (0, 1), e.g. 0.01");
  IdentifyOptions opt;
  opt.top_k = top_k;
  opt.threshold = threshold;
  opt.fpir = fpir;
  PyIdentifyResult out;
  out.image = a.what;
  {
    py::gil_scoped_release nogil;
    out.result = take(self.rec().identify(load(self.rec(), a), opt));
  }
  return out;
}

std::vector<PyFace> detect(const PyRecognizer& self, const py::object& image) {
  ImageArg a = image_arg(image, "image");
  std::vector<AnalyzedFace> faces;
  {
    py::gil_scoped_release nogil;
    faces = take(self.rec().analyze(load(self.rec(), a)));
  }
  std::vector<PyFace> out;
  for (const auto& f : faces) out.push_back(from_analyzed(f));
  return out;
}

PyFace embed(const PyRecognizer& self, const py::object& image) {
  ImageArg a = image_arg(image, "image");
  py::gil_scoped_release nogil;
  cv::Mat img = load(self.rec(), a);
  return from_analyzed(take(self.rec().analyze_largest(img)));
}

PyVerifyResult verify(const PyRecognizer& self, const py::object& image1, const py::object& image2,
                      std::optional<float> threshold) {
  ImageArg a = image_arg(image1, "image1");
  ImageArg b = image_arg(image2, "image2");
  PyVerifyResult out;
  py::gil_scoped_release nogil;
  cv::Mat ia = load(self.rec(), a);
  cv::Mat ib = load(self.rec(), b);
  out.result = take(self.rec().verify(ia, ib, threshold));
  out.detector = self.rec().detector_spec().id;
  out.embedder = self.rec().embedder_spec().id;
  return out;
}

EnrollReport enroll(PyRecognizer& self, const std::string& name, const py::object& images,
                    std::optional<float> min_quality) {
  std::vector<py::handle> items;
  if (py::isinstance<py::str>(images) || py::isinstance<py::bytes>(images) || py::isinstance<py::array>(images) ||
      py::hasattr(images, "__fspath__"))
    items.push_back(images);
  else
    for (auto h : images) items.push_back(h);
  if (items.empty()) fail(ErrorCode::kInvalidArgument, "enroll: no images given");
  std::vector<ImageArg> args;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string what = "images[" + std::to_string(i) + "]";
    args.push_back(image_arg(items[i], what.c_str()));
  }
  EnrollOptions opt;
  opt.min_quality = min_quality;
  py::gil_scoped_release nogil;
  std::vector<EnrollInput> inputs;
  for (auto& a : args) {
    if (!a.bgr.empty()) {
      // The facade enrols files or encoded bytes (it hashes the content for
      // duplicate detection); an array is encoded losslessly as PNG.
      std::vector<uchar> png;
      if (!cv::imencode(".png", a.bgr, png)) fail(ErrorCode::kInternal, a.what + ": PNG encoding failed");
      inputs.push_back({a.what, std::string(png.begin(), png.end())});
    } else if (a.is_bytes) {
      inputs.push_back({a.what, std::move(a.bytes)});
    } else {
      inputs.push_back({a.path, std::nullopt});
    }
  }
  return take(self.rec().enroll(name, inputs, opt));
}

// (N, D) or (D,) float32 embeddings -> one candidate list per row.
std::vector<std::vector<Candidate>> search(const PyRecognizer& self, const py::object& embeddings, int top_k) {
  if (!py::isinstance<py::array>(embeddings))
    fail(ErrorCode::kInvalidArgument, "embeddings: expected a numpy float32 array of shape (N, D) or (D,)");
  auto arr = py::reinterpret_borrow<py::array>(embeddings);
  if (!arr.dtype().is(py::dtype::of<float>()))
    fail(ErrorCode::kInvalidArgument, "embeddings: dtype " + py::str(arr.dtype()).cast<std::string>() + ", expected float32");
  if (arr.ndim() != 1 && arr.ndim() != 2) fail(ErrorCode::kInvalidArgument, "embeddings: expected shape (N, D) or (D,)");
  if (top_k < 1 || top_k > 1000) fail(ErrorCode::kInvalidArgument, "top_k must be within 1..1000");
  auto c = py::array_t<float, py::array::c_style>::ensure(arr);
  if (!c) throw py::error_already_set();
  const size_t rows = arr.ndim() == 1 ? 1 : static_cast<size_t>(arr.shape(0));
  const size_t dim = static_cast<size_t>(arr.ndim() == 1 ? arr.shape(0) : arr.shape(1));
  std::vector<float> data(c.data(), c.data() + rows * dim);
  py::gil_scoped_release nogil;
  std::vector<std::span<const float>> queries;
  for (size_t i = 0; i < rows; ++i) queries.emplace_back(data.data() + i * dim, dim);
  return take(self.rec().search(queries, top_k));
}

const char* state_name(EnrollState s) {
  switch (s) {
    case EnrollState::kAdded: return "added";
    case EnrollState::kDuplicate: return "duplicate";
    case EnrollState::kSkipped: return "skipped";
  }
  return "skipped";
}

constexpr const char* kImageDoc =
    "image: a numpy uint8 array of shape (H, W, 3), BGR channel order (as cv2.imread and cv2.VideoCapture give "
    "them; any strides, copied before use), a path (str or os.PathLike) or encoded image bytes (JPEG, PNG, WebP, "
    "BMP, TIFF, GIF, HEIC, PNM).";

}  // namespace

PYBIND11_MODULE(_facerec, m) {
  m.doc() = "facerec's C++ library (FaceRecognizer) for Python; import it as `facerec`.";

  // The exception hierarchy.
  PyObject* base = PyErr_NewExceptionWithDoc(
      "facerec.Error",
      "Every failure of a facerec call. Attributes: code (str, e.g. 'no_face'), code_value (int, the C++ "
      "ErrorCode), message (str).",
      PyExc_Exception, nullptr);
  base_error() = py::reinterpret_steal<py::object>(base);
  m.attr("Error") = base_error();
  for (const auto& c : kCodes) {
    py::object bases = c.code == ErrorCode::kInvalidArgument
                           ? py::object(py::make_tuple(base_error(), py::handle(PyExc_ValueError)))
                           : base_error();
    const std::string qual = std::string("facerec.") + c.cls;
    PyObject* cls = PyErr_NewExceptionWithDoc(qual.c_str(), c.doc, bases.ptr(), nullptr);
    if (!cls) throw py::error_already_set();
    py::object o = py::reinterpret_steal<py::object>(cls);
    o.attr("code") = c.name;
    o.attr("code_value") = static_cast<int>(c.code);
    m.attr(c.cls) = o;
    error_classes()[c.code] = o;
  }
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const StatusError& e) {
      translate(e);
    }
  });

  m.def("load_image", [](const py::object& path, std::optional<int64_t> max_pixels) {
        ImageArg a = image_arg(path, "path");
        if (a.path.empty()) fail(ErrorCode::kInvalidArgument, "load_image: expected a path (str or os.PathLike)");
        ImageLimits limits;
        if (max_pixels) limits.max_pixels = *max_pixels;
        cv::Mat img;
        {
          py::gil_scoped_release nogil;
          img = take(load_image(a.path, limits));
        }
        py::array_t<uint8_t> out({img.rows, img.cols, 3});
        for (int y = 0; y < img.rows; ++y) std::memcpy(out.mutable_data(y), img.ptr(y), static_cast<size_t>(img.cols) * 3);
        return out;
      }, py::arg("path"), py::arg("max_pixels") = py::none(),
      "load_image(path, max_pixels=None) -> numpy uint8 (H, W, 3), BGR\n\n"
      "Reads an image the way the library does (EXIF orientation applied; JPEG, PNG, WebP, BMP, TIFF, GIF, HEIC, "
      "PNM). max_pixels: the size limit (default 40e6), checked from the header before decoding. Raises "
      "NotFoundError, DecodeError (not an image, truncated, corrupt), TooLargeError, InvalidArgumentError.");

  py::class_<Candidate>(m, "Candidate", "A gallery person and their cosine similarity to a face.")
      .def_readonly("identity", &Candidate::identity, "str: the enrolled name")
      .def_readonly("similarity", &Candidate::similarity, "float: cosine similarity, -1..1")
      .def("__repr__", [](const Candidate& c) {
        return "Candidate(" + py::repr(py::str(c.identity)).cast<std::string>() + ", " + repr_float(c.similarity) + ")";
      });

  py::class_<PyFace>(m, "Face",
                     "One face: where it is, how good it is, its embedding and (from identify) who it is. "
                     "Coordinates are pixels of the original image.")
      .def_property_readonly(
          "box", [](const PyFace& f) {
            const auto& b = f.face.face.box;
            return py::make_tuple(b.x, b.y, b.x + b.width, b.y + b.height);
          },
          "(x1, y1, x2, y2): floats, pixels of the original image (corners; x right, y down)")
      .def_property_readonly(
          "landmarks", [](const PyFace& f) {
            py::array_t<float> out({5, 2});
            auto r = out.mutable_unchecked<2>();
            for (int i = 0; i < 5; ++i) r(i, 0) = f.face.face.landmarks[i].x, r(i, 1) = f.face.face.landmarks[i].y;
            return out;
          },
          "numpy float32 (5, 2): x, y pixels of the left eye, right eye, nose, left and right mouth corner "
          "(image left first, the ArcFace template's order)")
      .def_property_readonly("score", [](const PyFace& f) { return f.face.face.score; },
                             "float: detector confidence, 0..1")
      .def_property_readonly("quality", [](const PyFace& f) { return f.face.quality; },
                             "float: face quality (the embedder's: 0..1 for the default embedder, the raw feature "
                             "norm for MagFace)")
      .def_property_readonly("embedding", [](const PyFace& f) { return vector_array(f.face.embedding.unit); },
                             "numpy float32 (D,): the L2-normalised embedding (D: the embedder's dimension, "
                             "Recognizer.embedding_dim); cosine similarity is a dot product")
      .def_property_readonly("embedding_norm", [](const PyFace& f) { return f.face.embedding.norm; },
                             "float: the raw L2 norm of the embedder's output before normalisation")
      .def_property_readonly(
          "identity", [](const PyFace& f) -> py::object {
            return f.identified && f.decision.known() ? py::object(py::str(f.decision.identity)) : py::none();
          },
          "str or None: the enrolled name, or None for unknown (and for faces from detect/embed)")
      .def_property_readonly(
          "similarity", [](const PyFace& f) { return f.decision.similarity; },
          "float: cosine similarity of the best candidate (also when unknown), -1..1; 0 without candidates")
      .def_property_readonly("candidates", [](const PyFace& f) { return f.decision.candidates; },
                             "list[Candidate]: the top_k gallery people, best first (empty outside identify)")
      .def_property_readonly(
          "reason", [](const PyFace& f) -> py::object { return f.identified ? py::object(py::str(f.reason)) : py::none(); },
          "str or None: why the answer is what it is: 'match', 'below_threshold', 'empty_gallery' or "
          "'low_quality' (None outside identify)")
      .def_property_readonly(
          "low_quality", [](const PyFace& f) -> py::object {
            return f.low_quality.empty() ? py::none() : py::object(py::str(f.low_quality));
          },
          "str or None: why the face is too poor to be named (it then abstains: identity None)")
      .def("__repr__", [](const PyFace& f) {
        const auto& b = f.face.face.box;
        std::string s = "Face(box=(" + repr_float(b.x) + ", " + repr_float(b.y) + ", " + repr_float(b.x + b.width) +
                        ", " + repr_float(b.y + b.height) + "), score=" + repr_float(f.face.face.score);
        if (f.identified)
          s += ", identity=" + (f.decision.known() ? py::repr(py::str(f.decision.identity)).cast<std::string>()
                                                   : std::string("None")) +
               ", similarity=" + repr_float(f.decision.similarity);
        return s + ")";
      });

  py::class_<PyIdentifyResult>(m, "IdentifyResult", "Every face of one image, named or unknown.")
      .def_property_readonly("faces", &PyIdentifyResult::faces, "list[Face]: by descending detection score")
      .def_property_readonly("width", [](const PyIdentifyResult& r) { return r.result.width; }, "int: pixels")
      .def_property_readonly("height", [](const PyIdentifyResult& r) { return r.result.height; }, "int: pixels")
      .def_property_readonly("threshold", [](const PyIdentifyResult& r) { return r.result.threshold.value; },
                             "float: the cosine threshold used (a person is named at or above it)")
      .def_property_readonly("decision", [](const PyIdentifyResult& r) { return json_object(decision_json(r.result.threshold.policy)); },
                             "dict: how the threshold was chosen (fpir, threshold, gallery_people, rule, source, "
                             "reason), as in the CLI's JSON")
      .def("to_json", [](const PyIdentifyResult& r) { return identify_json(r.image, r.result).dump(); },
           "str: the JSON object `facerec identify --json` prints for this image")
      .def("__len__", [](const PyIdentifyResult& r) { return r.result.faces.size(); })
      .def("__iter__", [](const PyIdentifyResult& r) { return py::iter(py::cast(r.faces())); })
      .def("__repr__", [](const PyIdentifyResult& r) {
        return "IdentifyResult(" + std::to_string(r.result.faces.size()) + " faces, threshold=" +
               repr_float(r.result.threshold.value) + ")";
      });

  py::class_<PyVerifyResult>(m, "VerifyResult", "Are the largest faces of two images the same person?")
      .def_property_readonly("similarity", [](const PyVerifyResult& v) { return v.result.similarity; },
                             "float: cosine similarity, -1..1")
      .def_property_readonly("same", [](const PyVerifyResult& v) { return v.result.same; }, "bool: similarity >= threshold")
      .def_property_readonly("threshold", [](const PyVerifyResult& v) { return v.result.threshold.value; }, "float")
      .def_property_readonly("face1", [](const PyVerifyResult& v) { return from_analyzed(v.result.face1); }, "Face")
      .def_property_readonly("face2", [](const PyVerifyResult& v) { return from_analyzed(v.result.face2); }, "Face")
      .def_property_readonly("faces1", [](const PyVerifyResult& v) { return v.result.faces1; },
                             "int: faces found in image1 (the largest is used)")
      .def_property_readonly("faces2", [](const PyVerifyResult& v) { return v.result.faces2; }, "int")
      .def("to_json", [](const PyVerifyResult& v) {
        return verify_json("image1", "image2", v.result, v.detector, v.embedder).dump();
      }, "str: the JSON object `facerec verify --json` prints")
      .def("__repr__", [](const PyVerifyResult& v) {
        return std::string("VerifyResult(same=") + (v.result.same ? "True" : "False") +
               ", similarity=" + repr_float(v.result.similarity) + ")";
      });

  py::class_<EnrollItem>(m, "EnrollItem", "What became of one enrolment image.")
      .def_readonly("source", &EnrollItem::source, "str: the path, or images[i] for an array")
      .def_property_readonly("state", [](const EnrollItem& i) { return state_name(i.state); },
                             "str: 'added', 'duplicate' (the person already has this content) or 'skipped'")
      .def_property_readonly("error", [](const EnrollItem& i) -> py::object {
            return i.state == EnrollState::kSkipped ? py::object(py::str(i.status.to_string())) : py::none();
          }, "str or None: why it was skipped")
      .def_readonly("faces_found", &EnrollItem::faces_found, "int: faces detected (the largest is enrolled)")
      .def_readonly("quality", &EnrollItem::quality, "float: the enrolled face's quality")
      .def_readonly("template_id", &EnrollItem::template_id, "int: the gallery row (added only)")
      .def("__repr__", [](const EnrollItem& i) {
        return "EnrollItem(" + py::repr(py::str(i.source)).cast<std::string>() + ", " + state_name(i.state) + ")";
      });

  py::class_<EnrollReport>(m, "EnrollReport", "The outcome of one enroll() call (one gallery transaction).")
      .def_readonly("name", &EnrollReport::name, "str")
      .def_readonly("items", &EnrollReport::items, "list[EnrollItem]: one per image, in order")
      .def_readonly("added", &EnrollReport::added, "int")
      .def_readonly("duplicates", &EnrollReport::duplicates, "int")
      .def_readonly("skipped", &EnrollReport::skipped, "int")
      .def("__repr__", [](const EnrollReport& r) {
        return "EnrollReport(" + py::repr(py::str(r.name)).cast<std::string>() + ", added=" + std::to_string(r.added) +
               ", duplicates=" + std::to_string(r.duplicates) + ", skipped=" + std::to_string(r.skipped) + ")";
      });

  py::class_<PersonSummary>(m, "Person", "An enrolled person.")
      .def_readonly("name", &PersonSummary::name, "str")
      .def_readonly("templates", &PersonSummary::templates, "int: enrolled templates")
      .def("__repr__", [](const PersonSummary& p) {
        return "Person(" + py::repr(py::str(p.name)).cast<std::string>() + ", templates=" + std::to_string(p.templates) + ")";
      });

  py::class_<PyRecognizer>(m, "Recognizer",
                           "Detect, align, embed and name faces: the library's FaceRecognizer.\n\n"
                           "Models load once at construction. Every method is safe from any number of threads at "
                           "once and releases the GIL while it works, so Python threads run in parallel.\n"
                           "The gallery file is read at construction; changes another process makes later are not "
                           "seen until a new Recognizer.")
      .def(py::init<const std::optional<std::string>&, const std::optional<std::string>&,
                    const std::optional<std::string>&, const std::optional<std::string>&, const std::string&, int,
                    std::optional<float>, std::optional<double>, const std::string&, std::optional<int64_t>,
                    const std::optional<std::string>&>(),
           py::arg("db") = py::none(), py::kw_only(), py::arg("detector") = py::none(),
           py::arg("embedder") = py::none(), py::arg("manifest") = py::none(), py::arg("config") = "",
           py::arg("threads") = 0, py::arg("threshold") = py::none(), py::arg("fpir") = py::none(),
           py::arg("gallery") = "create", py::arg("max_pixels") = py::none(), py::arg("detect_policy") = py::none(),
           "Recognizer(db='gallery.db', *, detector=None, embedder=None, manifest=None, config='', threads=0, "
           "threshold=None, fpir=None, gallery='create', max_pixels=None, detect_policy=None)\n\n"
           "db: the gallery file (SQLite), as `facerec --db`. detector/embedder: a manifest id, an .onnx path or "
           "family:path (default: the manifest's). config: a JSON config file (the CLI's --config); arguments "
           "given here override it. threads: ONNX Runtime threads per model (0: one per core). threshold: a cosine "
           "threshold -1..1 that overrides fpir; fpir: the fraction of non-enrolled probes accepted being named "
           "(default 0.01). gallery: 'create' (create db when absent), 'must_exist' (NotFoundError when absent) "
           "or 'none' (no gallery: detect/embed/verify only). max_pixels: the image size limit (default 40e6).\n"
           "Raises NotFoundError, ModelError, DatabaseError, MismatchError (a gallery of another embedder), "
           "InvalidArgumentError.")
      .def("identify", &identify, py::arg("image"), py::kw_only(), py::arg("top_k") = 5,
           py::arg("threshold") = py::none(), py::arg("fpir") = py::none(),
           (std::string("identify(image, *, top_k=5, threshold=None, fpir=None) -> IdentifyResult\n\n"
                        "Every face named against the gallery, or unknown (identity None). ") + kImageDoc +
            " top_k: candidates per face, 1..1000; threshold/fpir: this call only.\nRaises InvalidArgumentError "
            "(dtype, shape, options), DecodeError (corrupt file), NotFoundError (missing file), TooLargeError. "
            "An image without faces is not an error: the result has no faces.")
               .c_str())
      .def("detect", &detect, py::arg("image"),
           (std::string("detect(image) -> list[Face]\n\nEvery face, detected, aligned and embedded (no identity), "
                        "by descending score. ") + kImageDoc + " Raises as identify().").c_str())
      .def("embed", &embed, py::arg("image"),
           (std::string("embed(image) -> Face\n\nThe largest face, embedded: face.embedding is numpy float32 (D,), "
                        "unit length. ") + kImageDoc + " Raises NoFaceError when there is no face, and as identify().")
               .c_str())
      .def("verify", &verify, py::arg("image1"), py::arg("image2"), py::kw_only(), py::arg("threshold") = py::none(),
           "verify(image1, image2, *, threshold=None) -> VerifyResult\n\nAre the largest faces of two images the "
           "same person? Images as for identify(). Raises NoFaceError when either has no face.")
      .def("enroll", &enroll, py::arg("name"), py::arg("images"), py::kw_only(), py::arg("min_quality") = py::none(),
           "enroll(name, images, *, min_quality=None) -> EnrollReport\n\nEnrols the largest face of each image as "
           "a template of `name` (created when new), in ONE gallery transaction. images: one image or a list of "
           "them (arrays, paths, bytes). Images without a usable face are skipped (see the report's items), not "
           "raised. Raises InvalidArgumentError (a bad name, a bad array), DatabaseError.")
      .def("search", &search, py::arg("embeddings"), py::kw_only(), py::arg("top_k") = 5,
           "search(embeddings, *, top_k=5) -> list[list[Candidate]]\n\nThe top_k gallery people of embeddings "
           "already made (Face.embedding), one list per row, best first, with no threshold applied. embeddings: "
           "numpy float32 of shape (N, D) or (D,), D the embedder's dimension, unit length. Raises "
           "InvalidArgumentError (dtype, shape, a D other than the embedder's).")
      .def("remove", [](PyRecognizer& self, const std::string& name) {
             py::gil_scoped_release nogil;
             check(self.rec().remove(name));
           }, py::arg("name"), "remove(name)\n\nRemoves a person and all their templates. Raises NotFoundError.")
      .def("rename", [](PyRecognizer& self, const std::string& old_name, const std::string& new_name) {
             py::gil_scoped_release nogil;
             check(self.rec().rename(old_name, new_name));
           }, py::arg("old"), py::arg("new"),
           "rename(old, new)\n\nRaises NotFoundError (no such person), AlreadyExistsError, InvalidArgumentError.")
      .def("people", [](const PyRecognizer& self) {
             py::gil_scoped_release nogil;
             return self.rec().people();
           }, "people() -> list[Person], by name")
      .def_property_readonly("template_count", [](const PyRecognizer& self) { return self.rec().template_count(); },
                             "int: templates in the gallery")
      .def_property_readonly("threshold", [](const PyRecognizer& self) { return take(self.rec().threshold()).value; },
                             "float: the cosine threshold identify() uses now (it depends on the gallery size)")
      .def_property_readonly("detector", [](const PyRecognizer& self) { return self.rec().detector_spec().id; },
                             "str: the detector's model id")
      .def_property_readonly("embedder", [](const PyRecognizer& self) { return self.rec().embedder_spec().id; },
                             "str: the embedder's model id")
      .def_property_readonly("embedding_dim", [](const PyRecognizer& self) { return self.rec().embedder_info().dim; },
                             "int: D, the embedding length");
}
