// Readers for the evaluation sets' own files: LFW pairs.txt, the WIDER FACE
// ground-truth txt and its difficulty .mat files (through libmatio).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include <matio.h>

#include "facerec/eval.h"

namespace facerec::eval {
namespace {

std::vector<std::string> split_ws(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string t; in >> t;) out.push_back(t);
  return out;
}

bool parse_int(const std::string& s, int& v) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(s.c_str(), &end, 10);
  if (errno || end == s.c_str() || *end || x < INT32_MIN || x > INT32_MAX) return false;
  v = static_cast<int>(x);
  return true;
}

bool parse_float(const std::string& s, float& v) {
  char* end = nullptr;
  errno = 0;
  v = std::strtof(s.c_str(), &end);
  return !errno && end != s.c_str() && !*end && std::isfinite(v);
}

std::string lfw_image(const std::string& name, int index) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "_%04d.jpg", index);
  return name + "/" + name + buf;
}

}  // namespace

Result<std::vector<LfwPair>> read_lfw_pairs(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status(ErrorCode::kNotFound, "cannot open LFW pairs file " + path);
  std::string line;
  int line_no = 0;
  // Skip blank lines; the header is the first non-blank line.
  std::vector<std::string> header;
  while (header.empty() && std::getline(in, line)) { ++line_no; header = split_ws(line); }
  int folds = 1, per_class = 0;
  const bool ok = header.size() == 2 ? parse_int(header[0], folds) && parse_int(header[1], per_class)
                                     : header.size() == 1 && parse_int(header[0], per_class);
  if (!ok || folds < 1 || per_class < 1)
    return Status(ErrorCode::kInvalidArgument, path + ": the first line must be \"folds pairs_per_class\" (e.g. \"10 300\") or \"pairs\"");
  std::vector<LfwPair> pairs;
  pairs.reserve(static_cast<size_t>(folds) * per_class * 2);
  for (int f = 0; f < folds; ++f) {
    for (int i = 0; i < 2 * per_class; ++i) {
      std::vector<std::string> t;
      while (t.empty()) {
        if (!std::getline(in, line))
          return Status(ErrorCode::kInvalidArgument, path + ": ends after " + std::to_string(pairs.size()) + " pairs; the header promises " +
                                                         std::to_string(folds * per_class * 2));
        ++line_no;
        t = split_ws(line);
      }
      const bool same = i < per_class;
      LfwPair p;
      p.same = same;
      p.fold = f;
      int a = 0, b = 0;
      if (same && t.size() == 3 && parse_int(t[1], a) && parse_int(t[2], b) && a > 0 && b > 0) {
        p.image1 = lfw_image(t[0], a);
        p.image2 = lfw_image(t[0], b);
      } else if (!same && t.size() == 4 && parse_int(t[1], a) && parse_int(t[3], b) && a > 0 && b > 0) {
        p.image1 = lfw_image(t[0], a);
        p.image2 = lfw_image(t[2], b);
      } else {
        return Status(ErrorCode::kInvalidArgument,
                      path + ":" + std::to_string(line_no) + ": expected a " +
                          (same ? "same-person line \"name i j\"" : "different-person line \"name1 i name2 j\"") +
                          " (fold " + std::to_string(f + 1) + ", pair " + std::to_string(i + 1) + ")");
      }
      pairs.push_back(std::move(p));
    }
  }
  return pairs;
}

