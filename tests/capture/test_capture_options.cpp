#include "capture/capture_options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace procsnap {
namespace {

Result<CaptureOptions> parse(std::vector<std::string> args) {
  return parseCaptureOptions(args);
}

TEST(CaptureOptions, PidOnlyGivesDefaults) {
  auto options = parse({"1234"});
  ASSERT_TRUE(options.ok()) << options.error().message;
  EXPECT_EQ(options->pid, 1234);
  EXPECT_TRUE(options->output.empty());
  EXPECT_FALSE(options->force);
  EXPECT_FALSE(options->all);
  EXPECT_EQ(options->level, 3);
  EXPECT_EQ(options->jobs, 0u);
  EXPECT_FALSE(options->max_buffer.has_value());
  EXPECT_FALSE(options->toStdout());
}

TEST(CaptureOptions, EveryOptionAndPermutedOrder) {
  auto options = parse({"--force",
                        "42",
                        "-o",
                        "out.psnap",
                        "--all",
                        "--filter",
                        "heap,bss",
                        "--exclude",
                        "thread-stack",
                        "--exclude",
                        "/usr/lib/libfoo.so",
                        "--exclude",
                        "*.so*",
                        "--environ",
                        "--embed-binaries",
                        "-j",
                        "3",
                        "--level",
                        "7",
                        "--max-buffer",
                        "64M",
                        "--stats",
                        "--json",
                        "--quiet"});
  ASSERT_TRUE(options.ok()) << options.error().message;
  EXPECT_EQ(options->pid, 42);
  EXPECT_EQ(options->output, "out.psnap");
  EXPECT_TRUE(options->force);
  EXPECT_TRUE(options->all);
  EXPECT_EQ(options->only_kinds, (std::vector<RegionKind>{RegionKind::Heap, RegionKind::Bss}));
  EXPECT_EQ(options->exclude_kinds, std::vector<RegionKind>{RegionKind::ThreadStack});
  EXPECT_EQ(options->exclude_paths, (std::vector<std::string>{"/usr/lib/libfoo.so", "*.so*"}));
  EXPECT_TRUE(options->include_environ);
  EXPECT_TRUE(options->embed_binaries);
  EXPECT_EQ(options->jobs, 3u);
  EXPECT_EQ(options->level, 7);
  EXPECT_EQ(options->max_buffer, uint64_t{64} << 20);
  EXPECT_TRUE(options->stats);
  EXPECT_TRUE(options->json);
  EXPECT_TRUE(options->quiet);
}

TEST(CaptureOptions, LongOptionWithEqualsAndStdout) {
  auto options = parse({"--output=-", "--jobs=2", "7"});
  ASSERT_TRUE(options.ok()) << options.error().message;
  EXPECT_TRUE(options->toStdout());
  EXPECT_EQ(options->jobs, 2u);
}

TEST(CaptureOptions, HelpAndVersionNeedNoPid) {
  auto help = parse({"--help"});
  ASSERT_TRUE(help.ok());
  EXPECT_TRUE(help->help);
  auto version = parse({"--version"});
  ASSERT_TRUE(version.ok());
  EXPECT_TRUE(version->version);
  EXPECT_NE(captureUsage("procsnap-capture").find("--max-buffer"), std::string::npos);
}

TEST(CaptureOptions, UsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {{}, "missing PID"},
      {{"--bogus", "1"}, "unknown option --bogus"},
      {{"-x", "1"}, "unknown option -x"},
      {{"1", "-o"}, "option -o needs a value"},
      {{"1", "--level"}, "option --level needs a value"},
      {{"abc"}, "invalid PID 'abc'"},
      {{"0"}, "invalid PID '0'"},
      {{"-5"}, "unknown option -5"},
      {{"99999999999"}, "invalid PID"},
      {{"1", "2"}, "unexpected argument '2'"},
      {{"--filter", "heap,nonsense", "1"}, "unknown region kind 'nonsense'"},
      {{"--exclude", "nonsense", "1"}, "--exclude takes a region kind, a path or a glob"},
      {{"-j", "0", "1"}, "--jobs takes a number"},
      {{"-j", "x", "1"}, "--jobs takes a number"},
      {{"--level", "0", "1"}, "--level takes a number"},
      {{"--level", "23", "1"}, "--level takes a number"},
      {{"--max-buffer", "12Q", "1"}, "invalid size '12Q'"},
      {{"--max-buffer", "99999999999T", "1"}, "too large"},
      {{"-o", "", "1"}, "--output needs"},
      {{"--output"}, "option --output needs a value"},
      {{"--force=yes", "1"}, "option --force does not take a value"},
  };
  for (const Case& c : cases) {
    auto options = parse(c.args);
    ASSERT_FALSE(options.ok()) << "args: " << ::testing::PrintToString(c.args);
    EXPECT_EQ(options.error().code, ErrorCode::InvalidArgument);
    EXPECT_NE(options.error().message.find(c.message_part), std::string::npos)
        << options.error().message << " (wanted: " << c.message_part << ")";
  }
}

TEST(CaptureOptions, ByteSizes) {
  EXPECT_EQ(*parseByteSize("0"), 0u);
  EXPECT_EQ(*parseByteSize("4096"), 4096u);
  EXPECT_EQ(*parseByteSize("64K"), 64u << 10);
  EXPECT_EQ(*parseByteSize("64k"), 64u << 10);
  EXPECT_EQ(*parseByteSize("3M"), 3u << 20);
  EXPECT_EQ(*parseByteSize("3MiB"), 3u << 20);
  EXPECT_EQ(*parseByteSize("3MB"), 3u << 20);
  EXPECT_EQ(*parseByteSize("2G"), uint64_t{2} << 30);
  EXPECT_EQ(*parseByteSize("1T"), uint64_t{1} << 40);
  for (const char* bad : {"", "M", "-1", "1.5G", "1X", "1 M", "18446744073709551616"})
    EXPECT_FALSE(parseByteSize(bad).ok()) << bad;
}

TEST(CaptureOptions, DefaultMaxBufferIsAQuarterOfMemAvailable) {
  const std::string meminfo = "MemTotal:       32000000 kB\nMemFree:         1000000 kB\n"
                              "MemAvailable:    8000000 kB\nBuffers: 1 kB\n";
  EXPECT_EQ(defaultMaxBuffer(meminfo), uint64_t{8000000} * 1024 / 4);
  EXPECT_EQ(defaultMaxBuffer(""), kFallbackMaxBuffer);
  EXPECT_EQ(defaultMaxBuffer("MemAvailable: 100 kB\n"), kMinDefaultMaxBuffer);
  EXPECT_EQ(defaultMaxBuffer("MemAvailable: garbage\n"), kFallbackMaxBuffer);
}

} // namespace
} // namespace procsnap
