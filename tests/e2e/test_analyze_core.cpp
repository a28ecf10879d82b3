// ELF cores as sources: gdb's gcore of the stopped sample against procsnap's capture of it in
// the same state. maps, sections and strings must agree; compressed copies (zstd, xz, gzip,
// lz4) open the same; truncated .zst and .lz4 copies say they are truncated.
#include "tests/e2e/analyze_core_support.h"

#include <map>
#include <set>

namespace procsnap::test {
namespace {

using nlohmann::json;

// gcore of the sample (about 160 MiB, mostly zeros of reserved arenas) takes a few seconds.
constexpr int kGcoreTimeoutSeconds = 120;
constexpr int kMadvDontdump = 16;

class AnalyzeCoreTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    auto dir = TempDir::create("procsnap-core-e2e");
    if (!dir.ok())
      return;
    dir_ = new TempDir(std::move(*dir));
    auto sample = SampleProcess::start(SampleVariant::Pie);
    if (!sample.ok())
      return;
    sample_ = sample->release();
    core_ = dir_->file("sample.core");
    archive_ = dir_->file("sample.psnap");
    // gcore writes every anonymous mapping in full, so the sample's untouched 32 GiB
    // reservation would make a 32 GiB core: mark it MADV_DONTDUMP first (gdb honors "dd").
    // Both the core and the capture are taken after that, with the sample idle.
    const json& truth = sample_->truth();
    std::string madvise = "call (int)madvise(" + truth["reservation"]["addr"].get<std::string>() +
                          ", " + std::to_string(truth["reservation"]["size"].get<uint64_t>()) +
                          ", " + std::to_string(kMadvDontdump) + ")";
    CommandResult gcore = runCommand({"gdb", "-batch", "-nx", "-p", std::to_string(sample_->pid()),
                                      "-ex", madvise, "-ex", "gcore " + core_},
                                     kGcoreTimeoutSeconds);
    if (gcore.exit_code != 0) {
      setup_error_ = "gcore failed: " + gcore.err;
      return;
    }
    CommandResult capture = runCommand(
        {PROCSNAP_CAPTURE_BIN, "-o", archive_, "--quiet", std::to_string(sample_->pid())},
        kAnalyzeTimeoutSeconds);
    if (capture.exit_code != 0)
      setup_error_ = "capture failed: " + capture.err;
  }
  static void TearDownTestSuite() {
    delete sample_;
    delete dir_;
    sample_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(sample_, nullptr) << "the sample could not be started";
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
  }

  static json regionsOf(const std::string& source) {
    json document = analyzeJson({"maps", source});
    return document.is_object() ? document["regions"] : json::array();
  }

  static inline TempDir* dir_ = nullptr;
  static inline SampleProcess* sample_ = nullptr;
  static inline std::string core_, archive_, setup_error_;
};

// A core has no smaps: its RSS is unknown, in the rows and in the totals (never 0).
TEST_F(AnalyzeCoreTest, UnknownRssIsUnknownInTotals) {
  json document = analyzeJson({"maps", core_});
  ASSERT_TRUE(document.is_object());
  ASSERT_FALSE(document["totals"].empty());
  for (const json& region : document["regions"])
    EXPECT_TRUE(region["rss_kib"].is_null()) << region.dump();
  for (const json& total : document["totals"]) {
    EXPECT_TRUE(total["rss_kib"].is_null()) << total.dump();
    EXPECT_TRUE(total["pss_kib"].is_null()) << total.dump();
  }
  std::string text = analyzeText({"maps", core_});
  auto totals = textTable(text, "KIND");
  ASSERT_FALSE(totals.empty());
  EXPECT_EQ(totals.back()[0], "total");
  EXPECT_EQ(totals.back()[3], "-") << text; // KIND REGIONS SIZE RSS
}

TEST_F(AnalyzeCoreTest, MapsAgreeWithTheCapture) {
  json core = regionsOf(core_);
  json captured = regionsOf(archive_);
  ASSERT_FALSE(core.empty());
  std::map<uint64_t, json> by_start;
  for (const json& region : captured)
    by_start[hexValue(region["start"])] = region;
  // What gcore leaves out: MADV_DONTDUMP mappings and [vvar]s (gdb never dumps them).
  std::set<uint64_t> dontdump = {addressOf(sample_->truth()["dontdump"]["addr"]),
                                 addressOf(sample_->truth()["reservation"]["addr"])};
  std::set<uint64_t> seen;
  for (const json& region : core) {
    uint64_t start = hexValue(region["start"]);
    SCOPED_TRACE(hex(start));
    ASSERT_TRUE(by_start.count(start)) << region.dump();
    const json& expected = by_start[start];
    seen.insert(start);
    EXPECT_EQ(region["end"], expected["end"]);
    EXPECT_EQ(region["path"], expected["path"]);
    EXPECT_EQ(hexValue(region["offset"]), hexValue(expected["offset"]));
    // gcore writes mappings without permissions as readable, and [vsyscall] as r-x.
    std::string perms = expected["perms"];
    if (perms != "---p" && expected["path"] != "[vsyscall]") {
      EXPECT_EQ(region["perms"], expected["perms"]);
      EXPECT_EQ(region["kind"], expected["kind"]);
    }
  }
  for (const json& region : captured) {
    uint64_t start = hexValue(region["start"]);
    if (seen.count(start))
      continue;
    std::string path = region["path"];
    EXPECT_TRUE(dontdump.count(start) || path == "[vvar]" || path == "[vvar_vclock]")
        << "missing from the core: " << region.dump();
  }
}

