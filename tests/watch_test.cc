// facerec watch end to end on the real Hamilton clip: the right people named
// and nobody else, the same people over RTSP, a saved video that plays (also
// after Ctrl-C), and clear errors. Light models (yunet + mobilefacenet_128)
// keep the suite fast; the threshold is the manifest's measured one.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/videoio.hpp>

#include "test_support.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace facerec {
namespace {

// Ground truth for short_hamilton_clip.mp4 (275 frames), written down by
// watching it: frames extracted with ffmpeg every 10th frame (and a few at
// full size) and looked at, cut positions from ffmpeg's scene detection
// (select='gt(scene,0.2)' fires at frames 20, 82 and 211).
//   0-19    wide stage shot: Lin-Manuel Miranda standing (face ~25 px) and
//           Alex Lacamoire at the piano, left (face ~20 px)
//   20-81   close-up of Alex Lacamoire in profile, blurred audience behind
//   82-210  Lin-Manuel Miranda, medium shot, mostly frontal
//   211-274 audience: Barack Obama (three-quarter view), Michelle Obama,
//           Marian Robinson and others who are not enrolled
struct Appearance {
  const char* identity;
  long first, last;  // frame indices, inclusive
};
constexpr Appearance kGroundTruth[] = {{"Lin-Manuel Miranda", 0, 19},
                                       {"Alex Lacamoire", 0, 19},
                                       {"Alex Lacamoire", 20, 81},
                                       {"Lin-Manuel Miranda", 82, 210},
                                       {"Barack Obama", 211, 274}};
// Who must be named, and where. Alex Lacamoire is allowed but not required:
// he is only ever tiny or in full profile, which no embedder here names.
constexpr Appearance kMustName[] = {{"Lin-Manuel Miranda", 82, 210}, {"Barack Obama", 211, 274}};
constexpr long kClipFrames = 275;

std::string clip() { return testing::shared_dir() + "/data/video/short_hamilton_clip.mp4"; }

const std::vector<std::string> kLight = {"--detector", "yunet", "--embedder", "mobilefacenet_128"};

// The gallery of the three reference stills, enrolled once per test run.
const std::string& gallery() {
  static const std::string db = [] {
    const fs::path root = testing::temp_dir("watch_people");
    const fs::path video = fs::path(testing::shared_dir()) / "data" / "video";
    const std::map<std::string, std::string> stills = {{"Lin-Manuel Miranda", "ref_lin-manuel-miranda.png"},
                                                       {"Alex Lacamoire", "ref_alex-lacamoire.png"},
                                                       {"Barack Obama", "ref_obama.jpg"}};
    for (const auto& [name, file] : stills) {
      fs::create_directories(root / "people" / name);
      fs::copy_file(video / file, root / "people" / name / file);
    }
    const std::string path = (root / "light.db").string();
    std::vector<std::string> args = {"enroll", (root / "people").string(), "--db", path};
    args.insert(args.end(), kLight.begin(), kLight.end());
    const auto r = testing::run_cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return path;
  }();
  return db;
}

std::vector<std::string> watch_args(const std::string& source, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"watch", "--source", source, "--db", gallery(), "--json"};
  a.insert(a.end(), kLight.begin(), kLight.end());
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

std::vector<json> events(const std::string& out) {
  std::vector<json> v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) v.push_back(json::parse(line));
  return v;
}

json summary_of(const std::vector<json>& ev) {
  for (const auto& e : ev)
    if (e["event"] == "summary") return e;
  ADD_FAILURE() << "no summary event";
  return json::object();
}

std::set<std::string> named(const std::vector<json>& ev) {
  std::set<std::string> s;
  for (const auto& e : ev)
    if (e["event"] == "identified") s.insert(e["identity"].get<std::string>());
  return s;
}

bool within(const std::string& who, long first, long last) {
  for (const auto& a : kGroundTruth)
    if (who == a.identity && first >= a.first && last <= a.last) return true;
  return false;
}

