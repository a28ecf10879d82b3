// Fault injection for procsnap-capture, each fault repeated at random points chosen by a
// seeded RNG (the seed is printed with every failure; set PROCSNAP_FAULT_SEED to replay):
//
// - the target SIGKILLed during the capture of a sample with --resident-mb
//   (kTargetKillRuns): exit 3 with an archive that opens and verifies, or exit 0 when the
//   kill came after the thaw, or exit 1 "no such process" when it came before the freeze;
// - the capturer killed by SIGINT, SIGTERM and SIGKILL (kCapturerKillRuns each): the target
//   runs on untraced within a second; INT/TERM leave no temporary file; a SIGKILL leaves at
//   most a ".NAME.tmp.*" file that `procsnap-analyze verify` reports as having no trailer;
// - a full disk (a tmpfs of a random size below the archive's, kFullDiskRuns): exit 1, no
//   file left, target untraced;
// - targets churning threads and mappings, captured kChurnCaptures times each: every capture
//   succeeds (or reports a partial archive) and the target stays alive and responsive.
//
// Repetitions are sized so the file takes well under 60 s on a loaded 2-core machine;
// docs/RELIABILITY.md records them.

#include "tests/e2e/analyze_commands_support.h"
#include "tests/e2e/test_capture_support.h"

#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <dirent.h>
#include <random>
#include <sys/stat.h>

