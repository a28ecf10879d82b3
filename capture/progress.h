// One updating status line on standard error ("copy  512.0 MiB / 1.5 GiB  33%"), shown only
// when standard error is a terminal and --quiet was not given. Thread-safe: workers call
// advance(); redraws are rate-limited so a busy loop costs little.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace procsnap {

class Progress final {
public:
  // Enabled when enabled is true and fd is a terminal.
  Progress(bool enabled, int fd);
  ~Progress(); // clears the line
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  bool enabled() const { return enabled_; }

  // Starts a phase; total 0 means unknown (no percentage).
  void phase(std::string_view name, uint64_t total_bytes = 0);
  void advance(uint64_t bytes);
  // Erases the line (before printing anything else on the terminal).
  void clear();

  // "1.5 GiB", "512.0 MiB", "17 B": used by --stats as well.
  static std::string formatBytes(uint64_t bytes);

private:
  void redraw(bool force);

  const bool enabled_;
  const int fd_;
  std::mutex mutex_;
  std::string phase_;
  uint64_t total_ = 0;
  std::atomic<uint64_t> done_{0};
  std::chrono::steady_clock::time_point last_draw_{};
  bool drawn_ = false;
};

} // namespace procsnap
