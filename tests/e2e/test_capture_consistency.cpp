// Consistency: samples/invariant_target keeps a double-buffered 2 MiB buffer whose current
// copy always matches its checksum, and an in-place 2 MiB buffer that matches its checksum
// whenever its mutex is free. Each buffer spans several 1 MiB chunks, so only a capture that
// froze every thread for the whole copy sees the invariants hold. kCaptures captures, each
// read back through the common reader: the invariants must hold in every one.

#include "tests/e2e/test_capture_support.h"

#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <poll.h>
#include <set>

namespace procsnap::test {
namespace {

constexpr int kCaptures = 100;
constexpr int kModeCaptures = 40;           // for --precopy and --cow, on top of the 100 plain ones
constexpr uint64_t kWords = (2u << 20) / 8; // invariant_target.cpp
constexpr uint64_t kCopyBytes = 16 + kWords * 8;
constexpr uint64_t kMutexBytes = 40; // sizeof(pthread_mutex_t) on x86-64, before InPlace's checksum

// The same functions as samples/invariant_target.cpp.
uint64_t invariantChecksum(uint64_t seed, const uint64_t* words) {
  uint64_t h = seed;
  for (uint64_t i = 0; i < kWords; ++i)
    h = (h ^ words[i]) * 0x100000001b3ull + i;
  return h;
}

// Starts invariant_target, reads its truth line, kills it when destroyed.
class InvariantTarget final {
public:
  ~InvariantTarget() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stdout_fd_ >= 0)
      ::close(stdout_fd_);
  }

  bool start() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
      return false;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    std::string binary = PROCSNAP_INVARIANT_TARGET;
    std::string option = "--exit-after";
    std::string seconds = "300";
    char* argv[] = {binary.data(), option.data(), seconds.data(), nullptr};
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    stdout_fd_ = fds[0];
    if (rc != 0) {
      pid_ = -1;
      return false;
    }
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (line.find('\n') == std::string::npos) {
      if (std::chrono::steady_clock::now() >= deadline)
        return false;
      pollfd pfd{stdout_fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0)
        continue;
      char buffer[512];
      const ssize_t n = ::read(stdout_fd_, buffer, sizeof buffer);
      if (n <= 0)
        return false;
      line.append(buffer, static_cast<size_t>(n));
    }
    truth_ = nlohmann::json::parse(line.substr(0, line.find('\n')), nullptr, false);
    return !truth_.is_discarded();
  }

  pid_t pid() const { return pid_; }
  const nlohmann::json& truth() const { return truth_; }

private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  nlohmann::json truth_;
};

uint64_t loadU64(const std::vector<std::byte>& bytes, size_t offset) {
  uint64_t value = 0;
  std::memcpy(&value, bytes.data() + offset, 8);
  return value;
}

