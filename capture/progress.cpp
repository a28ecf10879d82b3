#include "capture/progress.h"

#include <cstdio>
#include <unistd.h>

namespace procsnap {
namespace {

// Redraw at most this often: fast enough to look live, rare enough to cost nothing.
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

void writeAll(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n <= 0)
      return; // a progress line is not worth an error
    text.remove_prefix(static_cast<size_t>(n));
  }
}

} // namespace

Progress::Progress(bool enabled, int fd) : enabled_(enabled && ::isatty(fd) == 1), fd_(fd) {}

Progress::~Progress() {
  clear();
}

void Progress::phase(std::string_view name, uint64_t total_bytes) {
  if (!enabled_)
    return;
  std::lock_guard lock(mutex_);
  phase_ = std::string(name);
  total_ = total_bytes;
  done_ = 0;
  redraw(true);
}

void Progress::advance(uint64_t bytes) {
  if (!enabled_)
    return;
  done_ += bytes;
  std::unique_lock lock(mutex_, std::try_to_lock);
  if (lock.owns_lock())
    redraw(false);
}

void Progress::clear() {
  if (!enabled_)
    return;
  std::lock_guard lock(mutex_);
  if (drawn_)
    writeAll(fd_, "\r\033[K");
  drawn_ = false;
}

void Progress::redraw(bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < kRedrawInterval)
    return;
  last_draw_ = now;
  const uint64_t done = done_;
  std::string line = "\r\033[K" + phase_;
  if (done != 0 || total_ != 0)
    line += "  " + formatBytes(done);
  if (total_ != 0) {
    line += " / " + formatBytes(total_);
    const unsigned percent = done >= total_ ? 100u : static_cast<unsigned>(done * 100 / total_);
    line += "  " + std::to_string(percent) + "%";
  }
  writeAll(fd_, line);
  drawn_ = true;
}

std::string Progress::formatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024)
    return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, kUnits[unit]);
  return text;
}

} // namespace procsnap
