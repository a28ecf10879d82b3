// End-to-end: procsnap-capture --precopy, which copies the target's memory while it runs,
// tracking its writes with an asynchronous userfaultfd it makes the target create, then
// freezes it and copies only what was written. The archive must hold the truth; afterwards
// the target must hold no userfaultfd, no registration ("uw" in VmFlags) and no memory it did
// not have, also when the capturer is killed in the middle.
#include "tests/e2e/test_capture_support.h"

#include "common/proc/files.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <nlohmann/json.hpp>
#include <random>
#include <unistd.h>

namespace procsnap::test {
namespace {

// Links of the target's open descriptors ("anon_inode:[userfaultfd]", "pipe:[...]", ...).
std::vector<std::string> descriptorLinks(pid_t pid) {
  std::vector<std::string> links;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* listing = ::opendir(dir.c_str());
  if (listing == nullptr)
    return links;
  while (dirent* entry = ::readdir(listing)) {
    if (entry->d_name[0] == '.')
      continue;
    char target[4096];
    const ssize_t n = ::readlink((dir + "/" + entry->d_name).c_str(), target, sizeof target);
    if (n > 0)
      links.emplace_back(target, static_cast<size_t>(n));
  }
  ::closedir(listing);
  std::sort(links.begin(), links.end());
  return links;
}

// Whether any mapping of pid is still registered with a userfaultfd for write-protection.
bool anyRegistration(pid_t pid) {
  auto smaps = readProcFile("/proc/" + std::to_string(pid) + "/smaps");
  return smaps.ok() && smaps->find(" uw") != std::string::npos;
}

std::string mapsOf(pid_t pid) {
  auto maps = readProcFile("/proc/" + std::to_string(pid) + "/maps");
  return maps.ok() ? *maps : std::string();
}

uint64_t residentKb(const SampleProcess& sample) {
  return std::strtoull(sample.statusField("VmRSS").c_str(), nullptr, 10);
}

// The target is as it was: running, untraced, same descriptors, no registration, the same
// mappings (unregistering by pieces splits them for a moment), and no memory populated by the
// capture (the 32 GiB reservation would show).
void expectUntouched(const SampleProcess& sample, const std::vector<std::string>& links_before,
                     const std::string& maps_before, uint64_t rss_before_kb) {
  EXPECT_TRUE(waitRunningUntraced(sample, std::chrono::milliseconds(1000)));
  EXPECT_TRUE(sample.alive());
  // The kernel releases a dead capturer's userfaultfd at once; allow it a moment.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (anyRegistration(sample.pid()) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(anyRegistration(sample.pid()));
  EXPECT_EQ(descriptorLinks(sample.pid()), links_before);
  EXPECT_EQ(mapsOf(sample.pid()), maps_before);
  EXPECT_LT(residentKb(sample), rss_before_kb + 16 * 1024) << "the capture populated memory";
}

TEST(CapturePrecopy, ArchiveHoldsTheTruthAndTheTargetIsLeftAsItWas) {
  auto sample = SampleProcess::start(SampleVariant::Pie);
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  const std::vector<std::string> links_before = descriptorLinks((*sample)->pid());
  const std::string maps_before = mapsOf((*sample)->pid());
  const uint64_t rss_before_kb = residentKb(**sample);
  auto dir = TempDir::create("procsnap-capture-precopy");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->file("precopy.psnap");
  CommandResult run =
      runCapture({std::to_string((*sample)->pid()), "-o", path, "--precopy", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto report = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << run.out;
  EXPECT_TRUE(report.value("warnings", nlohmann::json::array()).empty()) << run.out;
  EXPECT_TRUE(report["stats"]["phase_seconds"].contains("precopy")) << run.out;
  EXPECT_TRUE(report["stats"]["phase_seconds"].contains("refresh")) << run.out;

  auto reader = ArchiveReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  expectSampleTruth(**reader, (*sample)->truth());
  // Nothing of the userfaultfd shows in the metadata either: VmFlags were read before it.
  for (const RegionRecord& region : (*reader)->metadata().regions)
    EXPECT_FALSE(region.smaps.hasVmFlag("uw")) << formatMapsLine(region.map());

  expectUntouched(**sample, links_before, maps_before, rss_before_kb);
}

TEST(CapturePrecopy, SigkillAtRandomPointsLeavesTheTargetAsItWas) {
  auto sample = SampleProcess::start(SampleVariant::Pie, {"--resident-mb", "128"});
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  const std::vector<std::string> links_before = descriptorLinks((*sample)->pid());
  const std::string maps_before = mapsOf((*sample)->pid());
  const uint64_t rss_before_kb = residentKb(**sample);
  auto dir = TempDir::create("procsnap-capture-precopy-kill");
  ASSERT_TRUE(dir.ok());
  std::mt19937 random(std::random_device{}());
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const pid_t capture =
        spawnCapture({std::to_string((*sample)->pid()), "-o", dir->file("kill.psnap"), "--force",
                      "--precopy", "-j", "1"});
    ASSERT_GT(capture, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(random() % 400));
    ::kill(capture, SIGKILL);
    ASSERT_NE(waitChild(capture, std::chrono::milliseconds(20000)), -1);
    expectUntouched(**sample, links_before, maps_before, rss_before_kb);
  }
}

// A mapping made after smaps was read (before the freeze) has no VmFlags from that read, and
// --precopy has no fork whose smaps could give them later: they are read while frozen, so
// MADV_DONTDUMP and the filters still apply to it. The map-churn thread keeps making them.
TEST(CapturePrecopy, MappingsNewAtTheFreezeStillHaveTheirSmaps) {
  auto sample = SampleProcess::start(SampleVariant::Pie, {"--churn-maps"});
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  auto dir = TempDir::create("procsnap-capture-precopy-churn");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->file("churn.psnap");
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    CommandResult run =
        runCapture({std::to_string((*sample)->pid()), "-o", path, "--force", "--precopy", "-q"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    auto reader = ArchiveReader::open(path);
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    for (const RegionRecord& region : (*reader)->metadata().regions)
      EXPECT_FALSE(region.smaps.vm_flags.empty()) << formatMapsLine(region.map());
  }
}

TEST(CapturePrecopy, ConflictingOptionsAreUsageErrors) {
  EXPECT_EQ(runCapture({"--precopy", "--cow", "1"}).exit_code, 2);
  EXPECT_EQ(runCapture({"--precopy", "--redact", "secret", "1"}).exit_code, 2);
}

} // namespace
} // namespace procsnap::test
