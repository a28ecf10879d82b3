// Shared by the end-to-end tests of dump, read, strings and verify: one sample process
// captured once per test suite, the analyzer run as a real binary, and small oracles (the
// sample's /proc/PID/maps, gdb's `dump memory`, GNU strings).
#pragma once

#include "tests/support/run_command.h"
#include "tests/support/sample_process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace procsnap::test {

// A capture or an analyzer run on a sample takes about a second; anything near these is a
// hang. gdb attaching to a process and reading libraries is slower.
inline constexpr int kAnalyzeTimeoutSeconds = 60;
inline constexpr int kGdbTimeoutSeconds = 120;

inline CommandResult runAnalyze(std::vector<std::string> args) {
  args.insert(args.begin(), PROCSNAP_ANALYZE_BIN);
  return runCommand(args, kAnalyzeTimeoutSeconds);
}

// Parses a JSON document printed by the analyzer; a null value (and a test failure) when it
// does not parse.
inline nlohmann::json parseJson(const std::string& text) {
  nlohmann::json document = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(document.is_discarded()) << "not JSON: " << text.substr(0, 500);
  return document;
}

inline std::string hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

inline std::string readWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// stderr holds exactly one "procsnap-analyze: error: ..." line (warnings may precede it).
inline void expectOneErrorLine(const std::string& err) {
  std::istringstream lines(err);
  std::string line;
  int errors = 0;
  while (std::getline(lines, line)) {
    EXPECT_EQ(line.rfind("procsnap-analyze: ", 0), 0u) << "stray stderr line: " << line;
    if (line.rfind("procsnap-analyze: error: ", 0) == 0)
      ++errors;
  }
  EXPECT_EQ(errors, 1) << err;
  EXPECT_TRUE(!err.empty() && err.back() == '\n') << err;
}

struct MapsLine {
  uint64_t start = 0, end = 0;
  std::string perms;
  std::string path;
};

// The /proc/PID/maps line holding address: the live oracle for region bounds.
inline std::optional<MapsLine> mappingOf(pid_t pid, uint64_t address) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    MapsLine entry;
    unsigned long long start = 0, end = 0;
    char perms[8] = {};
    int consumed = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %*s %*s %*s%n", &start, &end, perms, &consumed) <
        3)
      continue;
    if (address < start || address >= end)
      continue;
    entry.start = start;
    entry.end = end;
    entry.perms = perms;
    std::string rest = line.substr(static_cast<size_t>(consumed));
    size_t first = rest.find_first_not_of(' ');
    entry.path = first == std::string::npos ? "" : rest.substr(first);
    return entry;
  }
  return std::nullopt;
}

// One sample, captured once: the archive and the still-running (idle) sample, so tests can
// compare with gdb reading the live process, whose memory has not changed since.
class CapturedSample {
public:
  static std::unique_ptr<CapturedSample> create(SampleVariant variant = SampleVariant::Pie) {
    auto dir = TempDir::create("procsnap-analyze-e2e");
    if (!dir.ok()) {
      ADD_FAILURE() << dir.error().message;
      return nullptr;
    }
    auto sample = SampleProcess::start(variant);
    if (!sample.ok()) {
      ADD_FAILURE() << sample.error().message;
      return nullptr;
    }
    std::unique_ptr<CapturedSample> captured(new CapturedSample(std::move(*dir)));
    captured->sample_ = std::move(*sample);
    captured->archive_ = captured->dir_.file("sample.psnap");
    CommandResult capture = runCommand({PROCSNAP_CAPTURE_BIN, "-o", captured->archive_, "--quiet",
                                        std::to_string(captured->sample_->pid())},
                                       kAnalyzeTimeoutSeconds);
    if (capture.exit_code != 0) {
      ADD_FAILURE() << "capture failed (" << capture.exit_code << "): " << capture.err;
      return nullptr;
    }
    return captured;
  }

  const SampleProcess& sample() const { return *sample_; }
  pid_t pid() const { return sample_->pid(); }
  const nlohmann::json& truth() const { return sample_->truth(); }
  uint64_t address(const char* key) const { return addressOf(truth()[key]["addr"]); }
  const std::string& archive() const { return archive_; }
  std::string file(const std::string& name) const { return dir_.file(name); }

private:
  explicit CapturedSample(TempDir dir) : dir_(std::move(dir)) {}

  TempDir dir_;
  std::unique_ptr<SampleProcess> sample_;
  std::string archive_;
};

// gdb's `dump memory FILE START END` of each range of the live process, in one attach.
inline bool gdbDumpMemory(pid_t pid,
                          const std::vector<std::pair<std::string, MapsLine>>& files_and_ranges) {
  std::vector<std::string> argv = {"gdb", "-batch", "-nx", "-p", std::to_string(pid)};
  for (const auto& [file, range] : files_and_ranges) {
    argv.push_back("-ex");
    argv.push_back("dump memory " + file + " " + hex(range.start) + " " + hex(range.end));
  }
  CommandResult result = runCommand(argv, kGdbTimeoutSeconds);
  if (result.exit_code != 0)
    ADD_FAILURE() << "gdb failed (" << result.exit_code << "): " << result.err;
  return result.exit_code == 0;
}

// (offset, string) pairs GNU `strings -a -t x -n N [-e l]` finds in a file.
inline std::vector<std::pair<uint64_t, std::string>>
gnuStrings(const std::string& path, int min_length, const std::string& encoding = "s") {
  CommandResult result = runCommand(
      {"strings", "-a", "-t", "x", "-n", std::to_string(min_length), "-e", encoding, path},
      kAnalyzeTimeoutSeconds);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::vector<std::pair<uint64_t, std::string>> hits;
  std::istringstream lines(result.out);
  std::string line;
  while (std::getline(lines, line)) {
    size_t digits = line.find_first_not_of(' ');
    size_t space = line.find(' ', digits);
    if (digits == std::string::npos || space == std::string::npos) {
      ADD_FAILURE() << "unexpected strings output: " << line;
      continue;
    }
    hits.emplace_back(std::stoull(line.substr(digits, space - digits), nullptr, 16),
                      line.substr(space + 1));
  }
  return hits;
}

// A test suite that captures the sample once and shares the capture among its tests (each
// suite its own: Suite is the deriving fixture). A failed capture fails every test.
template <typename Suite> class SharedCaptureTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() { captured_ = CapturedSample::create().release(); }
  static void TearDownTestSuite() {
    delete captured_;
    captured_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(captured_, nullptr) << "the sample could not be captured"; }

  static inline CapturedSample* captured_ = nullptr;
};

} // namespace procsnap::test
