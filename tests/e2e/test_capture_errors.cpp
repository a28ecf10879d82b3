// End-to-end: procsnap-capture's failure paths. Each one gives a one-line error and the
// documented exit code, leaves no file behind, and leaves the target running and untraced.

#include "tests/e2e/test_capture_support.h"

#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <unistd.h>

namespace procsnap::test {
namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

std::string firstLine(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

bool dirIsEmpty(const std::string& path) {
  CommandResult listing = runCommand({"ls", "-A", path}, 10);
  return listing.exit_code == 0 && listing.out.empty();
}

// A pid that does not exist: above the current pid_max.
pid_t unusedPid() {
  std::ifstream pid_max("/proc/sys/kernel/pid_max");
  long max = 4194304;
  pid_max >> max;
  for (pid_t pid = static_cast<pid_t>(max) - 1; pid > 1; --pid)
    if (::kill(pid, 0) != 0 && errno == ESRCH)
      return pid;
  return -1;
}

TEST(CaptureErrors, NonexistentPid) {
  auto dir = TempDir::create("procsnap-capture-err");
  ASSERT_TRUE(dir.ok());
  const pid_t pid = unusedPid();
  ASSERT_GT(pid, 0);
  CommandResult run = runCapture({std::to_string(pid), "-o", dir->file("x.psnap")});
  EXPECT_EQ(run.exit_code, kExitError);
  EXPECT_EQ(firstLine(run.err), "procsnap-capture: error: no such process: " + std::to_string(pid));
  EXPECT_TRUE(dirIsEmpty(dir->path()));
}

TEST(CaptureErrors, JsonErrorReport) {
  const pid_t pid = unusedPid();
  CommandResult run = runCapture({std::to_string(pid), "-o", "/nonexistent/x.psnap", "--json"});
  EXPECT_EQ(run.exit_code, kExitError);
  const auto report = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << run.out;
  EXPECT_EQ(report["result"], "error");
  EXPECT_EQ(report["exit_code"], kExitError);
  EXPECT_EQ(report["error"], "no such process: " + std::to_string(pid));
}

TEST(CaptureErrors, UsageErrors) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{},
                                             {"--bogus", "1"},
                                             {"notapid"},
                                             {"1", "2"},
                                             {"--filter", "nonsense", "1"},
                                             {"--level"}}) {
    CommandResult run = runCapture(args);
    EXPECT_EQ(run.exit_code, kExitUsage) << ::testing::PrintToString(args);
    EXPECT_EQ(run.err.rfind("procsnap-capture: error: ", 0), 0u) << run.err;
    EXPECT_NE(run.err.find("--help"), std::string::npos);
  }
  CommandResult help = runCapture({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Usage: procsnap-capture"), std::string::npos);
  CommandResult version = runCapture({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("procsnap-capture ", 0), 0u);
}

TEST(CaptureErrors, ExistingOutputNeedsForce) {
  auto sample = SampleProcess::start(SampleVariant::Pie);
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  auto dir = TempDir::create("procsnap-capture-err");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->file("exists.psnap");
  { std::ofstream(path) << "keep me"; }
  const std::string pid = std::to_string((*sample)->pid());
  CommandResult run = runCapture({pid, "-o", path});
  EXPECT_EQ(run.exit_code, kExitError);
  EXPECT_EQ(firstLine(run.err),
            "procsnap-capture: error: output file exists: " + path + " (use --force to overwrite)");
  std::string content;
  std::getline(std::ifstream(path), content);
  EXPECT_EQ(content, "keep me");
  EXPECT_TRUE(waitRunningUntraced(**sample, std::chrono::milliseconds(1000)));

  CommandResult forced = runCapture({pid, "-o", path, "--force", "--quiet"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_TRUE(ArchiveReader::open(path).ok());
}

TEST(CaptureErrors, UnwritableOutputLeavesTargetUntouched) {
  auto sample = SampleProcess::start(SampleVariant::Pie);
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  const std::string tracer_before = (*sample)->statusField("TracerPid");
  // sysfs refuses new files even to root.
  CommandResult run = runCapture({std::to_string((*sample)->pid()), "-o", "/sys/x.psnap"});
  EXPECT_EQ(run.exit_code, kExitError);
  EXPECT_EQ(firstLine(run.err),
            "procsnap-capture: error: cannot create a file in /sys: permission denied");
  EXPECT_EQ(tracer_before, "0");
  EXPECT_TRUE(waitRunningUntraced(**sample, std::chrono::milliseconds(1000)));
  EXPECT_TRUE((*sample)->alive());
}

TEST(CaptureErrors, AlreadyTracedTargetIsRefused) {
  auto sample = SampleProcess::start(SampleVariant::Pie);
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  const pid_t pid = (*sample)->pid();
  // This test becomes the tracer (PTRACE_SEIZE does not stop the target).
  ASSERT_EQ(::ptrace(PTRACE_SEIZE, pid, nullptr, nullptr), 0) << std::strerror(errno);
  auto dir = TempDir::create("procsnap-capture-err");
  ASSERT_TRUE(dir.ok());
  CommandResult run = runCapture({std::to_string(pid), "-o", dir->file("traced.psnap")});
  // Detaching needs a stopped tracee: interrupt, wait for the stop, detach.
  ASSERT_EQ(::ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr), 0) << std::strerror(errno);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, __WALL), pid);
  ASSERT_EQ(::ptrace(PTRACE_DETACH, pid, nullptr, nullptr), 0) << std::strerror(errno);
  EXPECT_EQ(run.exit_code, kExitError);
  EXPECT_EQ(run.err.rfind("procsnap-capture: error: ", 0), 0u) << run.err;
  EXPECT_NE(run.err.find("traced"), std::string::npos) << run.err;
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err; // one line
  EXPECT_TRUE(dirIsEmpty(dir->path()));
  EXPECT_TRUE(waitRunningUntraced(**sample, std::chrono::milliseconds(1000)));
}

TEST(CaptureErrors, StdoutToAPipeIsAReadableArchive) {
  auto sample = SampleProcess::start(SampleVariant::Pie);
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  auto dir = TempDir::create("procsnap-capture-pipe");
  ASSERT_TRUE(dir.ok());
  // runCommand reads stdout through a pipe, so the archive really goes through one.
  CommandResult run = runCapture({std::to_string((*sample)->pid()), "-o", "-", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // With -o - the JSON report goes to stderr.
  const auto report = nlohmann::json::parse(run.err, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << run.err;
  EXPECT_EQ(report["output"], "-");
  EXPECT_EQ(report["archive_bytes"].get<uint64_t>(), run.out.size());
  const std::string path = dir->file("piped.psnap");
  { std::ofstream(path, std::ios::binary) << run.out; }
  auto reader = ArchiveReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  const auto& message = (*sample)->truth()["data_message"];
  auto got =
      readString(**reader, addressOf(message["addr"]), message["value"].get<std::string>().size());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, message["value"].get<std::string>());
}

TEST(CaptureErrors, NoSpaceLeftRemovesTheTemporaryFile) {
  auto sample = SampleProcess::start(SampleVariant::Pie);
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  auto dir = TempDir::create("procsnap-capture-full");
  ASSERT_TRUE(dir.ok());
  // A 256 KiB tmpfs in a private mount namespace: the ~4 MiB archive cannot fit.
  const std::string mount_point = dir->path();
  const std::string script = "mount -t tmpfs -o size=256k tmpfs '" + mount_point +
                             "' || exit 99; '" + captureBinary() + "' " +
                             std::to_string((*sample)->pid()) + " -o '" + mount_point +
                             "/full.psnap'; rc=$?; ls -A '" + mount_point + "'; exit $rc";
  CommandResult run = runCommand({"unshare", "-m", "sh", "-c", script}, kCaptureTimeoutSeconds);
  if (run.exit_code == 99 || run.exit_code == -1)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << run.err;
  EXPECT_EQ(run.exit_code, kExitError) << run.err;
  EXPECT_EQ(firstLine(run.err), "procsnap-capture: error: no space left on device while writing " +
                                    mount_point + "/full.psnap");
  EXPECT_EQ(run.out, ""); // ls: no file, temporary or final, left in the full directory
  EXPECT_TRUE(waitRunningUntraced(**sample, std::chrono::milliseconds(1000)));
}

} // namespace
} // namespace procsnap::test
