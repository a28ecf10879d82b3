// The analyzer's output files appear complete or not at all, also when the analyzer is
// interrupted: SIGINT, SIGTERM or SIGHUP while export-core or dump writes must leave neither
// the final file nor the hidden temporary one, and end the process by that signal.
#include "tests/e2e/analyze_commands_support.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <csignal>
#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <thread>

namespace procsnap::test {
namespace {

std::vector<std::string> filesIn(const std::string& dir) {
  std::vector<std::string> names;
  DIR* listing = ::opendir(dir.c_str());
  if (listing == nullptr)
    return names;
  while (dirent* entry = ::readdir(listing))
    if (std::string(entry->d_name) != "." && std::string(entry->d_name) != "..")
      names.emplace_back(entry->d_name);
  ::closedir(listing);
  return names;
}

TEST(AnalyzeSignals, InterruptedWritesLeaveNothingBehind) {
  auto sample = SampleProcess::start(SampleVariant::Pie, {"--resident-mb", "256"});
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  auto dir = TempDir::create("procsnap-analyze-signals");
  ASSERT_TRUE(dir.ok());
  const std::string archive = dir->file("sample.psnap");
  CommandResult captured =
      runCommand({PROCSNAP_CAPTURE_BIN, std::to_string((*sample)->pid()), "-o", archive, "-q"}, 60);
  ASSERT_EQ(captured.exit_code, 0) << captured.err;
  const std::string resident = (*sample)->truth()["resident"]["addr_list"][0].get<std::string>();

  const std::vector<std::vector<std::string>> commands = {
      {"export-core", archive, "-o"}, {"dump", archive, resident + "+0x4000000", "-o"}};
  int interrupted = 0;
  for (int round = 0; round < 6; ++round) {
    const int signal_number = std::array{SIGINT, SIGTERM, SIGHUP}[round % 3];
    auto out = TempDir::create("procsnap-analyze-signals-out");
    ASSERT_TRUE(out.ok());
    std::vector<std::string> args = commands[round % 2];
    args.push_back(out->file("out.bin"));
    SCOPED_TRACE(args[0] + ", signal " + std::to_string(signal_number));
    args.insert(args.begin(), PROCSNAP_ANALYZE_BIN);
    const pid_t analyzer = spawnCommand(args);
    ASSERT_GT(analyzer, 0);
    // Once the temporary file exists, the write is under way.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (filesIn(out->path()).empty() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    ::kill(analyzer, signal_number);
    const int status = waitCommand(analyzer, std::chrono::seconds(60));
    ASSERT_NE(status, -1);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      // It finished first: then only the final file is there.
      EXPECT_EQ(filesIn(out->path()), std::vector<std::string>{"out.bin"});
      continue;
    }
    ++interrupted;
    ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << WEXITSTATUS(status);
    EXPECT_EQ(WTERMSIG(status), signal_number);
    EXPECT_TRUE(filesIn(out->path()).empty()) << filesIn(out->path())[0];
  }
  EXPECT_GT(interrupted, 0) << "every write finished before its signal";
}

} // namespace
} // namespace procsnap::test
