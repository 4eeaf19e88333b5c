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
// cut in the middle (the server announces the whole length, sends half and
// closes). FFmpeg reports the response ended before its Content-Length
// (video::watch_premature_ends), so the source reconnects, counts the try,
// and resumes after the frames it already delivered. The server here cuts
// the first `cuts` GETs (the first is OpenCV's open; the length probe is
// another) and serves the whole file after that.
struct CuttingServer {
  std::string url, file;
  std::unique_ptr<Background> bg;
  CuttingServer(const std::string& name, int cuts) {
    const std::string www = dir() + "/" + name;
    fs::create_directories(www);
    file = www + "/clip.ts";
    EXPECT_TRUE(sh("ffmpeg -nostdin -v error -y -i " + base_clip() + " -c:v mpeg4 -q:v 2 -f mpegts " + file));
    std::ofstream(www + "/server.py") << R"(import http.server, sys
data = open(sys.argv[2], 'rb').read()
cuts = int(sys.argv[3])
gets = [0]
class H(http.server.BaseHTTPRequestHandler):
    def head(self):
        self.send_response(200)
        self.send_header('Content-Type', 'video/mp2t')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
    def do_HEAD(self):
        self.head()
    def do_GET(self):
        gets[0] += 1
        self.head()
        try:
            self.wfile.write(data[:len(data) // 2] if gets[0] <= cuts else data)
            self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True
    def log_message(self, *a):
        pass
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
)";
    const int port = free_port();
    bg = std::make_unique<Background>("exec /usr/bin/python3 " + www + "/server.py " + std::to_string(port) + " " +
                                      file + " " + std::to_string(cuts));
    EXPECT_TRUE(wait_for_port(port, 10)) << "the cutting server did not start";
    url = "http://127.0.0.1:" + std::to_string(port) + "/clip.ts";
  }
};

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
  cv::VideoCapture local(server.file, cv::CAP_FFMPEG);
  ASSERT_TRUE(local.isOpened());
  for (size_t i = 0; i < d.frames.size(); ++i) {
    cv::Mat want;
    ASSERT_TRUE(local.read(want)) << i;
    EXPECT_LT(mean_abs_diff(d.frames[i], want), 1.0) << "frame " << i << " is not the file's frame " << i;
  }
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