// Checks every naming against the ground truth: an `identified` event only
// in a frame where that person is on screen, and every track that ends with
// a name lying wholly inside one of that person's appearances.
void check_against_ground_truth(const std::vector<json>& ev) {
  std::map<int, long> start_frame;
  for (const auto& e : ev) {
    if (e["event"] == "track_start") start_frame[e["track"].get<int>()] = e["frame"].get<long>();
    if (e["event"] == "identified") {
      const std::string who = e["identity"];
      const long f = e["frame"];
      EXPECT_TRUE(within(who, f, f)) << who << " named at frame " << f << ", where they are not on screen";
      EXPECT_GE(e["similarity"].get<double>(), 0.0);
      ASSERT_TRUE(e.contains("quality")) << e.dump();
      // The fallback quality (these models have no magnitude) is 0..1; a profile
      // view scores 0 on its pose term and may still add to the vote.
      EXPECT_GE(e["quality"].get<double>(), 0.0);
      EXPECT_LE(e["quality"].get<double>(), 1.0);
    }
    if (e["event"] == "track_end" && !e["identity"].is_null()) {
      const int id = e["track"];
      ASSERT_TRUE(start_frame.count(id)) << "track_end without track_start: " << id;
      EXPECT_TRUE(within(e["identity"], start_frame[id], e["frame"].get<long>()))
          << "track " << id << " named " << e["identity"] << " spans frames " << start_frame[id] << "-" << e["frame"];
    }
  }
}

void check_must_name(const std::vector<json>& ev, const char* how) {
  for (const auto& m : kMustName) {
    bool found = false;
    for (const auto& e : ev)
      if (e["event"] == "identified" && e["identity"] == m.identity && e["frame"] >= m.first && e["frame"] <= m.last)
        found = true;
    EXPECT_TRUE(found) << how << ": " << m.identity << " was not named within frames " << m.first << "-" << m.last;
  }
}

// Frames in a video file, counted by decoding (the container's frame count
// may be missing or wrong, e.g. after an interrupted write).
long count_frames(const std::string& path) {
  cv::VideoCapture cap(path);
  if (!cap.isOpened()) return -1;
  long n = 0;
  cv::Mat m;
  while (cap.read(m) && !m.empty()) ++n;
  return n;
}

