#include "decoders.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include <gif_lib.h>
#include <jpeglib.h>
#include <jerror.h>
#include <libheif/heif.h>
#include <opencv2/imgproc.hpp>

namespace facerec::io {

Status too_many_pixels(int64_t width, int64_t height, const ImageLimits& limits) {
  return Status(ErrorCode::kTooLarge, std::to_string(width) + "x" + std::to_string(height) +
                                          " pixels exceeds the limit of " + std::to_string(limits.max_pixels) +
                                          " (raise it with --max-pixels)");
}

// ---- JPEG ------------------------------------------------------------------------
namespace {

struct JpegError {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jpeg_fail(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegError*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

// libjpeg reports missing or corrupt entropy data as a *warning* and fills
// the rest of the image with grey. Those warnings are errors here; harmless
// ones (extra bytes between markers, an odd JFIF version) are not.
void jpeg_message(j_common_ptr c, int level) {
  if (level >= 0) return;  // trace messages
  switch (c->err->msg_code) {
    case JWRN_HIT_MARKER: case JWRN_JPEG_EOF: case JWRN_MUST_RESYNC: case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE: case JWRN_NOT_SEQUENTIAL: case JWRN_BOGUS_PROGRESSION:
      jpeg_fail(c);
    default:
      return;
  }
}

struct JpegState {
  jpeg_decompress_struct cinfo{};
  JpegError err{};
  cv::Mat out;
  bool created = false;
  ~JpegState() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

}  // namespace

Result<cv::Mat> decode_jpeg(const std::string& bytes) {
  // On the heap and made before setjmp: what libjpeg changes lives outside
  // this frame, and the destructor runs on every path.
  auto state = std::make_unique<JpegState>();
  JpegState& s = *state;
  s.cinfo.err = jpeg_std_error(&s.err.pub);
  s.err.pub.error_exit = jpeg_fail;
  s.err.pub.emit_message = jpeg_message;
  if (setjmp(s.err.jump)) {
    return Status(ErrorCode::kDecode, std::string("corrupt JPEG data (") + s.err.message + ")");
  }
  jpeg_create_decompress(&s.cinfo);
  s.created = true;
  jpeg_mem_src(&s.cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  jpeg_read_header(&s.cinfo, TRUE);
  const J_COLOR_SPACE in = s.cinfo.jpeg_color_space;
  const bool cmyk = in == JCS_CMYK || in == JCS_YCCK;
  const bool grey = in == JCS_GRAYSCALE;
  s.cinfo.out_color_space = cmyk ? JCS_CMYK : grey ? JCS_GRAYSCALE : JCS_EXT_BGR;
  jpeg_start_decompress(&s.cinfo);
  const int channels = s.cinfo.output_components;
  s.out.create(static_cast<int>(s.cinfo.output_height), static_cast<int>(s.cinfo.output_width), CV_8UC(channels));
  while (s.cinfo.output_scanline < s.cinfo.output_height) {
    JSAMPROW row = s.out.ptr<unsigned char>(static_cast<int>(s.cinfo.output_scanline));
    jpeg_read_scanlines(&s.cinfo, &row, 1);
  }
  jpeg_finish_decompress(&s.cinfo);
  if (!cmyk) return s.out;
  // Adobe-style (inverted) CMYK, as photo tools write it; the same conversion
  // OpenCV applies.
  cv::Mat bgr(s.out.rows, s.out.cols, CV_8UC3);
  for (int y = 0; y < s.out.rows; ++y) {
    const unsigned char* q = s.out.ptr<unsigned char>(y);
    unsigned char* o = bgr.ptr<unsigned char>(y);
    for (int x = 0; x < s.out.cols; ++x, q += 4, o += 3) {
      const int k = q[3];
      o[2] = static_cast<unsigned char>(k - ((255 - q[0]) * k >> 8));
      o[1] = static_cast<unsigned char>(k - ((255 - q[1]) * k >> 8));
      o[0] = static_cast<unsigned char>(k - ((255 - q[2]) * k >> 8));
    }
  }
  return bgr;
}

// ---- GIF -------------------------------------------------------------------------
namespace {

struct GifReader {
  const unsigned char* data;
  size_t size, at;
};

int gif_read(GifFileType* g, GifByteType* buf, int len) {
  auto* r = static_cast<GifReader*>(g->UserData);
  const size_t k = std::min(static_cast<size_t>(std::max(len, 0)), r->size - r->at);
  std::memcpy(buf, r->data + r->at, k);
  r->at += k;
  return static_cast<int>(k);
}

struct GifCloser {
  GifFileType* g = nullptr;
  ~GifCloser() {
    int e = 0;
    if (g) DGifCloseFile(g, &e);
  }
};

}  // namespace

// The first frame, composited onto the logical screen (transparent pixels
// take the background colour).
Result<cv::Mat> decode_gif(const std::string& bytes, const ImageLimits& limits) {
  GifReader reader{reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), 0};
  int err = 0;
  GifCloser gc;
  gc.g = DGifOpen(&reader, gif_read, &err);
  if (!gc.g) return Status(ErrorCode::kDecode, std::string("corrupt GIF (") + GifErrorString(err) + ")");
  GifFileType* g = gc.g;
  auto fail = [&](const char* what) {
    const char* why = GifErrorString(g->Error);
    return Status(ErrorCode::kDecode, std::string("corrupt GIF: ") + what + (why ? std::string(" (") + why + ")" : ""));
  };
  int transparent = -1;
  for (;;) {
    GifRecordType type;
    if (DGifGetRecordType(g, &type) != GIF_OK) return fail("the data ends before the first frame");
    if (type == TERMINATE_RECORD_TYPE) return Status(ErrorCode::kDecode, "GIF without any frame");
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* ext = nullptr;
      if (DGifGetExtension(g, &code, &ext) != GIF_OK) return fail("bad extension block");
      if (code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] >= 4 && (ext[1] & 1)) transparent = ext[4];
      while (ext) {
        if (DGifGetExtensionNext(g, &ext) != GIF_OK) return fail("bad extension block");
      }
      continue;
    }
    if (type != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(g) != GIF_OK) return fail("bad image descriptor");
    const GifImageDesc& d = g->Image;
    if (d.Width <= 0 || d.Height <= 0) return Status(ErrorCode::kDecode, "corrupt GIF: empty frame");
    if (int64_t(d.Width) * d.Height > limits.max_pixels) return too_many_pixels(d.Width, d.Height, limits);
    const ColorMapObject* map = d.ColorMap ? d.ColorMap : g->SColorMap;
    if (!map || !map->Colors || map->ColorCount <= 0) return Status(ErrorCode::kDecode, "corrupt GIF: no colour table");
    cv::Scalar background(0, 0, 0);
    if (g->SColorMap && g->SBackGroundColor >= 0 && g->SBackGroundColor < g->SColorMap->ColorCount) {
      const GifColorType c = g->SColorMap->Colors[g->SBackGroundColor];
      background = cv::Scalar(c.Blue, c.Green, c.Red);
    }
    const int sw = g->SWidth > 0 ? g->SWidth : d.Left + d.Width, sh = g->SHeight > 0 ? g->SHeight : d.Top + d.Height;
    cv::Mat canvas(sh, sw, CV_8UC3, background);
    std::vector<GifPixelType> line(static_cast<size_t>(d.Width));
    // Interlaced frames store rows in four passes.
    std::vector<int> order;
    order.reserve(static_cast<size_t>(d.Height));
    if (d.Interlace) {
      const int start[] = {0, 4, 2, 1}, step[] = {8, 8, 4, 2};
      for (int pass = 0; pass < 4; ++pass)
        for (int y = start[pass]; y < d.Height; y += step[pass]) order.push_back(y);
    } else {
      for (int y = 0; y < d.Height; ++y) order.push_back(y);
    }
    for (int y : order) {
      if (DGifGetLine(g, line.data(), d.Width) != GIF_OK) return fail("the frame's data ends early");
      const int cy = d.Top + y;
      if (cy < 0 || cy >= sh) continue;
      unsigned char* o = canvas.ptr<unsigned char>(cy);
      for (int x = 0; x < d.Width; ++x) {
        const int cx = d.Left + x;
        const int idx = line[static_cast<size_t>(x)];
        if (cx < 0 || cx >= sw || idx == transparent || idx >= map->ColorCount) continue;
        const GifColorType c = map->Colors[idx];
        o[3 * cx] = c.Blue;
        o[3 * cx + 1] = c.Green;
        o[3 * cx + 2] = c.Red;
      }
    }
    return canvas;
  }
}

// ---- HEIF / AVIF -------------------------------------------------------------------
namespace {

uint64_t be_n(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

// One ISO BMFF box off the front of `rest`: 1 read, 0 at the end, -1 malformed.
int next_box(std::string_view& rest, std::string_view& type, std::string_view& body) {
  if (rest.empty()) return 0;
  if (rest.size() < 8) return -1;
  const auto* p = reinterpret_cast<const unsigned char*>(rest.data());
  uint64_t size = be_n(p, 4);
  size_t header = 8;
  if (size == 1) {
    if (rest.size() < 16) return -1;
    size = be_n(p + 8, 8);
    header = 16;
  } else if (size == 0) {
    size = rest.size();
  }
  if (size < header || size > rest.size()) return -1;
  type = rest.substr(4, 4);
  body = rest.substr(header, static_cast<size_t>(size) - header);
  rest.remove_prefix(static_cast<size_t>(size));
  return 1;
}

}  // namespace

Status check_heif_item_graph(std::string_view bytes, ImageFormat format) {
  const std::string what = std::string("corrupt ") + format_name(format) + ": ";
  // The top-level 'meta' box. A malformed top level is left to libheif.
  std::string_view rest = bytes, type, body, meta;
  while (next_box(rest, type, body) == 1)
    if (type == "meta") {
      meta = body;
      break;
    }
  if (meta.size() < 4) return Status::Ok();
  rest = meta.substr(4);  // FullBox: version and flags
  std::optional<uint32_t> primary;
  std::unordered_map<uint32_t, std::vector<uint32_t>> deps;  // item -> the items decoded with it
  while (next_box(rest, type, body) == 1) {
    if (type == "pitm") {
      if (body.size() < 4) return Status(ErrorCode::kDecode, what + "'pitm' box too short");
      const auto* p = reinterpret_cast<const unsigned char*>(body.data());
      const int n = p[0] == 0 ? 2 : 4;
      if (body.size() < size_t(4 + n)) return Status(ErrorCode::kDecode, what + "'pitm' box too short");
      primary = static_cast<uint32_t>(be_n(p + 4, n));
    } else if (type == "iref") {
      if (body.size() < 4) return Status(ErrorCode::kDecode, what + "'iref' box too short");
      const int n = body[0] == 0 ? 2 : 4;  // item ID width: version 0 -> 16 bits, else 32
      std::string_view refs = body.substr(4), rtype, rbody;
      int got;
      while ((got = next_box(refs, rtype, rbody)) == 1) {
        const auto* p = reinterpret_cast<const unsigned char*>(rbody.data());
        if (rbody.size() < size_t(n + 2)) return Status(ErrorCode::kDecode, what + "'iref' entry too short");
        const auto from = static_cast<uint32_t>(be_n(p, n));
        const size_t count = be_n(p + n, 2);
        if (rbody.size() < n + 2 + count * n) return Status(ErrorCode::kDecode, what + "'iref' entry too short");
        const bool derive = rtype == "dimg", aux = rtype == "auxl";
        if (!derive && !aux) continue;
        for (size_t i = 0; i < count; ++i) {
          const auto to = static_cast<uint32_t>(be_n(p + n + 2 + i * n, n));
          // 'dimg': a derived image decodes its inputs; 'auxl': the master
          // image decodes its auxiliary (alpha, depth) image.
          if (derive) deps[from].push_back(to);
          else deps[to].push_back(from);
        }
      }
      if (got < 0) return Status(ErrorCode::kDecode, what + "malformed 'iref' box");
    }
  }
  if (deps.empty()) return Status::Ok();

  // Iterative depth-first search (no recursion on untrusted depth): a cycle,
  // then each item's derivation depth and decode count, saturated at the limit.
  enum : uint8_t { kNew, kOpen, kDone };
  struct Node {
    uint8_t state = kNew;
    int64_t decodes = 0;  // this item and everything decoded with it
    int depth = 0;        // derivation levels below it
  };
  std::unordered_map<uint32_t, Node> node;
  auto visit = [&](uint32_t root) -> Status {
    if (node[root].state == kDone) return Status::Ok();
    std::vector<std::pair<uint32_t, size_t>> stack{{root, 0}};
    node[root].state = kOpen;
    while (!stack.empty()) {
      auto& [item, next] = stack.back();
      auto it = deps.find(item);
      if (it != deps.end() && next < it->second.size()) {
        const uint32_t child = it->second[next++];
        uint8_t& s = node[child].state;
        if (s == kOpen)
          return Status(ErrorCode::kDecode, what + "item references form a cycle through item " + std::to_string(child) +
                                                " (a derived or auxiliary image that needs itself)");
        if (s == kNew) {
          s = kOpen;
          stack.emplace_back(child, 0);
        }
        continue;
      }
      Node& self = node[item];
      self.decodes = 1;
      if (it != deps.end())
        for (uint32_t c : it->second) {
          self.decodes = std::min(kMaxHeifDecodes + 1, self.decodes + node[c].decodes);
          self.depth = std::max(self.depth, std::min(node[c].depth + 1, kMaxHeifDerivationDepth + 1));
        }
      self.state = kDone;
      stack.pop_back();
    }
    return Status::Ok();
  };
  for (const auto& [item, children] : deps) FACEREC_RETURN_IF_ERROR(visit(item));
  std::vector<uint32_t> roots;
  if (primary) roots.push_back(*primary);
  else
    for (const auto& [item, children] : deps) roots.push_back(item);
  for (uint32_t r : roots) {
    if (node[r].depth > kMaxHeifDerivationDepth)
      return Status(ErrorCode::kDecode, what + "image item " + std::to_string(r) + " nests derived images more than " +
                                            std::to_string(kMaxHeifDerivationDepth) + " deep");
    if (node[r].decodes > kMaxHeifDecodes)
      return Status(ErrorCode::kDecode, what + "image item " + std::to_string(r) + " needs more than " +
                                            std::to_string(kMaxHeifDecodes) + " item decodes (grid cells)");
  }
  return Status::Ok();
}

namespace {
struct HeifHolder {
  heif_context* ctx = nullptr;
  heif_image_handle* handle = nullptr;
  heif_image* image = nullptr;
  ~HeifHolder() {
    if (image) heif_image_release(image);
    if (handle) heif_image_handle_release(handle);
    if (ctx) heif_context_free(ctx);
  }
};

// libheif's messages can end in a newline; a refused size is facerec's kTooLarge.
Status heif_failure(const heif_error& e, const char* name) {
  std::string msg = e.message ? e.message : "";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (e.code == heif_error_Memory_allocation_error && e.subcode == heif_suberror_Security_limit_exceeded)
    return Status(ErrorCode::kTooLarge, std::string(name) + " image over libheif's own size limit (" + msg +
                                            "; --max-pixels cannot raise it)");
  return Status(ErrorCode::kDecode, std::string("corrupt ") + name + " (" + msg + ")");
}
}  // namespace

Result<cv::Mat> decode_heif(const std::string& bytes, ImageFormat format, const ImageLimits& limits) {
  const char* name = format_name(format);
  const heif_compression_format codec = format == ImageFormat::kAvif ? heif_compression_AV1 : heif_compression_HEVC;
  FACEREC_RETURN_IF_ERROR(check_heif_item_graph(bytes, format));
  HeifHolder h;
  h.ctx = heif_context_alloc();
  if (!h.ctx) return Status(ErrorCode::kInternal, "libheif: cannot allocate a context");
  // Grid tiles decode on at most 2 threads (libheif's default is 4 per grid).
  heif_context_set_max_decoding_threads(h.ctx, 2);
  heif_error e = heif_context_read_from_memory_without_copy(h.ctx, bytes.data(), bytes.size(), nullptr);
  if (e.code != heif_error_Ok) return heif_failure(e, name);
  e = heif_context_get_primary_image_handle(h.ctx, &h.handle);
  if (e.code != heif_error_Ok) return heif_failure(e, name);
  const int64_t w = heif_image_handle_get_width(h.handle), hh = heif_image_handle_get_height(h.handle);
  if (w <= 0 || hh <= 0) return Status(ErrorCode::kDecode, std::string("corrupt ") + name + " header: zero size");
  if (w > limits.max_pixels / hh) return too_many_pixels(w, hh, limits);
  if (!heif_have_decoder_for_format(codec))
    return Status(ErrorCode::kDecode, std::string(name) + ": format not supported by this build (libheif has no " +
                                          (codec == heif_compression_AV1 ? "AV1" : "HEVC") + " decoder)");
  e = heif_decode_image(h.handle, &h.image, heif_colorspace_RGB, heif_chroma_interleaved_RGB, nullptr);
  if (e.code != heif_error_Ok) return heif_failure(e, name);
  int stride = 0;
  const uint8_t* data = heif_image_get_plane_readonly(h.image, heif_channel_interleaved, &stride);
  const int iw = heif_image_get_width(h.image, heif_channel_interleaved);
  const int ih = heif_image_get_height(h.image, heif_channel_interleaved);
  if (!data || iw <= 0 || ih <= 0) return Status(ErrorCode::kDecode, std::string("corrupt ") + name + ": no pixels");
  if (int64_t(iw) * ih > limits.max_pixels) return too_many_pixels(iw, ih, limits);
  cv::Mat rgb(ih, iw, CV_8UC3, const_cast<uint8_t*>(data), static_cast<size_t>(stride));
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

}  // namespace facerec::io
