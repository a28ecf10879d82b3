// End-to-end: procsnap-capture interrupted by a signal at a random point, and a target that
// dies mid-capture. The target must be running and untraced within a second of the
// capturer's death; SIGINT/SIGTERM leave no temporary file; a dead target gives exit code 3
// and a readable archive marked partial.

#include "tests/e2e/test_capture_support.h"

#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <random>

namespace procsnap::test {
namespace {

constexpr int kExitPartial = 3;
// Big enough that a capture with a tiny --max-buffer (everything compressed while frozen)
// takes about a second in a debug build, small enough to start quickly.
const char* const kResidentMb = "192";

bool dirIsEmpty(const std::string& path) {
  CommandResult listing = runCommand({"ls", "-A", path}, 10);
  return listing.exit_code == 0 && listing.out.empty();
}

// Waits (bounded) until the target is traced: the capturer has frozen it.
bool waitTraced(const SampleProcess& sample, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string tracer = sample.statusField("TracerPid");
    if (!tracer.empty() && tracer != "0")
      return true;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  return false;
}

void interruptCapture(int signal_number) {
  auto sample = SampleProcess::start(SampleVariant::Pie, {"--resident-mb", kResidentMb});
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  auto dir = TempDir::create("procsnap-capture-sig");
  ASSERT_TRUE(dir.ok());
  std::mt19937 random(std::random_device{}());
  for (int round = 0; round < 2; ++round) {
    const pid_t capture = spawnCapture({std::to_string((*sample)->pid()), "-o",
                                        dir->file("sig.psnap"), "--max-buffer", "1M", "-j", "1"});
    ASSERT_GT(capture, 0);
    // Round 0: while frozen (the emergency thaw); round 1: at a random later point.
    if (round == 0) {
      ASSERT_TRUE(waitTraced(**sample, std::chrono::milliseconds(10000)));
      std::this_thread::sleep_for(std::chrono::milliseconds(random() % 50));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(random() % 800));
    }
    ::kill(capture, signal_number);
    const int status = waitChild(capture, std::chrono::milliseconds(20000));
    ASSERT_NE(status, -1) << "capture did not exit";
    if (round == 0) {
      // Signalled while the target was frozen: the capture cannot have finished yet.
      ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
      EXPECT_EQ(WTERMSIG(status), signal_number);
    } else {
      // The capture finished before the signal: it must have succeeded then.
      EXPECT_EQ(WEXITSTATUS(status), 0);
    }
    EXPECT_TRUE(waitRunningUntraced(**sample, std::chrono::milliseconds(1000)))
        << "State " << (*sample)->statusField("State") << ", TracerPid "
        << (*sample)->statusField("TracerPid");
    EXPECT_TRUE((*sample)->alive());
    if (signal_number != SIGKILL && WIFSIGNALED(status)) {
      EXPECT_TRUE(dirIsEmpty(dir->path())) << "temporary file left behind";
    }
    runCommand({"sh", "-c", "rm -f '" + dir->path() + "'/* '" + dir->path() + "'/.sig*"}, 10);
  }
}

TEST(CaptureSignals, SigintThawsAndCleansUp) {
  interruptCapture(SIGINT);
}
TEST(CaptureSignals, SigtermThawsAndCleansUp) {
  interruptCapture(SIGTERM);
}
TEST(CaptureSignals, SigkillLeavesTargetRunning) {
  interruptCapture(SIGKILL);
}

TEST(CaptureSignals, TargetKilledMidCaptureGivesPartialArchive) {
  auto sample = SampleProcess::start(SampleVariant::Pie, {"--resident-mb", kResidentMb});
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  auto dir = TempDir::create("procsnap-capture-partial");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->file("partial.psnap");
  const pid_t target = (*sample)->pid();
  // The killer waits for the freeze, then for the copy to be under way, then kills.
  std::thread killer([&] {
    if (waitTraced(**sample, std::chrono::milliseconds(10000))) {
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
      ::kill(target, SIGKILL);
    }
  });
  CommandResult run =
      runCapture({std::to_string(target), "-o", path, "--max-buffer", "1M", "--json", "--quiet"});
  killer.join();
  ASSERT_EQ(run.exit_code, kExitPartial) << run.err;
  EXPECT_NE(run.err.find("partial capture"), std::string::npos) << run.err;
  const auto report = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << run.out;
  EXPECT_EQ(report["result"], "partial");
  EXPECT_EQ(report["exit_code"], kExitPartial);

  auto reader = ArchiveReader::open(path, OpenMode::Strict);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  const SnapshotMetadata& metadata = (*reader)->metadata();
  EXPECT_TRUE(metadata.partial);
  EXPECT_FALSE(metadata.partial_reason.empty());
  uint64_t lost = 0;
  for (const RegionRecord& region : metadata.regions)
    for (const PageRun& run_ : region.pages)
      if (run_.state == PageState::Lost)
        lost += run_.end - run_.start;
  EXPECT_GT(lost, 0u);
  EXPECT_TRUE((*reader)->verify().ok());
}

} // namespace
} // namespace procsnap::test