// A child process with optional environment changes; stdout/stderr to files.
struct Child {
  pid_t pid = -1;
  std::string out, err;
};
Child spawn(const std::vector<std::string>& argv_in, const std::map<std::string, std::string>& env = {},
            const std::vector<std::string>& unset = {}) {
  Child c;
  const std::string dir = testing::temp_dir("spawn");
  c.out = dir + "/out";
  c.err = dir + "/err";
  c.pid = fork();
  if (c.pid == 0) {
    if (!std::freopen(c.out.c_str(), "w", stdout) || !std::freopen(c.err.c_str(), "w", stderr)) _exit(126);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    for (const auto& k : unset) unsetenv(k.c_str());
    std::vector<std::string> copy = argv_in;
    std::vector<char*> argv;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  return c;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Waits up to timeout_s; kills the child (SIGKILL) past it. Returns the exit
// code, or -1 on timeout.
int wait_child(pid_t pid, double timeout_s) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  int status = 0;
  while (std::chrono::steady_clock::now() < end) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

std::vector<std::string> with_bin(std::vector<std::string> args) {
  args.insert(args.begin(), testing::facerec_bin());
  return args;
}

int free_port() {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

// The file run, shared by the tests that compare against it.
struct FileRun {
  testing::CommandResult result;
  std::vector<json> events;
  std::string saved;
};
const FileRun& file_run() {
  static const FileRun run = [] {
    FileRun r;
    r.saved = testing::temp_dir("watch_save") + "/out.mp4";
    const auto t0 = std::chrono::steady_clock::now();
    r.result = testing::run_cli(watch_args(clip(), {"--save", r.saved}));
    std::printf("watch on the clip (with --save): %.1f s\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (r.result.exit_code == 0) r.events = events(r.result.out);
    return r;
  }();
  return run;
}

TEST(Watch, NamesTheRightPeopleOnTheHamiltonClip) {
  FACEREC_REQUIRE_SHARED();
  const FileRun& r = file_run();
  ASSERT_EQ(r.result.exit_code, 0) << r.result.err;
  check_against_ground_truth(r.events);
  check_must_name(r.events, "file");
  const json s = summary_of(r.events);
  EXPECT_EQ(s["frames"], kClipFrames);  // files: every frame, none dropped
  EXPECT_EQ(s["frames_dropped"], 0);
  // Embedding cost follows tracks, not frames.
  EXPECT_GT(s["faces_per_frame"].get<double>(), 1.0);
  EXPECT_LT(s["embeddings_per_frame"].get<double>(), 0.5 * s["faces_per_frame"].get<double>());
  EXPECT_TRUE(s["people"].contains("Lin-Manuel Miranda"));
  // Every started track ends, and every event names a track that started.
  std::set<int> started, ended;
  for (const auto& e : r.events) {
    if (e["event"] == "track_start") started.insert(e["track"].get<int>());
    if (e["event"] == "track_end") ended.insert(e["track"].get<int>());
  }
  EXPECT_EQ(started, ended);
}

// Issue 9: `watch` honours score_threshold from a --config file exactly as
// it does --det-score (it once ignored the file's).
TEST(Watch, ConfigFileScoreThresholdIsHonouredLikeTheFlag) {
  FACEREC_REQUIRE_SHARED();
  const FileRun& base = file_run();
  ASSERT_EQ(base.result.exit_code, 0) << base.result.err;
  const std::string cfg = testing::temp_dir("watch_config") + "/c.json";
  std::ofstream(cfg) << R"({"score_threshold": 0.9})";
  const auto by_file = testing::run_cli(watch_args(clip(), {"--config", cfg}));
  const auto by_flag = testing::run_cli(watch_args(clip(), {"--det-score", "0.9"}));
  ASSERT_EQ(by_file.exit_code, 0) << by_file.err;
  ASSERT_EQ(by_flag.exit_code, 0) << by_flag.err;
  const json d = summary_of(base.events), f = summary_of(events(by_file.out)), g = summary_of(events(by_flag.out));
  // The default keeps the tracker's weak detections (0.2); 0.9 keeps fewer.
  EXPECT_LT(f["faces_per_frame"].get<double>(), d["faces_per_frame"].get<double>());
  EXPECT_EQ(f["faces_per_frame"], g["faces_per_frame"]);
  EXPECT_EQ(named(events(by_file.out)), named(events(by_flag.out)));
}

TEST(Watch, SavedVideoHasEveryFrame) {
  FACEREC_REQUIRE_SHARED();
  const FileRun& r = file_run();
  ASSERT_EQ(r.result.exit_code, 0) << r.result.err;
  EXPECT_EQ(count_frames(r.saved), kClipFrames);
}

TEST(Watch, SigintClosesTheSavedVideoSoItPlays) {
  FACEREC_REQUIRE_SHARED();
  gallery();
  const std::string out = testing::temp_dir("watch_sigint") + "/cut.mp4";
  // --realtime keeps file pace (9 s), so the interrupt lands mid-run.
  Child c = spawn(with_bin(watch_args(clip(), {"--save", out, "--realtime"})));
  std::this_thread::sleep_for(std::chrono::seconds(4));
  kill(c.pid, SIGINT);
  const int rc = wait_child(c.pid, 30);
  ASSERT_EQ(rc, 130) << slurp(c.err);
  const auto ev = events(slurp(c.out));
  const json s = summary_of(ev);
  EXPECT_TRUE(s["interrupted"].get<bool>());
  const long frames = s["frames"];
  EXPECT_GT(frames, 0);
  EXPECT_LT(frames, kClipFrames);
  EXPECT_EQ(count_frames(out), frames);
  check_against_ground_truth(ev);
}

TEST(Watch, RtspStreamReportsTheSamePeopleAsTheFile) {
  FACEREC_REQUIRE_SHARED();
  const FileRun& r = file_run();
  ASSERT_EQ(r.result.exit_code, 0);
  // ffmpeg 5.1's RTSP muxer cannot listen (only its demuxer can), so the
  // roles are: facerec opens the RTSP URL in listen mode (FFmpeg's
  // rtsp_flags=listen, passed through OpenCV's capture options) and ffmpeg
  // publishes the clip to it at its real pace. What facerec receives is RTP
  // over RTSP, exactly as from a camera.
  const std::string url = "rtsp://127.0.0.1:" + std::to_string(free_port()) + "/live";
  Child w = spawn(with_bin(watch_args(url, {"--reconnect", "0"})),
                  {{"OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_flags;listen|rtsp_transport;tcp"}});
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // models load, then it listens
  Child ff = spawn({"ffmpeg", "-nostdin", "-v", "error", "-re", "-i", clip(), "-an", "-c", "copy", "-f", "rtsp",
                    "-rtsp_transport", "tcp", url});
  const int ff_rc = wait_child(ff.pid, 40);
  const int rc = wait_child(w.pid, 30);
  ASSERT_EQ(ff_rc, 0) << slurp(ff.err);
  ASSERT_EQ(rc, 0) << slurp(w.err);
  const auto ev = events(slurp(w.out));
  const json s = summary_of(ev);
  EXPECT_GT(s["frames"].get<long>(), kClipFrames / 2) << "a live source may drop frames, but not most of them";
  check_against_ground_truth(ev);
  EXPECT_EQ(named(ev), named(r.events));
}

TEST(Watch, DroppedHttpStreamIsReconnected) {
  FACEREC_REQUIRE_SHARED();
  gallery();
  // ffmpeg serves 3 s of the clip over HTTP (it listens for one client),
  // stops, and serves again a second later: the stream drops once and comes
  // back. After the second end nobody serves, the 3 tries run out, and
  // watch reports that clearly.
  const std::string url = "http://127.0.0.1:" + std::to_string(free_port()) + "/live.ts";
  const std::vector<std::string> serve = {"ffmpeg", "-nostdin", "-v", "error", "-re", "-i", clip(), "-t", "3",
                                          "-an", "-c", "copy", "-f", "mpegts", "-listen", "1", url};
  Child ff1 = spawn(serve);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  Child w = spawn(with_bin(watch_args(url, {"--reconnect", "3"})));
  wait_child(ff1.pid, 20);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Child ff2 = spawn(serve);
  wait_child(ff2.pid, 20);
  const int rc = wait_child(w.pid, 40);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(slurp(w.err).find("could not be reopened after 3 tries"), std::string::npos) << slurp(w.err);
  const json s = summary_of(events(slurp(w.out)));
  EXPECT_EQ(s["reconnects"], 1);
  EXPECT_GT(s["frames_decoded"].get<long>(), 120) << "frames from both connections";
}

TEST(Watch, ViewWithoutADisplayIsAClearErrorBeforeAnyWork) {
  const auto t0 = std::chrono::steady_clock::now();
  Child c = spawn(with_bin({"watch", "--source", "whatever.mp4", "--view"}), {}, {"DISPLAY", "WAYLAND_DISPLAY"});
  EXPECT_EQ(wait_child(c.pid, 30), 1);
  EXPECT_NE(slurp(c.err).find("--view needs a display"), std::string::npos) << slurp(c.err);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
}

TEST(Watch, UnopenableSourcesAreClearErrors) {
  FACEREC_REQUIRE_SHARED();
  auto r = testing::run_cli(watch_args("/nonexistent/clip.mp4"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no such video file"), std::string::npos) << r.err;
  r = testing::run_cli(watch_args("rtsp://127.0.0.1:9/none"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot open stream"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace facerec
