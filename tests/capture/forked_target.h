// A small target process forked from the test binary, with memory whose every byte the test
// knows: for the freezer and copier tests, which need layouts the sample does not have
// (regions larger than a copy batch, pages read but never written, a spawner of threads).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <sys/types.h>

namespace procsnap::test {

struct ForkedTargetOptions {
  int sleeping_threads = 0;   // threads blocked in nanosleep
  int spinning_threads = 0;   // threads burning CPU in user space
  bool spawn_threads = false; // a thread that creates and joins short-lived threads forever
  uint64_t pattern_bytes = 3 * (1u << 20) + 8192; // a region every byte of which is non-zero
};

// Where the known memory is. All sizes are multiples of the page size.
struct ForkedTargetLayout {
  uint64_t pattern = 0; // pattern_bytes of patternByte(offset)
  uint64_t pattern_size = 0;
  // 16 pages: 0-3 pattern, 4-7 written with zeros, 8-11 never touched, 12-15 pattern.
  uint64_t mixed = 0;
  uint64_t untouched = 0; // 16 MiB never touched
  uint64_t zero_read = 0; // 1 MiB only read: every page maps the shared zero page
  uint64_t prot_none = 0; // 4 pages of pattern, then mprotect(PROT_NONE)
};

inline constexpr uint64_t kMixedPages = 16;
inline constexpr uint64_t kUntouchedSize = 16u << 20;
inline constexpr uint64_t kZeroReadSize = 1u << 20;
inline constexpr uint64_t kProtNonePages = 4;

// The byte at offset in a pattern area: never zero.
inline std::byte patternByte(uint64_t offset) {
  return static_cast<std::byte>(1 + (offset * 131 + (offset >> 12) * 7) % 255);
}

class ForkedTarget final {
public:
  // Forks; the child sets up its memory and threads, reports the layout and then sleeps
  // until killed. Returns nullptr (with a gtest failure) when that did not happen in time.
  static std::unique_ptr<ForkedTarget> start(const ForkedTargetOptions& options = {});
  ~ForkedTarget(); // SIGKILL and reap, unless reaped already
  ForkedTarget(const ForkedTarget&) = delete;
  ForkedTarget& operator=(const ForkedTarget&) = delete;

  pid_t pid() const { return pid_; }
  const ForkedTargetLayout& layout() const { return layout_; }
  // SIGKILL and reap now.
  void kill();

private:
  ForkedTarget() = default;
  pid_t pid_ = -1;
  ForkedTargetLayout layout_;
};

// Test helpers reading /proc.
std::string statusField(pid_t pid, const std::string& key); // "" when absent
char threadStateLetter(pid_t pid, pid_t tid);               // '?' when gone
uint64_t pagemapEntry(pid_t pid, uint64_t address);         // 0 on failure
// Polls (bounded) until predicate() is true; returns its last value.
bool waitUntil(const std::function<bool()>& predicate, int timeout_ms);

} // namespace procsnap::test