TEST_F(AnalyzeCoreTest, SectionsAgreeWithTheCapture) {
  json core = analyzeJson({"sections", core_});
  json captured = analyzeJson({"sections", archive_});
  ASSERT_TRUE(core.is_object() && captured.is_object());
  std::map<std::string, json> core_modules;
  for (const json& module : core["modules"])
    core_modules[module["path"]] = module;
  ASSERT_GE(captured["modules"].size(), 4u);
  for (const json& module : captured["modules"]) {
    std::string path = module["path"];
    SCOPED_TRACE(path);
    ASSERT_TRUE(core_modules.count(path));
    const json& other = core_modules[path];
    EXPECT_EQ(other["load_bias"], module["load_bias"]);
    ASSERT_EQ(other["sections"].size(), module["sections"].size());
    for (size_t i = 0; i < module["sections"].size(); ++i) {
      EXPECT_EQ(other["sections"][i]["name"], module["sections"][i]["name"]);
      EXPECT_EQ(other["sections"][i]["start"], module["sections"][i]["start"]);
      EXPECT_EQ(other["sections"][i]["size"], module["sections"][i]["size"]);
    }
  }
}

TEST_F(AnalyzeCoreTest, StringsHoldWhatTheSampleReports) {
  const json& truth = sample_->truth();
  std::vector<std::pair<uint64_t, std::string>> expected = {
      {addressOf(truth["data_message"]["addr"]), truth["data_message"]["value"]},
      {addressOf(truth["rodata_string"]["addr"]), truth["rodata_string"]["value"]},
      {addressOf(truth["heap_small"]["addr"]), truth["heap_small"]["value"]},
      {addressOf(truth["heap_large"]["addr"]), truth["heap_large"]["value"]}};
  for (const json& thread : truth["threads"])
    expected.push_back({addressOf(thread["stack_marker_addr"]), thread["stack_marker"]});
  // One region at a time: the whole core has hundreds of thousands of strings (library text
  // read from the files included).
  // Hits of strings --region ADDR on a source, by address.
  auto hitsInRegion = [](uint64_t address, const std::string& source) {
    std::map<uint64_t, std::string> found;
    // strings prints one document per source, not the "sources" list.
    CommandResult result = runAnalyze({"strings", "--json", "--region", hex(address), source});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    json document = parseJson(result.out);
    if (document.is_object())
      for (const json& hit : document["strings"])
        found[addressOf(hit["address"])] = hit["string"];
    return found;
  };
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& [address, text] = expected[i];
    SCOPED_TRACE(text);
    std::map<uint64_t, std::string> in_core = hitsInRegion(address, core_);
    ASSERT_TRUE(in_core.count(address)) << hex(address);
    EXPECT_EQ(in_core[address].substr(0, text.size()), text);
    // .data and the heap: what the capture finds there, the core finds at the same addresses
    // (each run costs about a second, so not for every region).
    if (i == 0 || i == 2) {
      for (const auto& [where, string] : hitsInRegion(address, archive_))
        EXPECT_EQ(in_core[where], string) << hex(where);
    }
  }
  // The MADV_DONTDUMP secret's region is not in the core at all.
  CommandResult secret =
      runAnalyze({"strings", "--region", hex(addressOf(truth["dontdump"]["addr"])), core_});
  EXPECT_EQ(secret.exit_code, 2);
  EXPECT_NE(secret.err.find("not in any region"), std::string::npos) << secret.err;
}

TEST_F(AnalyzeCoreTest, CompressedCopiesOpenTheSame) {
  json plain = regionsOf(core_);
  ASSERT_FALSE(plain.empty());
  for (const std::string& tool : std::vector<std::string>{"zstd -1 -T2 -q -c", "xz -0 -T2 -c",
                                                          "gzip -1 -c", "lz4 -1 -q -c"}) {
    std::string out = core_ + "." + tool.substr(0, tool.find(' '));
    CommandResult compress =
        runCommand({"sh", "-c", tool + " < '" + core_ + "' > '" + out + "'"}, kGcoreTimeoutSeconds);
    ASSERT_EQ(compress.exit_code, 0) << compress.err;
    EXPECT_EQ(regionsOf(out), plain) << tool;
    std::remove(out.c_str());
  }
}

TEST_F(AnalyzeCoreTest, TruncatedCompressedCoresSaySo) {
  for (const std::string& tool : std::vector<std::string>{"zstd -1 -q -c", "lz4 -1 -q -c"}) {
    std::string out = core_ + ".cut." + tool.substr(0, tool.find(' '));
    CommandResult compress =
        runCommand({"sh", "-c", tool + " < '" + core_ + "' | head -c 300000 > '" + out + "'"},
                   kGcoreTimeoutSeconds);
    ASSERT_EQ(compress.exit_code, 0) << compress.err;
    CommandResult result = runAnalyze({"maps", out});
    EXPECT_EQ(result.exit_code, 2);
    expectOneErrorLine(result.err);
    EXPECT_NE(result.err.find("is truncated: the compressed stream ends inside a frame"),
              std::string::npos)
        << result.err;
  }
}

} // namespace
} // namespace procsnap::test