Result<std::vector<WiderGtImage>> read_wider_gt_txt(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status(ErrorCode::kNotFound, "cannot open WIDER FACE ground truth " + path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  std::vector<WiderGtImage> images;
  const auto bad = [&](size_t i, const std::string& why) {
    return Status(ErrorCode::kInvalidArgument, path + ":" + std::to_string(i + 1) + ": " + why);
  };
  size_t i = 0;
  while (i < lines.size()) {
    if (split_ws(lines[i]).empty()) { ++i; continue; }
    WiderGtImage im;
    im.path = lines[i];
    while (!im.path.empty() && std::isspace(static_cast<unsigned char>(im.path.back()))) im.path.pop_back();
    if (im.path.find('/') == std::string::npos) return bad(i, "expected an image path \"event/file.jpg\", got \"" + im.path + "\"");
    ++i;
    int n = -1;
    if (i >= lines.size() || !parse_int(split_ws(lines[i]).empty() ? "" : split_ws(lines[i])[0], n) || n < 0 ||
        split_ws(lines[i]).size() != 1)
      return bad(i, "expected the face count of " + im.path);
    ++i;
    for (int k = 0; k < n; ++k, ++i) {
      if (i >= lines.size()) return bad(i, "file ends inside the boxes of " + im.path);
      const auto t = split_ws(lines[i]);
      float v[4];
      if (t.size() < 4 || !parse_float(t[0], v[0]) || !parse_float(t[1], v[1]) || !parse_float(t[2], v[2]) ||
          !parse_float(t[3], v[3]))
        return bad(i, "expected \"x y w h ...\" for a face of " + im.path);
      im.boxes.emplace_back(v[0], v[1], v[2], v[3]);
    }
    // The official file gives a face-less image one all-zero line.
    if (n == 0 && i < lines.size() && lines[i].find('/') == std::string::npos) {
      const auto t = split_ws(lines[i]);
      float v;
      if (!t.empty() && parse_float(t[0], v)) ++i;
    }
    images.push_back(std::move(im));
  }
  if (images.empty()) return Status(ErrorCode::kInvalidArgument, path + ": no images listed");
  return images;
}

namespace {

struct MatFileCloser { void operator()(mat_t* m) const { if (m) Mat_Close(m); } };
struct MatVarFree { void operator()(matvar_t* v) const { if (v) Mat_VarFree(v); } };
using MatFile = std::unique_ptr<mat_t, MatFileCloser>;
using MatVar = std::unique_ptr<matvar_t, MatVarFree>;

size_t numel(const matvar_t* v) {
  size_t n = 1;
  for (int d = 0; d < v->rank; ++d) n *= v->dims[d];
  return n;
}

// A MATLAB char array as an ASCII string (1- or 2-byte code units).
bool mat_string(const matvar_t* v, std::string& out) {
  if (!v || v->class_type != MAT_C_CHAR || !v->data) return false;
  const size_t n = numel(v);
  out.clear();
  if (v->data_size == 1) out.assign(static_cast<const char*>(v->data), n);
  else if (v->data_size == 2) {
    const auto* u = static_cast<const uint16_t*>(v->data);
    for (size_t i = 0; i < n; ++i) out += static_cast<char>(u[i] < 0x80 ? u[i] : '?');
  } else {
    return false;
  }
  return true;
}

// A real numeric MATLAB array as doubles, in MATLAB's column-major order.
bool mat_numbers(const matvar_t* v, std::vector<double>& out) {
  out.clear();
  if (!v || v->isComplex || v->class_type == MAT_C_SPARSE) return false;
  const size_t n = numel(v);
  if (n == 0) return v->class_type != MAT_C_CELL && v->class_type != MAT_C_CHAR;
  if (!v->data) return false;
  out.resize(n);
  auto copy = [&](auto* p) { for (size_t i = 0; i < n; ++i) out[i] = static_cast<double>(p[i]); };
  switch (v->class_type) {
    case MAT_C_DOUBLE: copy(static_cast<const double*>(v->data)); break;
    case MAT_C_SINGLE: copy(static_cast<const float*>(v->data)); break;
    case MAT_C_INT8: copy(static_cast<const int8_t*>(v->data)); break;
    case MAT_C_UINT8: copy(static_cast<const uint8_t*>(v->data)); break;
    case MAT_C_INT16: copy(static_cast<const int16_t*>(v->data)); break;
    case MAT_C_UINT16: copy(static_cast<const uint16_t*>(v->data)); break;
    case MAT_C_INT32: copy(static_cast<const int32_t*>(v->data)); break;
    case MAT_C_UINT32: copy(static_cast<const uint32_t*>(v->data)); break;
    case MAT_C_INT64: copy(static_cast<const int64_t*>(v->data)); break;
    case MAT_C_UINT64: copy(static_cast<const uint64_t*>(v->data)); break;
    default: return false;
  }
  return true;
}

matvar_t* cell(const matvar_t* v, size_t i) {
  if (!v || v->class_type != MAT_C_CELL || i >= numel(v)) return nullptr;
  return Mat_VarGetCell(const_cast<matvar_t*>(v), static_cast<int>(i));
}

// One difficulty .mat: for each "event/file.jpg", its boxes and its 1-based
// kept indices.
struct SubsetEntry {
  std::vector<double> boxes;  // n x 4, column-major
  size_t rows = 0;
  std::vector<double> keep;   // 1-based
};

Status read_subset_mat(const std::string& path, std::map<std::string, SubsetEntry>& out) {
  MatFile file(Mat_Open(path.c_str(), MAT_ACC_RDONLY));
  if (!file) return Status(ErrorCode::kNotFound, "cannot open " + path + " (a WIDER FACE difficulty .mat file)");
  MatVar events(Mat_VarRead(file.get(), "event_list")), files(Mat_VarRead(file.get(), "file_list")),
      boxes(Mat_VarRead(file.get(), "face_bbx_list")), gt(Mat_VarRead(file.get(), "gt_list"));
  const auto bad = [&](const std::string& why) { return Status(ErrorCode::kDecode, path + ": " + why); };
  if (!events || !files || !boxes || !gt)
    return bad("expected the variables event_list, file_list, face_bbx_list and gt_list");
  const size_t n_events = numel(events.get());
  if (numel(files.get()) != n_events || numel(boxes.get()) != n_events || numel(gt.get()) != n_events)
    return bad("event_list, file_list, face_bbx_list and gt_list differ in length");
  for (size_t e = 0; e < n_events; ++e) {
    std::string event;
    if (!mat_string(cell(events.get(), e), event)) return bad("event_list{" + std::to_string(e + 1) + "} is not text");
    const matvar_t* ef = cell(files.get(), e);
    const matvar_t* eb = cell(boxes.get(), e);
    const matvar_t* eg = cell(gt.get(), e);
    if (!ef || !eb || !eg || numel(ef) != numel(eb) || numel(ef) != numel(eg))
      return bad("the lists of event " + event + " are not cells of equal length");
    for (size_t j = 0; j < numel(ef); ++j) {
      std::string name;
      if (!mat_string(cell(ef, j), name)) return bad("file_list of " + event + " holds a non-text entry");
      SubsetEntry s;
      const matvar_t* b = cell(eb, j);
      if (!mat_numbers(b, s.boxes) || (!s.boxes.empty() && (b->rank != 2 || b->dims[1] != 4)))
        return bad("face_bbx_list of " + event + "/" + name + " is not an n x 4 numeric array");
      s.rows = s.boxes.size() / 4;
      if (!mat_numbers(cell(eg, j), s.keep)) return bad("gt_list of " + event + "/" + name + " is not numeric");
      out[event + "/" + name + ".jpg"] = std::move(s);
    }
  }
  return Status::Ok();
}

}  // namespace

Status read_wider_subsets(const std::string& mat_dir, std::vector<WiderGtImage>& images) {
  static const char* kFiles[3] = {"wider_easy_val.mat", "wider_medium_val.mat", "wider_hard_val.mat"};
  for (int s = 0; s < 3; ++s) {
    const std::string path = mat_dir + "/" + kFiles[s];
    std::map<std::string, SubsetEntry> entries;
    FACEREC_RETURN_IF_ERROR(read_subset_mat(path, entries));
    for (auto& im : images) {
      const auto it = entries.find(im.path);
      if (it == entries.end()) return Status(ErrorCode::kNotFound, path + " has no image " + im.path);
      const SubsetEntry& e = it->second;
      if (e.rows != im.boxes.size())
        return Status(ErrorCode::kMismatch, im.path + ": the ground-truth txt lists " + std::to_string(im.boxes.size()) +
                                                " faces, " + path + " " + std::to_string(e.rows));
      for (size_t r = 0; r < e.rows; ++r) {
        const cv::Rect2f& b = im.boxes[r];
        const double m[4] = {e.boxes[r], e.boxes[e.rows + r], e.boxes[2 * e.rows + r], e.boxes[3 * e.rows + r]};
        if (std::abs(m[0] - b.x) > 0.5 || std::abs(m[1] - b.y) > 0.5 || std::abs(m[2] - b.width) > 0.5 ||
            std::abs(m[3] - b.height) > 0.5)
          return Status(ErrorCode::kMismatch, im.path + ": face " + std::to_string(r + 1) + " differs between the txt and " + path);
      }
      auto& keep = im.keep[static_cast<size_t>(s)];
      keep.assign(im.boxes.size(), 0);
      for (double k : e.keep) {
        if (k < 1 || k > static_cast<double>(e.rows) || k != std::floor(k))
          return Status(ErrorCode::kDecode, path + ": gt_list of " + im.path + " holds index " + std::to_string(k) +
                                                " outside 1.." + std::to_string(e.rows));
        keep[static_cast<size_t>(k) - 1] = 1;
      }
    }
  }
  return Status::Ok();
}

}  // namespace facerec::eval