namespace procsnap::test {
namespace {

constexpr int kExitSuccess = 0;
constexpr int kExitError = 1;
constexpr int kExitPartial = 3;
constexpr int kTargetKillRuns = 6;
constexpr int kCapturerKillRuns = 3; // per signal
constexpr int kFullDiskRuns = 4;
constexpr int kChurnCaptures = 5;
// Enough resident memory that a capture with everything compressed while frozen
// (--max-buffer 1M -j 1) takes a few hundred milliseconds in an idle debug build (seconds on
// a machine loaded six times over).
const char* const kResidentMb = "32";
constexpr auto kUntracedWithin = std::chrono::milliseconds(1000);

uint64_t faultSeed() {
  if (const char* text = std::getenv("PROCSNAP_FAULT_SEED"); text && *text)
    return std::strtoull(text, nullptr, 10);
  return std::random_device{}();
}

std::vector<std::string> listDir(const std::string& path) {
  std::vector<std::string> names;
  if (DIR* dir = ::opendir(path.c_str())) {
    while (dirent* entry = ::readdir(dir)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..")
        names.push_back(name);
    }
    ::closedir(dir);
  }
  return names;
}

void emptyDir(const std::string& path) {
  for (const std::string& name : listDir(path))
    ::unlink((path + "/" + name).c_str());
}

bool waitTraced(const SampleProcess& sample, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string tracer = sample.statusField("TracerPid");
    if (!tracer.empty() && tracer != "0")
      return true;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return false;
}

// How long one capture of the sample takes with these arguments, in milliseconds.
int64_t timeCapture(const std::vector<std::string>& args) {
  const auto start = std::chrono::steady_clock::now();
  CommandResult run = runCapture(args);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

// The target is healthy: alive, running untraced, and it still answers SIGUSR1 with a new
// line of truth.
void expectHealthy(SampleProcess& sample) {
  EXPECT_TRUE(sample.alive());
  EXPECT_TRUE(waitRunningUntraced(sample, kUntracedWithin))
      << "State " << sample.statusField("State") << ", TracerPid "
      << sample.statusField("TracerPid");
  auto truth = sample.mutate();
  EXPECT_TRUE(truth.ok()) << (truth.ok() ? "" : truth.error().message);
}

TEST(CaptureFaults, TargetKilledAtRandomPointsLeavesAPartialReadableArchive) {
  const uint64_t seed = faultSeed();
  SCOPED_TRACE("PROCSNAP_FAULT_SEED=" + std::to_string(seed));
  std::mt19937_64 random(seed);
  auto dir = TempDir::create("procsnap-fault-target");
  ASSERT_TRUE(dir.ok());
  int partial = 0;
  int complete = 0;
  int refused = 0;
  for (int run = 0; run < kTargetKillRuns; ++run) {
    auto sample = SampleProcess::start(SampleVariant::Pie, {"--resident-mb", kResidentMb});
    ASSERT_TRUE(sample.ok()) << sample.error().message;
    const std::string path = dir->file("target.psnap");
    const pid_t capture = spawnCapture(
        {std::to_string((*sample)->pid()), "-o", path, "--max-buffer", "1M", "-j", "1"});
    ASSERT_GT(capture, 0);
    // Even runs: at a random point in the frozen window; odd runs: at any point.
    const bool while_frozen = run % 2 == 0;
    if (while_frozen) {
      ASSERT_TRUE(waitTraced(**sample, std::chrono::milliseconds(10000)));
    }
    const int delay_ms = static_cast<int>(random() % (while_frozen ? 60 : 400));
    SCOPED_TRACE("run " + std::to_string(run) + (while_frozen ? " frozen" : " any") + " delay " +
                 std::to_string(delay_ms) + " ms");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill((*sample)->pid(), SIGKILL);
    const int status = waitChild(capture, std::chrono::milliseconds(30000));
    ASSERT_NE(status, -1) << "capture hung after the target died";
    ASSERT_TRUE(WIFEXITED(status)) << "capture died of signal " << WTERMSIG(status);
    const int code = WEXITSTATUS(status);
    if (code == kExitError) {
      EXPECT_FALSE(while_frozen) << "an error although the target was already frozen";
      EXPECT_TRUE(listDir(dir->path()).empty()) << "a failed capture left a file";
      ++refused;
      continue;
    }
    ASSERT_TRUE(code == kExitPartial || code == kExitSuccess) << "exit " << code;
    auto reader = ArchiveReader::open(path);
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    EXPECT_EQ((*reader)->metadata().partial, code == kExitPartial);
    CommandResult verify = runAnalyze({"verify", "--json", path});
    ASSERT_EQ(verify.exit_code, 0) << verify.out << verify.err; // every block intact
    complete += code == kExitSuccess ? 1 : 0;
    if (code == kExitPartial) {
      ++partial;
      EXPECT_NE((*reader)->metadata().partial_reason.find("exited"), std::string::npos);
      EXPECT_FALSE((*reader)->metadata().regions.empty());
    }
    emptyDir(dir->path());
  }
  EXPECT_GT(partial, 0) << "no run killed the target while it was being captured";
  std::printf("[ faults ] target killed %d times: %d partial (exit 3), %d complete (exit 0), "
              "%d before the freeze (exit 1)\n",
              kTargetKillRuns, partial, complete, refused);
}

void killCapturerAtRandomPoints(int signal_number) {
  const uint64_t seed = faultSeed() + static_cast<uint64_t>(signal_number);
  SCOPED_TRACE("PROCSNAP_FAULT_SEED=" + std::to_string(seed - signal_number) + " signal " +
               std::to_string(signal_number));
  std::mt19937_64 random(seed);
  auto sample = SampleProcess::start(SampleVariant::Pie, {"--resident-mb", kResidentMb});
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  auto dir = TempDir::create("procsnap-fault-capturer");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->file("killed.psnap");
  const std::vector<std::string> args = {
      std::to_string((*sample)->pid()), "-o", path, "--max-buffer", "1M", "-j", "1", "--force"};
  // Timed once for the three signals: a capture of the same sample takes about as long.
  static const int64_t capture_ms = std::max<int64_t>(timeCapture(args), 50);
  emptyDir(dir->path());
  int killed = 0;
  int leftovers = 0;
  for (int run = 0; run < kCapturerKillRuns; ++run) {
    const pid_t capture = spawnCapture(args);
    ASSERT_GT(capture, 0);
    // Run 0 while the target is frozen (the emergency thaw; it cannot have finished), the
    // others at any point of a capture's usual length (they may finish first).
    if (run == 0) {
      ASSERT_TRUE(waitTraced(**sample, std::chrono::milliseconds(10000)));
    }
    const uint64_t range_ms = run == 0 ? 20 : static_cast<uint64_t>(capture_ms);
    const int delay_ms = static_cast<int>(random() % range_ms);
    SCOPED_TRACE("run " + std::to_string(run) + " delay " + std::to_string(delay_ms) + " of " +
                 std::to_string(range_ms) + " ms");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(capture, signal_number);
    const int status = waitChild(capture, std::chrono::milliseconds(20000));
    ASSERT_NE(status, -1) << "capture did not exit";
    EXPECT_TRUE(waitRunningUntraced(**sample, kUntracedWithin))
        << "State " << (*sample)->statusField("State") << ", TracerPid "
        << (*sample)->statusField("TracerPid");
    EXPECT_TRUE((*sample)->alive());
    const std::vector<std::string> left = listDir(dir->path());
    if (!WIFSIGNALED(status)) {
      EXPECT_EQ(WEXITSTATUS(status), 0) << "finished before the signal, but failed";
      EXPECT_EQ(left, std::vector<std::string>{"killed.psnap"});
    } else {
      ++killed;
      EXPECT_EQ(WTERMSIG(status), signal_number);
      if (signal_number != SIGKILL) {
        EXPECT_TRUE(left.empty()) << "temporary file left behind: " << left.front();
      } else {
        // SIGKILL cannot be cleaned up after: what is left is the temporary name, and
        // verify says the archive is unfinished.
        EXPECT_LE(left.size(), 1u);
        leftovers += static_cast<int>(left.size());
        for (const std::string& name : left) {
          EXPECT_EQ(name.rfind(".killed.psnap.tmp.", 0), 0u) << name;
          CommandResult verify = runAnalyze({"verify", dir->file(name)});
          // 0: killed after the trailer was written but before the rename (a complete
          // archive under its temporary name); 1 or 2: unfinished.
          EXPECT_TRUE(verify.exit_code == 0 || verify.exit_code == 1 || verify.exit_code == 2)
              << "exit " << verify.exit_code << ": " << verify.out << verify.err;
          if (verify.exit_code == 1) {
            EXPECT_NE((verify.out + verify.err).find("no trailer"), std::string::npos)
                << verify.out;
          }
        }
      }
    }
    emptyDir(dir->path());
  }
  expectHealthy(**sample);
  EXPECT_GT(killed, 0) << "every capture finished before its signal";
  std::printf("[ faults ] signal %d at random points of a %lld ms capture: %d runs, %d killed, "
              "%d finished first, %d temporary files left\n",
              signal_number, static_cast<long long>(capture_ms), kCapturerKillRuns, killed,
              kCapturerKillRuns - killed, leftovers);
}

TEST(CaptureFaults, SigintAtRandomPoints) {
  killCapturerAtRandomPoints(SIGINT);
}
TEST(CaptureFaults, SigtermAtRandomPoints) {
  killCapturerAtRandomPoints(SIGTERM);
}
TEST(CaptureFaults, SigkillAtRandomPoints) {
  killCapturerAtRandomPoints(SIGKILL);
}

TEST(CaptureFaults, FullDiskOfRandomSizesLeavesNothing) {
  const uint64_t seed = faultSeed();
  SCOPED_TRACE("PROCSNAP_FAULT_SEED=" + std::to_string(seed));
  std::mt19937_64 random(seed);
  auto sample = SampleProcess::start(SampleVariant::Pie);
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  auto dir = TempDir::create("procsnap-fault-full");
  ASSERT_TRUE(dir.ok());
  CommandResult whole = runCapture({std::to_string((*sample)->pid()), "-o", dir->file("a.psnap")});
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  struct stat st {};
  ASSERT_EQ(::stat(dir->file("a.psnap").c_str(), &st), 0);
  emptyDir(dir->path());
  const std::string mount_point = dir->path();
  // One shell in a private mount namespace mounts each size in turn: rc and what is left.
  std::string script;
  std::vector<uint64_t> sizes;
  for (int run = 0; run < kFullDiskRuns; ++run) {
    const uint64_t kib = 4 + random() % (static_cast<uint64_t>(st.st_size) / 1024 - 4);
    sizes.push_back(kib);
    script += "mount -t tmpfs -o size=" + std::to_string(kib) + "k tmpfs '" + mount_point +
              "' || exit 99; '" + captureBinary() + "' " + std::to_string((*sample)->pid()) +
              " -q -o '" + mount_point + "/full.psnap' 2>/dev/null; echo \"rc=$? left=$(ls -A '" +
              mount_point + "' | tr '\\n' ' ')\"; umount '" + mount_point + "';\n";
  }
  CommandResult run = runCommand({"unshare", "-m", "sh", "-c", script}, 120);
  if (run.exit_code == 99 || run.exit_code == -1)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << run.err;
  std::istringstream lines(run.out);
  std::string line;
  int seen = 0;
  while (std::getline(lines, line)) {
    SCOPED_TRACE("tmpfs of " + std::to_string(sizes[seen]) + " KiB, archive " +
                 std::to_string(st.st_size) + " bytes");
    EXPECT_EQ(line, "rc=" + std::to_string(kExitError) + " left=");
    ++seen;
  }
  EXPECT_EQ(seen, kFullDiskRuns) << run.out << run.err;
  EXPECT_TRUE(waitRunningUntraced(**sample, kUntracedWithin));
}

void captureChurningTarget(const char* churn_option) {
  auto sample = SampleProcess::start(SampleVariant::Pie, {churn_option});
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  auto dir = TempDir::create("procsnap-fault-churn");
  ASSERT_TRUE(dir.ok());
  for (int run = 0; run < kChurnCaptures; ++run) {
    SCOPED_TRACE(std::string(churn_option) + " capture " + std::to_string(run));
    const std::string path = dir->file("churn.psnap");
    CommandResult capture =
        runCapture({std::to_string((*sample)->pid()), "-o", path, "--force", "-q"});
    ASSERT_TRUE(capture.exit_code == kExitSuccess || capture.exit_code == kExitPartial)
        << "exit " << capture.exit_code << ": " << capture.err;
    auto reader = ArchiveReader::open(path);
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    EXPECT_GE((*reader)->metadata().threads.size(), 3u);
    auto marker = readString(**reader, addressOf((*sample)->truth()["heap_small"]["addr"]), 26);
    ASSERT_TRUE(marker.has_value());
    EXPECT_EQ(*marker, "procsnap-heap-marker-small");
    EXPECT_TRUE(waitRunningUntraced(**sample, kUntracedWithin));
  }
  expectHealthy(**sample);
}

TEST(CaptureFaults, ThreadChurnTarget) {
  captureChurningTarget("--churn-threads");
}

TEST(CaptureFaults, MapChurnTarget) {
  captureChurningTarget("--churn-maps");
}

} // namespace
} // namespace procsnap::test
