#include "network_reader.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libswscale/swscale.h>
}

#include "rotation.h"

namespace facerec::video {

namespace {

using Clock = std::chrono::steady_clock;

std::string av_error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

// Packets read once the input has reached its end or an error are held back
// until the end is judged: after a cut, the demuxer flushes what it had of
// the packet being received (mpegts hands out a partial PES), which must not
// be decoded into a damaged frame. Only the last few can be partial, so at
// most this many are held (an HLS playlist's pb reaches its end at once).
constexpr size_t kHeldPackets = 4;

}  // namespace

struct NetworkReader::State {
  std::string url;
  int timeout_ms = 10000;
  const std::atomic<bool>* stop = nullptr;
  Clock::time_point deadline;

  AVFormatContext* fmt = nullptr;
  AVCodecContext* dec = nullptr;
  SwsContext* sws = nullptr;
  AVPacket* pkt = nullptr;
  AVFrame* frame = nullptr;
  int vs = -1;

  // Declared by the first open.
  bool described = false;
  long long byte_size = -1;
  int64_t stream_duration = AV_NOPTS_VALUE;  // the video stream's, in its time base (not estimated from the bit rate)
  double fps = 0;
  cv::Size size;
  int rotation_cw = 0;

  // Over the whole run: the last frame delivered.
  int64_t last_pts = AV_NOPTS_VALUE;
  long delivered = 0;
  long redecoded = 0;  // frames decoded again, and not delivered, to resume

  // This connection.
  long decoded_here = 0;
  int64_t skip_through_pts = AV_NOPTS_VALUE;  // resume: frames up to this pts are not delivered
  long skip_count = 0;                        // resume without pts: the first n frames are not delivered
  bool need_keyframe = false;                 // after a seek: drop packets before the first keyframe
  bool allow_seek = true;
  bool premature_logged = false;              // FFmpeg logged "Stream ends prematurely" (http.c)
  bool input_ended = false;                   // av_read_frame ended; `end` says how
  bool input_done = false;                    // the decoder was sent its flush
  std::deque<AVPacket*> held;                 // read at the input's end: maybe partial
  std::deque<AVPacket*> cleared;              // known whole, waiting for the decoder
  StreamEnd end;

  static int interrupt(void* opaque) {
    auto* s = static_cast<State*>(opaque);
    return (s->stop && s->stop->load()) || Clock::now() > s->deadline ? 1 : 0;
  }

  void arm() { deadline = Clock::now() + std::chrono::milliseconds(timeout_ms); }

  void drop_held() {
    for (AVPacket* p : held) av_packet_free(&p);
    held.clear();
  }

  void close() {
    drop_held();
    for (AVPacket* p : cleared) av_packet_free(&p);
    cleared.clear();
    if (dec) avcodec_free_context(&dec);
    if (fmt) avformat_close_input(&fmt);
    vs = -1;
  }

  ~State() {
    close();
    if (sws) sws_freeContext(sws);
    if (pkt) av_packet_free(&pkt);
    if (frame) av_frame_free(&frame);
  }

  bool at_input_end() const { return fmt && fmt->pb && (fmt->pb->eof_reached || fmt->pb->error); }

  // The end of this connection's input: complete, or cut (and why).
  StreamEnd judge_end(int read_rc) const {
    StreamEnd e;
    const int io_error = fmt && fmt->pb ? fmt->pb->error : 0;
    const long long pos = fmt && fmt->pb ? fmt->pb->pos : -1;
    const std::string at = pos >= 0 ? ", at byte " + std::to_string(pos) +
                                          (byte_size > 0 ? " of " + std::to_string(byte_size) : std::string())
                                    : std::string();
    if (read_rc != AVERROR_EOF) {
      e.why = (read_rc == AVERROR_EXIT ? "no data for " + std::to_string(timeout_ms) + " ms" : av_error_text(read_rc)) + at;
    } else if (io_error) {
      e.why = av_error_text(io_error) + at;
    } else if (premature_logged) {
      e.why = "the response ended before its Content-Length" + at;
    } else if (byte_size > 0 && fmt->pb->eof_reached && pos < byte_size) {
      // The I/O layer met its end before the declared size. (A demuxer may
      // end before the last byte on its own, at the last frame its index
      // lists: an MP4 whose index follows the frames. That is the end.)
      e.why = "the input ended early" + at;
    } else if (byte_size <= 0 && stream_duration != AV_NOPTS_VALUE && last_frame_end() != AV_NOPTS_VALUE &&
               last_frame_end() + 2 * frame_duration() < stream_duration) {
      const AVRational tb = fmt->streams[vs]->time_base;
      e.why = "the input ended at " + std::to_string(last_frame_end() * av_q2d(tb)) + " s of its declared " +
              std::to_string(stream_duration * av_q2d(tb)) + " s";
    } else {
      e.complete = byte_size > 0 || stream_duration != AV_NOPTS_VALUE;
      if (!e.complete) e.why = "end of stream";
    }
    return e;
  }

