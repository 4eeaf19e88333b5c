// Real-world video faults (issue 11, faults 6, 7, 17) on clips made here with
// ffmpeg: phone rotation metadata, a finite file served over HTTP, a live
// stream that keeps dropping, and a file that yields no frame.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include "facerec/video.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace facerec {
namespace {

bool sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

std::string dir() {
  static const std::string d = testing::temp_dir("videofaults");
  return d;
}

// 2 s of ffmpeg's asymmetric test pattern at 10 fps, 160x96, MPEG-4 part 2.
std::string base_clip() {
  static const std::string p = [] {
    const std::string out = dir() + "/base.mp4";
    EXPECT_TRUE(sh("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=160x96:rate=10 -t 2 -c:v mpeg4 -q:v 2 "
                   "-movflags +faststart " + out));
    return out;
  }();
  return p;
}

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

// A child process running `bash -c cmd`, killed (its whole group) at scope exit.
struct Background {
  pid_t pid = -1;
  explicit Background(const std::string& cmd) {
    pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      ::execl("/bin/bash", "bash", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~Background() {
    if (pid > 0) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

bool wait_for_port(int port, double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

struct Drained {
  std::vector<cv::Mat> frames;
  Status end;
  CaptureStats stats;
  bool ended = false;
};

Drained drain(const std::string& source, const VideoSourceOptions& o, double limit_s) {
  Drained d;
  auto src = VideoSource::open(source, o);
  if (!src.ok()) {
    d.end = src.status();
    d.ended = true;
    return d;
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit_s);
  VideoFrame f;
  while (std::chrono::steady_clock::now() < until) {
    const NextResult r = (*src)->next(f, 100);
    if (r == NextResult::kFrame) d.frames.push_back(f.bgr.clone());
    if (r == NextResult::kEnd) { d.ended = true; break; }
  }
  d.end = (*src)->end_status();
  d.stats = (*src)->stats();
  return d;
}

double mean_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size()) return 1e9;
  return cv::norm(a, b, cv::NORM_L1) / (a.total() * a.channels());
}

// Fault 6: the display rotation applied equals what ffmpeg shows.
TEST(VideoFaults, RotationMetadataIsAppliedAsFfmpegShowsIt) {
  const std::string base = base_clip();
  for (int rotate : {90, 270, 180}) {
    const std::string clip = dir() + "/rot" + std::to_string(rotate) + ".mp4";
    const std::string ref = dir() + "/ref" + std::to_string(rotate) + ".png";
    // ffmpeg 5.1 has no -display_rotation; its mov muxer turns the "rotate"
    // tag into the track's display matrix, as a phone writes it.
    ASSERT_TRUE(sh("ffmpeg -nostdin -v error -y -i " + base + " -c copy -metadata:s:v:0 rotate=" +
                   std::to_string(rotate) + " " + clip));
    ASSERT_TRUE(sh("ffmpeg -nostdin -v error -y -i " + clip + " -frames:v 1 " + ref));  // ffmpeg autorotates
    const cv::Mat expected = cv::imread(ref);
    ASSERT_FALSE(expected.empty());
    auto src = VideoSource::open(clip);
    ASSERT_TRUE(src.ok()) << src.status().to_string();
    EXPECT_EQ((*src)->size(), expected.size()) << "rotate " << rotate;
    VideoFrame f;
    ASSERT_EQ((*src)->next(f, 5000), NextResult::kFrame);
    EXPECT_EQ(f.bgr.size(), expected.size()) << "rotate " << rotate;
    EXPECT_LT(mean_abs_diff(f.bgr, expected), 4.0) << "rotate " << rotate << ": not the picture ffmpeg shows";
  }
}

// The same rotation for a phone clip served over HTTP (network streams are
// read by NetworkReader, which applies the display matrix itself).
TEST(VideoFaults, RotationMetadataIsAppliedToHttpStreams) {
  const std::string www = dir() + "/www_rot";
  fs::create_directories(www);
  const std::string clip = www + "/rot90.mp4", ref = dir() + "/ref_http90.png";
  // The index first (faststart): python's http.server does not honour Range.
  ASSERT_TRUE(sh("ffmpeg -nostdin -v error -y -i " + base_clip() +
                 " -c copy -metadata:s:v:0 rotate=90 -movflags +faststart " + clip));
  ASSERT_TRUE(sh("ffmpeg -nostdin -v error -y -i " + clip + " -frames:v 1 " + ref));
  const cv::Mat expected = cv::imread(ref);
  ASSERT_FALSE(expected.empty());
  const int port = free_port();
  Background server("exec /usr/bin/python3 -m http.server " + std::to_string(port) + " --bind 127.0.0.1 --directory " +
                    www + " >/dev/null 2>&1");
  ASSERT_TRUE(wait_for_port(port, 10));
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/rot90.mp4";
  ASSERT_TRUE(sh("for i in $(seq 50); do ffprobe -v quiet " + url + " && exit 0; sleep 0.2; done; exit 1"));
  VideoSourceOptions o;
  o.queue_frames = 64;
  auto src = VideoSource::open(url, o);
  ASSERT_TRUE(src.ok()) << src.status().to_string();
  EXPECT_EQ((*src)->size(), expected.size());
  VideoFrame f;
  ASSERT_EQ((*src)->next(f, 5000), NextResult::kFrame);
  EXPECT_EQ(f.bgr.size(), expected.size());
  EXPECT_LT(mean_abs_diff(f.bgr, expected), 4.0) << "not the picture ffmpeg shows";
}

// Fault 7: a finite file served over HTTP ends the run after one complete
// read, as a file does (it was replayed ~69 times a minute).
TEST(VideoFaults, FiniteHttpFileEndsAfterOneCompleteRead) {
  const std::string www = dir() + "/www";
  fs::create_directories(www);
  // MPEG-4 part 2 needs its headers in band in a transport stream: encode, do not copy.
  ASSERT_TRUE(sh("ffmpeg -nostdin -v error -y -i " + base_clip() + " -c:v mpeg4 -q:v 2 -f mpegts " + www + "/clip.ts"));
  const int port = free_port();
  Background server("exec /usr/bin/python3 -m http.server " + std::to_string(port) + " --bind 127.0.0.1 --directory " +
                    www + " >/dev/null 2>&1");
  ASSERT_TRUE(wait_for_port(port, 10)) << "python http.server did not start";
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/clip.ts";
  // Our server, serving our file (on a shared machine another process could
  // have taken the port between free_port() and the server's bind).
  ASSERT_TRUE(sh("for i in $(seq 50); do ffprobe -v quiet " + url + " && exit 0; sleep 0.2; done; exit 1"))
      << "the clip is not served at " << url;
  VideoSourceOptions o;
  o.reconnect_attempts = 5;
  o.backoff_s = 0.1;
  const Drained d = drain(url, o, 30);
  ASSERT_TRUE(d.ended) << "still running after 30 s: the file is being replayed";
  EXPECT_TRUE(d.end.ok()) << d.end.to_string();
  EXPECT_EQ(d.stats.reconnects, 0);
  // 2 s at 10 fps, decoded once. A network source keeps only the newest
  // frames, so a slow consumer may be handed fewer.
  EXPECT_EQ(d.stats.decoded, 20);
  EXPECT_GT(d.frames.size(), 0u);
  EXPECT_LE(d.frames.size(), 20u);
}

// Fault 7, the cut connection: a file served over HTTP whose connection is
// cut in the middle. The server announces the whole length and cuts the
// first `cuts` responses that carry the file's middle byte there, in one of
// three ways (`mode`):
//  - "close": it closes the connection (FIN); FFmpeg logs that the response
//    ended before its Content-Length;
//  - "rst": it resets the connection (SO_LINGER {1, 0}, then close): FFmpeg
//    reads ECONNRESET and logs nothing;
//  - "stall": it keeps the connection open and sends nothing more;
//  - "chunked": no Content-Length (chunked transfer), and the cut is a
//    clean end of the body: only the container's declared duration shows
//    that frames are missing.
// With `ranges` it honours HTTP Range requests (Accept-Ranges: bytes), so the
// reader can seek; without, every response is the whole file (200). Every
// request is appended to `log` ("GET <first byte>"), each connection on its
// own thread. The file is `ext` ("ts": MPEG-TS, "mp4": MP4 with its index
// first, as a web server would stream it).
struct CuttingServer {
  std::string url, file, log;
  std::unique_ptr<Background> bg;
  CuttingServer(const std::string& name, int cuts, const std::string& mode = "close", bool ranges = false,
                const std::string& ext = "ts") {
    const std::string www = dir() + "/" + name;
    fs::create_directories(www);
    file = www + "/clip." + ext;
    log = www + "/requests.log";
    std::ofstream(log, std::ios::trunc);  // a repeated test reuses the folder
    // MPEG-4 part 2 needs its headers in band in a transport stream: encode, do not copy.
    // The MP4 is longer and larger (8 s, 640x384, a keyframe every 5
    // frames), so that resuming at the keyframe before the cut is a seek well
    // past what the reopened connection reads while probing: a ranged GET.
    if (ext == "ts")
      EXPECT_TRUE(sh("ffmpeg -nostdin -v error -y -i " + base_clip() + " -c:v mpeg4 -q:v 2 -f mpegts " + file));
    else  // "mov": its index (moov) after the frames, as many cameras write it
      EXPECT_TRUE(sh("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=640x384:rate=10 -t 8 -c:v mpeg4 -q:v 2 "
                     "-g 5 " + std::string(ext == "mp4" ? "-movflags +faststart " : "") + file));
    if (ext == "mov") {  // and 100 kB after that (a "free" box), more than FFmpeg reads ahead
      std::ofstream out(file, std::ios::binary | std::ios::app);
      const uint32_t n = 100 * 1024;
      const char head[8] = {char(n >> 24), char((n >> 16) & 255), char((n >> 8) & 255), char(n & 255), 'f', 'r', 'e', 'e'};
      out.write(head, 8);
      out << std::string(n - 8, '\0');
    }
    std::ofstream(www + "/server.py") << R"(import socket, struct, sys, threading, time
port, data, cuts, mode, ranges, log = int(sys.argv[1]), open(sys.argv[2], 'rb').read(), int(sys.argv[3]), sys.argv[4], sys.argv[5] == '1', sys.argv[6]
mid = len(data) // 2
lock = threading.Lock()
state = {'cuts': 0}
def serve(c):
    try:
        req = b''
        while b'\r\n\r\n' not in req:
            b = c.recv(4096)
            if not b:
                return
            req += b
        lines = req.split(b'\r\n\r\n')[0].decode('latin-1').split('\r\n')
        method = lines[0].split()[0]
        hdr = {k.strip().lower(): v.strip() for k, v in (l.split(':', 1) for l in lines[1:] if ':' in l)}
        start, end = 0, len(data)
        rng = hdr.get('range') if ranges else None
        if rng and rng.startswith('bytes='):
            a, _, b = rng[6:].partition('-')
            start = int(a) if a else 0
            end = min(int(b) + 1, len(data)) if b else len(data)
        else:
            rng = None
        with lock:
            open(log, 'a').write('%s %d\n' % (method, start))
            cut = method == 'GET' and start <= mid < end and state['cuts'] < cuts
            if cut:
                state['cuts'] += 1
        if start >= len(data):
            c.sendall(b'HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%d\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' % len(data))
            return
        head = 'HTTP/1.1 206 Partial Content\r\n' if rng else 'HTTP/1.1 200 OK\r\n'
        head += 'Content-Type: application/octet-stream\r\nConnection: close\r\n'
        head += 'Transfer-Encoding: chunked\r\n' if mode == 'chunked' else 'Content-Length: %d\r\n' % (end - start)
        if ranges:
            head += 'Accept-Ranges: bytes\r\n'
        if rng:
            head += 'Content-Range: bytes %d-%d/%d\r\n' % (start, end - 1, len(data))
        c.sendall((head + '\r\n').encode())
        if method != 'GET':
            return
        body = data[start:mid] if cut else data[start:end]
        if mode == 'chunked':  # no length announced; a cut ends the body cleanly
            for i in range(0, len(body), 4096):
                c.sendall(b'%x\r\n%s\r\n' % (len(body[i:i + 4096]), body[i:i + 4096]))
            c.sendall(b'0\r\n\r\n')
        else:
            c.sendall(body)
        if cut and mode == 'rst':
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        if cut and mode == 'stall':
            time.sleep(3600)
    except OSError:
        pass
    finally:
        c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', port))
s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
)";
    const int port = free_port();
    bg = std::make_unique<Background>("exec /usr/bin/python3 " + www + "/server.py " + std::to_string(port) + " " +
                                      file + " " + std::to_string(cuts) + " " + mode + " " + (ranges ? "1" : "0") +
                                      " " + log);
    EXPECT_TRUE(wait_for_port(port, 10)) << "the cutting server did not start";
    url = "http://127.0.0.1:" + std::to_string(port) + "/clip." + ext;
  }
  // The first bytes of the GETs served so far, in order.
  std::vector<long> gets() const {
    std::vector<long> out;
    std::ifstream in(log);
    std::string method;
    long start = 0;
    while (in >> method >> start)
      if (method == "GET") out.push_back(start);
    return out;
  }
};

// Asserts that `frames` are the file's first frames, in order, each once.
void expect_file_frames(const std::vector<cv::Mat>& frames, const std::string& file) {
  cv::VideoCapture local(file, cv::CAP_FFMPEG);
  ASSERT_TRUE(local.isOpened());
  for (size_t i = 0; i < frames.size(); ++i) {
    cv::Mat want;
    ASSERT_TRUE(local.read(want)) << "more frames than the file has: " << i;
    EXPECT_LT(mean_abs_diff(frames[i], want), 1.0) << "frame " << i << " is not the file's frame " << i;
  }
}

// Frames of an uncut read of the file.
long count_frames(const std::string& file) {
  cv::VideoCapture local(file, cv::CAP_FFMPEG);
  long n = 0;
  cv::Mat m;
  while (local.read(m)) ++n;
  return n;
}

TEST(VideoFaults, HttpFileCutMidTransferReconnectsAndResumes) {
  CuttingServer server("cut_once", 1);
  VideoSourceOptions o;
  o.reconnect_attempts = 3;
  o.backoff_s = 0.1;
  o.queue_frames = 64;  // keep every frame: the test compares them all
  const Drained d = drain(server.url, o, 30);
  ASSERT_TRUE(d.ended) << "still running after 30 s";
  EXPECT_TRUE(d.end.ok()) << d.end.to_string();
  EXPECT_EQ(d.stats.reconnects, 1) << "the cut should have been reconnected once";
  // The whole clip, once: the frames before the cut are not replayed.
  EXPECT_EQ(d.stats.decoded, 20);
  ASSERT_EQ(d.frames.size(), 20u);
  expect_file_frames(d.frames, server.file);
}

// A connection cut every time uses up the tries (counted over the run) and
// ends in an error naming the cut, after the frames that did arrive, each once.
TEST(VideoFaults, HttpFileCutEveryTimeIsAnErrorAfterTheTries) {
  CuttingServer server("cut_always", 1000);
  VideoSourceOptions o;
  o.reconnect_attempts = 2;
  o.backoff_s = 0.1;
  o.queue_frames = 64;
  const auto t0 = std::chrono::steady_clock::now();
  const Drained d = drain(server.url, o, 30);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(d.ended) << "still running after 30 s";
  EXPECT_LT(s, 15.0);
  EXPECT_FALSE(d.end.ok());
  EXPECT_NE(d.end.message().find("connection was cut"), std::string::npos) << d.end.message();
  EXPECT_NE(d.end.message().find("after 2 tries"), std::string::npos) << d.end.message();
  EXPECT_EQ(d.stats.reconnects, 2);
  EXPECT_GT(d.stats.decoded, 0);
  EXPECT_LT(d.stats.decoded, 20);
  EXPECT_EQ(d.frames.size(), static_cast<size_t>(d.stats.decoded));

  // With no tries allowed, the cut is still an error (frames are missing).
  o.reconnect_attempts = 0;
  const Drained none = drain(server.url, o, 30);
  ASSERT_TRUE(none.ended);
  EXPECT_FALSE(none.end.ok());
  EXPECT_NE(none.end.message().find("connection was cut"), std::string::npos) << none.end.message();
  EXPECT_EQ(none.stats.reconnects, 0);
}

// The same cut as a reset (RST): FFmpeg reads ECONNRESET and logs nothing,
// so the reader tells the cut from the I/O error and the bytes missing from
// the Content-Length. The server here cannot seek: the resource is decoded
// again from its start and the frames already delivered are skipped.
TEST(VideoFaults, HttpFileResetMidTransferReconnectsAndResumes) {
  CuttingServer server("rst_once", 1, "rst");
  VideoSourceOptions o;
  o.reconnect_attempts = 3;
  o.backoff_s = 0.1;
  o.queue_frames = 64;  // keep every frame: the test compares them all
  const Drained d = drain(server.url, o, 30);
  ASSERT_TRUE(d.ended) << "still running after 30 s";
  EXPECT_TRUE(d.end.ok()) << d.end.to_string();
  EXPECT_EQ(d.stats.reconnects, 1) << "the reset should have been reconnected once";
  EXPECT_EQ(server.gets().size(), 2u) << "one cut GET, one whole";
  const long uncut = count_frames(server.file);
  EXPECT_EQ(uncut, 20);
  EXPECT_EQ(d.stats.decoded, uncut) << "as many frames as an uncut read";
  // No Range: the frames before the cut were decoded again, not delivered.
  EXPECT_GT(d.stats.redecoded, 0);
  EXPECT_LT(d.stats.redecoded, uncut);
  ASSERT_EQ(static_cast<long>(d.frames.size()), uncut);
  expect_file_frames(d.frames, server.file);
}

// A reset on a server that honours Range: the reader resumes by seeking to
// the keyframe at or before the last frame it delivered (a ranged GET past
// the start), and still delivers each frame once.
TEST(VideoFaults, HttpFileResetResumesBySeekingWhenTheServerCanSeek) {
  CuttingServer server("rst_seek", 1, "rst", /*ranges=*/true, "mp4");
  VideoSourceOptions o;
  o.reconnect_attempts = 3;
  o.backoff_s = 0.1;
  o.queue_frames = 128;
  const Drained d = drain(server.url, o, 30);
  ASSERT_TRUE(d.ended) << "still running after 30 s";
  EXPECT_TRUE(d.end.ok()) << d.end.to_string();
  EXPECT_EQ(d.stats.reconnects, 1);
  const long uncut = count_frames(server.file);
  EXPECT_EQ(uncut, 80);
  EXPECT_EQ(d.stats.decoded, uncut);
  ASSERT_EQ(static_cast<long>(d.frames.size()), uncut);
  expect_file_frames(d.frames, server.file);
  // Resumed by a seek: only the frames from the keyframe before the resume
  // point were decoded again (a keyframe every 5 frames: at most 5, the last
  // delivered included), not the ~40 before the cut. (FFmpeg may serve a
  // short forward seek by reading on, so the GETs do not show it.)
  EXPECT_LE(d.stats.redecoded, 5);

  // The same server, uncut: one read, no reconnect, every frame.
  CuttingServer whole("whole_seek", 0, "rst", /*ranges=*/true, "mp4");
  const Drained w = drain(whole.url, o, 30);
  ASSERT_TRUE(w.ended);
  EXPECT_TRUE(w.end.ok()) << w.end.to_string();
  EXPECT_EQ(w.stats.reconnects, 0);
  EXPECT_EQ(w.stats.redecoded, 0);
  EXPECT_EQ(w.stats.decoded, uncut);

  // Uncut, with the index after the frames: the demuxer ends at its last
  // frame, before the last byte, and that is the end, not a cut.
  CuttingServer tail_index("whole_mov", 0, "rst", /*ranges=*/true, "mov");
  const Drained t = drain(tail_index.url, o, 30);
  ASSERT_TRUE(t.ended);
  EXPECT_TRUE(t.end.ok()) << t.end.to_string();
  EXPECT_EQ(t.stats.reconnects, 0);
  EXPECT_EQ(t.stats.decoded, uncut);
}

// Every connection reset: the tries run out (counted over the run) and the
// run ends in an error naming the source and the cut, never a silent
// "complete"; the frames that did arrive came each once, in order.
TEST(VideoFaults, HttpFileResetEveryTimeIsAnErrorAfterTheTries) {
  CuttingServer server("rst_always", 1000, "rst");
  VideoSourceOptions o;
  o.reconnect_attempts = 2;
  o.backoff_s = 0.1;
  o.queue_frames = 64;
  const Drained d = drain(server.url, o, 30);
  ASSERT_TRUE(d.ended) << "still running after 30 s";
  ASSERT_FALSE(d.end.ok()) << "a file reset every time must not end as complete";
  EXPECT_NE(d.end.message().find(server.url), std::string::npos) << d.end.message();
  EXPECT_NE(d.end.message().find("connection was cut"), std::string::npos) << d.end.message();
  EXPECT_NE(d.end.message().find("after 2 tries"), std::string::npos) << d.end.message();
  EXPECT_EQ(d.stats.reconnects, 2);
  EXPECT_GT(d.stats.decoded, 0);
  EXPECT_LT(d.stats.decoded, 20);
  EXPECT_EQ(d.frames.size(), static_cast<size_t>(d.stats.decoded));
  expect_file_frames(d.frames, server.file);
}

// A server that stops sending mid-file, keeping the connection open: after
// the read timeout that is a cut too, reconnected and resumed.
TEST(VideoFaults, HttpFileStalledMidTransferReconnectsAfterTheTimeout) {
  CuttingServer server("stall_once", 1, "stall");
  VideoSourceOptions o;
  o.reconnect_attempts = 3;
  o.backoff_s = 0.1;
  o.timeout_ms = 1000;
  o.queue_frames = 64;
  const Drained d = drain(server.url, o, 30);
  ASSERT_TRUE(d.ended) << "still running after 30 s";
  EXPECT_TRUE(d.end.ok()) << d.end.to_string();
  EXPECT_EQ(d.stats.reconnects, 1);
  EXPECT_EQ(d.stats.decoded, 20);
  ASSERT_EQ(d.frames.size(), 20u);
  expect_file_frames(d.frames, server.file);
}

// No length announced and a clean end halfway (a chunked response that
// ends early): no I/O error and no byte count to compare, but the MP4
// declares its duration, and the last frame read falls short of it.
TEST(VideoFaults, HttpFileShortOfItsDeclaredDurationIsACut) {
  CuttingServer server("chunked_once", 1, "chunked", /*ranges=*/false, "mp4");
  VideoSourceOptions o;
  o.reconnect_attempts = 3;
  o.backoff_s = 0.1;
  o.queue_frames = 128;
  const Drained d = drain(server.url, o, 30);
  ASSERT_TRUE(d.ended) << "still running after 30 s";
  EXPECT_TRUE(d.end.ok()) << d.end.to_string();
  EXPECT_EQ(d.stats.reconnects, 1);
  const long uncut = count_frames(server.file);
  EXPECT_EQ(d.stats.decoded, uncut);
  ASSERT_EQ(static_cast<long>(d.frames.size()), uncut);
  expect_file_frames(d.frames, server.file);

  // Uncut, the same chunked server: a complete read, no reconnect.
  CuttingServer whole("chunked_whole", 0, "chunked", /*ranges=*/false, "mp4");
  const Drained w = drain(whole.url, o, 30);
  ASSERT_TRUE(w.ended);
  EXPECT_TRUE(w.end.ok()) << w.end.to_string();
  EXPECT_EQ(w.stats.reconnects, 0);
  EXPECT_EQ(w.stats.decoded, uncut);
}

// Fault 7: a live stream that keeps dropping uses up its reconnect tries
// over the whole run, even though each reconnect succeeds.
TEST(VideoFaults, ReconnectTriesAreCountedAcrossTheRun) {
  const int port = free_port();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/live.ts";
  // Six short live sessions, one after another (ffmpeg -listen serves one
  // client and exits; no Content-Length: a live stream).
  Background server("for i in 1 2 3 4 5 6; do ffmpeg -nostdin -v error -re -i " + base_clip() +
                    " -t 1 -c:v mpeg4 -q:v 2 -f mpegts -listen 1 " + url + "; done");
  // No probe connection here: the server serves exactly one client per session.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  VideoSourceOptions o;
  o.reconnect_attempts = 2;
  o.backoff_s = 0.3;
  o.max_backoff_s = 0.3;
  const Drained d = drain(url, o, 40);
  ASSERT_TRUE(d.ended);
  EXPECT_FALSE(d.end.ok()) << "the tries should have run out";
  EXPECT_NE(d.end.message().find("after 2 tries"), std::string::npos) << d.end.message();
  EXPECT_LE(d.stats.reconnects, 2);
  EXPECT_GT(d.frames.size(), 5u);
}

// Fault 17: a source that opens but yields no frame is an error.
TEST(VideoFaults, FileThatYieldsNoFrameIsAnError) {
  // The header (moov, first thanks to faststart) is intact, the frames are gone.
  std::ifstream in(base_clip(), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const size_t mdat = bytes.find("mdat");
  ASSERT_NE(mdat, std::string::npos);
  const std::string broken = dir() + "/no_frames.mp4";
  std::ofstream(broken, std::ios::binary) << bytes.substr(0, mdat + 4);
  const Drained d = drain(broken, {}, 20);
  ASSERT_TRUE(d.ended);
  EXPECT_TRUE(d.frames.empty());
  ASSERT_FALSE(d.end.ok());
  EXPECT_NE(d.end.message().find("yielded no frame"), std::string::npos) << d.end.message();

  // Random bytes with a video name: an error too, whichever step notices.
  const std::string noise = dir() + "/noise.mp4";
  std::ofstream(noise, std::ios::binary) << std::string(4096, '\x5a');
  const Drained n = drain(noise, {}, 20);
  ASSERT_TRUE(n.ended);
  EXPECT_FALSE(n.end.ok());
}

}  // namespace
}  // namespace facerec