// Captures the invariant target `captures` times with extra_options and checks the invariants
// in each archive.
void checkInvariants(const std::vector<std::string>& extra_options, int captures) {
  InvariantTarget target;
  ASSERT_TRUE(target.start()) << "cannot start " << PROCSNAP_INVARIANT_TARGET;
  ASSERT_EQ(target.truth()["words"].get<uint64_t>(), kWords);
  const uint64_t double_address = addressOf(target.truth()["double"]["addr"]);
  const uint64_t inplace_address = addressOf(target.truth()["inplace"]["addr"]);
  const uint64_t mutex_address = addressOf(target.truth()["inplace"]["mutex_addr"]);
  ASSERT_EQ(mutex_address, inplace_address); // the mutex opens the in-place struct
  auto dir = TempDir::create("procsnap-consistency");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->file("invariant.psnap");

  int double_ok = 0;
  int inplace_checked = 0;
  int inplace_ok = 0;
  std::set<uint64_t> seeds;
  std::vector<std::byte> words(kWords * 8);
  for (int capture = 0; capture < captures; ++capture) {
    SCOPED_TRACE("capture " + std::to_string(capture));
    // Only anonymous memory (the buffers and the in-place mutex), at level 1, with a budget
    // that fits it (the capturer then pre-faults 8 MiB, not 32 MiB of slack): every thread
    // is frozen and copied the same way, in a fraction of the time.
    std::vector<std::string> arguments = {std::to_string(target.pid()),
                                          "-o",
                                          path,
                                          "--force",
                                          "-q",
                                          "--json",
                                          "--filter",
                                          "anon",
                                          "--level",
                                          "1",
                                          "--max-buffer",
                                          "8M"};
    arguments.insert(arguments.end(), extra_options.begin(), extra_options.end());
    CommandResult run = runCapture(arguments);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    // The mode asked for was used: it warns when it falls back to a frozen copy.
    const auto report = nlohmann::json::parse(run.out, nullptr, false);
    ASSERT_FALSE(report.is_discarded()) << run.out;
    ASSERT_TRUE(report.value("warnings", nlohmann::json::array()).empty()) << run.out;
    auto reader = ArchiveReader::open(path);
    ASSERT_TRUE(reader.ok()) << reader.error().message;

    auto head = readMemory(**reader, double_address, 16);
    ASSERT_TRUE(head.has_value()) << "double buffer not stored";
    const uint64_t current = loadU64(*head, 0);
    ASSERT_LE(current, 1u);
    auto copy = readMemory(**reader, double_address + 16 + current * kCopyBytes, kCopyBytes);
    ASSERT_TRUE(copy.has_value());
    const uint64_t checksum = loadU64(*copy, 0);
    const uint64_t seed = loadU64(*copy, 8);
    std::memcpy(words.data(), copy->data() + 16, words.size());
    seeds.insert(seed);
    if (invariantChecksum(seed, reinterpret_cast<const uint64_t*>(words.data())) == checksum)
      ++double_ok;
    else
      ADD_FAILURE() << "double buffer torn: copy " << current << " seed " << seed;

    auto mutex = readMemory(**reader, mutex_address, 4);
    ASSERT_TRUE(mutex.has_value());
    uint32_t lock_word = 0;
    std::memcpy(&lock_word, mutex->data(), 4);
    if (lock_word == 0) { // glibc: __lock, the first word, is 0 when the mutex is free
      ++inplace_checked;
      auto inplace = readMemory(**reader, inplace_address + kMutexBytes, kCopyBytes);
      ASSERT_TRUE(inplace.has_value());
      std::memcpy(words.data(), inplace->data() + 16, words.size());
      if (invariantChecksum(loadU64(*inplace, 8), reinterpret_cast<const uint64_t*>(
                                                      words.data())) == loadU64(*inplace, 0))
        ++inplace_ok;
      else
        ADD_FAILURE() << "in-place buffer inconsistent while its mutex was free";
    }
  }
  EXPECT_EQ(double_ok, captures);
  EXPECT_EQ(inplace_ok, inplace_checked);
  // The in-place case checks nothing unless some capture caught the mutex free.
  EXPECT_GT(inplace_checked, 0) << "no capture found the in-place buffer's mutex free";
  EXPECT_GT(seeds.size(), 1u) << "the writers did not move between captures";
  std::printf("[ consistency ] double buffer %d/%d, in-place %d/%d (mutex free), %zu distinct "
              "updates seen\n",
              double_ok, captures, inplace_ok, inplace_checked, seeds.size());
}

TEST(CaptureConsistency, InvariantsHoldInEveryCapture) {
  checkInvariants({}, kCaptures);
}

// --precopy copies while the writers run and then, frozen, every page written since: a page
// the tracker missed would tear a buffer.
TEST(CaptureConsistency, InvariantsHoldWithPrecopy) {
  checkInvariants({"--precopy"}, kModeCaptures);
}

// --cow: the fork is taken while every thread is frozen.
TEST(CaptureConsistency, InvariantsHoldWithCow) {
  checkInvariants({"--cow"}, kModeCaptures);
}

} // namespace
} // namespace procsnap::test