  // One frame's length in the video stream's time base (0 when unknown).
  int64_t frame_duration() const {
    if (vs < 0 || !(fps > 0)) return 0;
    return av_rescale_q(1, av_inv_q(av_d2q(fps, 100000)), fmt->streams[vs]->time_base);
  }
  // The end of the last frame delivered, relative to the stream's start.
  int64_t last_frame_end() const {
    if (last_pts == AV_NOPTS_VALUE || vs < 0) return AV_NOPTS_VALUE;
    const int64_t start = fmt->streams[vs]->start_time;
    return last_pts - (start == AV_NOPTS_VALUE ? 0 : start) + frame_duration();
  }

  bool open_once(bool resume, std::string* why) {
    close();
    end = {};
    decoded_here = 0;
    skip_through_pts = AV_NOPTS_VALUE;
    skip_count = 0;
    need_keyframe = false;
    premature_logged = false;
    input_ended = false;
    input_done = false;

    fmt = avformat_alloc_context();
    if (!fmt) { *why = "out of memory"; return false; }
    fmt->interrupt_callback.callback = &State::interrupt;
    fmt->interrupt_callback.opaque = this;
    AVDictionary* opts = nullptr;
    const std::string us = std::to_string(static_cast<long long>(timeout_ms) * 1000);
    av_dict_set(&opts, "rw_timeout", us.c_str(), 0);
    av_dict_set(&opts, "timeout", us.c_str(), 0);
    // As OpenCV's FFmpeg backend does: RTSP over TCP, unless the user set
    // OPENCV_FFMPEG_CAPTURE_OPTIONS ("key;value|key;value").
    if (const char* env = std::getenv("OPENCV_FFMPEG_CAPTURE_OPTIONS")) {
      av_dict_parse_string(&opts, env, ";", "|", 0);
    } else {
      av_dict_set(&opts, "rtsp_transport", "tcp", 0);
    }
    arm();
    const long logged_before = premature_ends_on_this_thread();
    int rc = avformat_open_input(&fmt, url.c_str(), nullptr, &opts);  // frees fmt on failure
    av_dict_free(&opts);
    if (rc < 0) {
      *why = av_error_text(rc);
      return false;
    }
    arm();
    rc = avformat_find_stream_info(fmt, nullptr);
    if (rc < 0) {
      *why = "cannot read the stream's parameters: " + av_error_text(rc);
      close();
      return false;
    }
    const AVCodec* codec = nullptr;
    vs = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (vs < 0 || !codec) {
      *why = vs == AVERROR_DECODER_NOT_FOUND ? "no decoder for its video codec" : "no video stream";
      close();
      return false;
    }
    AVStream* st = fmt->streams[vs];
    dec = avcodec_alloc_context3(codec);
    if (!dec || avcodec_parameters_to_context(dec, st->codecpar) < 0) {
      *why = "cannot set up the decoder";
      close();
      return false;
    }
    dec->thread_count = std::min(16, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    rc = avcodec_open2(dec, codec, nullptr);
    if (rc < 0) {
      *why = "cannot open the decoder: " + av_error_text(rc);
      close();
      return false;
    }
    if (premature_ends_on_this_thread() != logged_before) premature_logged = true;
    if (!described) {
      described = true;
      byte_size = fmt->pb ? avio_size(fmt->pb) : -1;
      if (byte_size <= 0) byte_size = -1;
      if (st->duration != AV_NOPTS_VALUE && st->duration > 0 &&
          fmt->duration_estimation_method != AVFMT_DURATION_FROM_BITRATE)
        stream_duration = st->duration;
      const double f = av_q2d(av_guess_frame_rate(fmt, st, nullptr));
      fps = f > 0 && f < 1000 ? f : 0;
      rotation_cw = stream_rotation_cw(st);
      size = {st->codecpar->width, st->codecpar->height};
      if (rotation_cw == 90 || rotation_cw == 270) size = {size.height, size.width};
    }
    if (resume) {
      if (last_pts != AV_NOPTS_VALUE) {
        skip_through_pts = last_pts;
        if (allow_seek && fmt->pb && (fmt->pb->seekable & AVIO_SEEKABLE_NORMAL)) {
          arm();
          if (av_seek_frame(fmt, vs, last_pts, AVSEEK_FLAG_BACKWARD) < 0) {
            allow_seek = false;  // its position is unknown now: read this resource from its start
            return open_once(resume, why);
          }
          avcodec_flush_buffers(dec);
          need_keyframe = true;
        }
      } else {
        skip_count = delivered;
      }
    }
    return true;
  }

  // Hands a packet to the decoder (a damaged one is skipped, as FFmpeg does).
  void send(AVPacket* p) {
    avcodec_send_packet(dec, p);
    av_packet_unref(p);
  }

  bool to_bgr(cv::Mat& out) {
    const int w = frame->width, h = frame->height;
    if (w <= 0 || h <= 0 || frame->format < 0) return false;
    sws = sws_getCachedContext(sws, w, h, static_cast<AVPixelFormat>(frame->format), w, h, AV_PIX_FMT_BGR24,
                               SWS_BICUBIC, nullptr, nullptr, nullptr);
    if (!sws) return false;
    cv::Mat bgr(h, w, CV_8UC3);
    uint8_t* dst[4] = {bgr.data, nullptr, nullptr, nullptr};
    int dst_step[4] = {static_cast<int>(bgr.step[0]), 0, 0, 0};
    sws_scale(sws, frame->data, frame->linesize, 0, h, dst, dst_step);
    out = rotation_cw ? rotate_cw(bgr, rotation_cw) : bgr;
    return true;
  }

  bool read(cv::Mat& out) {
    if (!fmt || !dec) return false;
    for (;;) {
      if (stop && stop->load()) return false;
      const int r = avcodec_receive_frame(dec, frame);
      if (r == 0) {
        const int64_t pts = frame->best_effort_timestamp;
        ++decoded_here;
        const bool skip = skip_through_pts != AV_NOPTS_VALUE && pts != AV_NOPTS_VALUE ? pts <= skip_through_pts
                                                                                         : decoded_here <= skip_count;
        if (skip) ++redecoded;
        cv::Mat bgr;
        const bool ok = !skip && to_bgr(bgr);
        av_frame_unref(frame);
        if (!ok) continue;
        if (pts != AV_NOPTS_VALUE) last_pts = pts;
        ++delivered;
        out = std::move(bgr);
        return true;
      }
      if (r == AVERROR_EOF) return false;  // drained: the end was judged when the input ended
      // The decoder wants input (EAGAIN), or rejected a damaged packet.
      if (!cleared.empty()) {
        send(cleared.front());
        av_packet_free(&cleared.front());
        cleared.pop_front();
        continue;
      }
      if (input_ended) {
        if (input_done) return false;
        avcodec_send_packet(dec, nullptr);  // drain the frames of the packets already sent
        input_done = true;
        continue;
      }
      arm();
      const long logged_before = premature_ends_on_this_thread();
      const int rc = av_read_frame(fmt, pkt);
      if (premature_ends_on_this_thread() != logged_before) premature_logged = true;
      if (rc >= 0) {
        if (pkt->stream_index != vs) { av_packet_unref(pkt); continue; }
        if (need_keyframe) {
          if (!(pkt->flags & AV_PKT_FLAG_KEY)) { av_packet_unref(pkt); continue; }
          need_keyframe = false;
          const int64_t key = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
          if (key == AV_NOPTS_VALUE || key > skip_through_pts) {
            // The seek landed after the frame to resume from: frames would
            // be missing. Read this resource from its start instead.
            av_packet_unref(pkt);
            allow_seek = false;
            std::string why;
            if (!open_once(true, &why)) {
              end.why = "reopened to resume from its start, but: " + why;
              return false;
            }
            continue;
          }
        }
        if (!at_input_end() && held.empty()) { send(pkt); continue; }
        held.push_back(av_packet_clone(pkt));
        av_packet_unref(pkt);
        if (held.size() > kHeldPackets) {  // not among the last few: whole
          cleared.push_back(held.front());
          held.pop_front();
        }
        continue;
      }
      if (rc == AVERROR(EAGAIN)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      if (stop && stop->load()) return false;
      end = judge_end(rc);
      if (end.complete || !(byte_size > 0 || stream_duration != AV_NOPTS_VALUE)) {
        // A complete input (or a live stream's end): what it held is whole.
        for (AVPacket* p : held) cleared.push_back(p);
        held.clear();
      }
      drop_held();
      input_ended = true;
    }
  }
};

NetworkReader::NetworkReader(std::string url, int timeout_ms, const std::atomic<bool>* stop)
    : s_(std::make_unique<State>()) {
  s_->url = std::move(url);
  s_->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
  s_->stop = stop;
  // FFmpeg's chatter at the level OpenCV's FFmpeg backend sets, which this
  // reader replaces for streams (OpenCV keeps its level under OPENCV_FFMPEG_DEBUG).
  static std::once_flag quiet;
  std::call_once(quiet, [] {
    if (!std::getenv("OPENCV_FFMPEG_DEBUG")) av_log_set_level(AV_LOG_ERROR);
  });
  s_->pkt = av_packet_alloc();
  s_->frame = av_frame_alloc();
}

NetworkReader::~NetworkReader() = default;

bool NetworkReader::open(bool resume, std::string* why) {
  std::string ignored;
  if (!why) why = &ignored;
  if (!s_->pkt || !s_->frame) { *why = "out of memory"; return false; }
  s_->allow_seek = true;
  return s_->open_once(resume, why);
}

bool NetworkReader::read(cv::Mat& bgr) { return s_->read(bgr); }
const StreamEnd& NetworkReader::end() const { return s_->end; }
bool NetworkReader::finite() const { return s_->byte_size > 0 || s_->stream_duration != AV_NOPTS_VALUE; }
double NetworkReader::fps() const { return s_->fps; }
cv::Size NetworkReader::size() const { return s_->size; }
long long NetworkReader::byte_size() const { return s_->byte_size; }
long NetworkReader::delivered() const { return s_->delivered; }
long NetworkReader::redecoded() const { return s_->redecoded; }

}  // namespace facerec::video
