// procsnap-analyze diff on the real sample captured three times: before and after each
// SIGUSR1 (samples/README.md). The diff must name exactly the globals the mutation changed,
// with the values the sample's truth lines give, at the addresses nm gives plus the load bias;
// find the grown heap; report nothing where nothing changed; and find no change between a
// snapshot and itself.
#include "tests/e2e/analyze_commands_support.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace procsnap::test {
namespace {

struct NmSymbol {
  uint64_t address = 0;
  uint64_t size = 0;
  char type = 0;
};

// `nm -S --defined-only FILE`: name -> address, size, type letter.
std::map<std::string, NmSymbol> nmSymbols(const std::string& path) {
  CommandResult result = runCommand({"nm", "-S", "--defined-only", path}, kAnalyzeTimeoutSeconds);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::map<std::string, NmSymbol> symbols;
  std::istringstream lines(result.out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string address, size, type, name;
    if (!(fields >> address >> size >> type >> name) || type.size() != 1)
      continue; // symbols without a size have three fields
    symbols[name] = {std::stoull(address, nullptr, 16), std::stoull(size, nullptr, 16), type[0]};
  }
  return symbols;
}

class AnalyzeDiff : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    auto dir = TempDir::create("procsnap-analyze-diff");
    if (!dir.ok()) {
      ADD_FAILURE() << dir.error().message;
      return;
    }
    dir_ = new TempDir(std::move(*dir));
    auto sample = SampleProcess::start(SampleVariant::Pie);
    if (!sample.ok()) {
      ADD_FAILURE() << sample.error().message;
      return;
    }
    sample_ = sample->release();
    for (int i = 0; i < 3; ++i) {
      if (i > 0) {
        auto truth = sample_->mutate();
        if (!truth.ok()) {
          ADD_FAILURE() << truth.error().message;
          return;
        }
      }
      truths_[i] = sample_->truth();
      archives_[i] = dir_->file("sample" + std::to_string(i) + ".psnap");
      CommandResult capture = runCommand(
          {PROCSNAP_CAPTURE_BIN, "-o", archives_[i], "--quiet", std::to_string(sample_->pid())},
          kAnalyzeTimeoutSeconds);
      if (capture.exit_code != 0) {
        ADD_FAILURE() << "capture failed (" << capture.exit_code << "): " << capture.err;
        return;
      }
    }
    ready_ = true;
  }
  static void TearDownTestSuite() {
    delete sample_;
    sample_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(ready_) << "the sample could not be captured"; }

  // diff --json of the given archives; the parsed document (exit code checked by callers).
  static nlohmann::json diffJson(std::vector<std::string> args, int expected_exit) {
    args.insert(args.begin(), "diff");
    args.push_back("--json");
    CommandResult result = runAnalyze(args);
    EXPECT_EQ(result.exit_code, expected_exit) << result.err;
    EXPECT_FALSE(result.truncated);
    return parseJson(result.out);
  }

  static uint64_t truthAddress(int i, const char* key) {
    return addressOf(truths_[i][key]["addr"]);
  }

  static inline TempDir* dir_ = nullptr;
  static inline SampleProcess* sample_ = nullptr;
  static inline std::string archives_[3];
  static inline nlohmann::json truths_[3];
  static inline bool ready_ = false;
};

// The region row of a step whose new range holds address, or null.
const nlohmann::json* regionHolding(const nlohmann::json& step, uint64_t address) {
  for (const nlohmann::json& row : step["regions"]) {
    if (row["new_start"].is_null())
      continue;
    if (addressOf(row["new_start"]) <= address && address < addressOf(row["new_end"]))
      return &row;
  }
  return nullptr;
}

bool changedPageHolds(const nlohmann::json& step, uint64_t address) {
  for (const nlohmann::json& row : step["changed_pages"]) {
    uint64_t start = addressOf(row["new_start"]);
    uint64_t size = addressOf(row["end"]) - addressOf(row["start"]);
    if (start <= address && address < start + size)
      return true;
  }
  return false;
}

TEST_F(AnalyzeDiff, NamesExactlyTheChangedGlobalsWithTheirValues) {
  nlohmann::json document = diffJson({archives_[0], archives_[1]}, 1);
  ASSERT_TRUE(document.is_object());
  ASSERT_EQ(document["steps"].size(), 1u);
  const nlohmann::json& step = document["steps"][0];
  EXPECT_EQ(step["summary"]["differs"], true);

  std::string exe = truths_[0]["exe"];
  std::map<std::string, NmSymbol> nm = nmSymbols(exe);
  ASSERT_TRUE(nm.count("g_data_counter"));
  const int64_t bias = static_cast<int64_t>(truthAddress(0, "data_counter")) -
                       static_cast<int64_t>(nm["g_data_counter"].address);

  std::map<std::string, nlohmann::json> exe_globals;
  for (const nlohmann::json& global : step["globals"]) {
    if (global["module_path"] != exe)
      continue;
    std::string name = global["symbol"];
    exe_globals[name] = global;
    // Every reported global is a .data/.bss object of nm's, at nm's address plus the bias.
    ASSERT_TRUE(nm.count(name)) << name;
    EXPECT_TRUE(std::string("dDbB").find(nm[name].type) != std::string::npos) << name;
    EXPECT_EQ(addressOf(global["base_address"]), nm[name].address + static_cast<uint64_t>(bias))
        << name;
    EXPECT_EQ(global["size"], nm[name].size) << name;
  }
  std::set<std::string> names;
  for (const auto& [name, global] : exe_globals)
    names.insert(name);
  EXPECT_EQ(names, (std::set<std::string>{"g_bss_counter", "g_data_counter", "g_data_message"}));

  const nlohmann::json& counter = exe_globals["g_data_counter"];
  EXPECT_EQ(counter["format"], "integer");
  EXPECT_EQ(counter["section"], ".data");
  EXPECT_EQ(counter["old"], truths_[0]["data_counter"]["value"]);
  EXPECT_EQ(counter["new"], truths_[1]["data_counter"]["value"]);
  EXPECT_EQ(addressOf(counter["base_address"]), truthAddress(0, "data_counter"));
  const nlohmann::json& message = exe_globals["g_data_message"];
  EXPECT_EQ(message["format"], "string");
  EXPECT_EQ(message["old"], truths_[0]["data_message"]["value"]);
  EXPECT_EQ(message["new"], truths_[1]["data_message"]["value"]);
  EXPECT_EQ(message["new"], "procsnap-data-message-v1");
  const nlohmann::json& bss = exe_globals["g_bss_counter"];
  EXPECT_EQ(bss["section"], ".bss");
  EXPECT_EQ(bss["old"], truths_[0]["bss_counter"]["value"]);
  EXPECT_EQ(bss["new"], truths_[1]["bss_counter"]["value"]);
  EXPECT_EQ(addressOf(bss["base_address"]), truthAddress(0, "bss_counter"));
}

TEST_F(AnalyzeDiff, FindsTheGrownHeapAndNothingWhereNothingChanged) {
  nlohmann::json document = diffJson({archives_[0], archives_[1]}, 1);
  ASSERT_TRUE(document.is_object());
  const nlohmann::json& step = document["steps"][0];
  // The 8 MiB block (mmap-served) is new memory: an added region, or one that grew.
  const nlohmann::json& grown = truths_[1]["heap_grown"];
  ASSERT_EQ(grown.size(), 2u);
  uint64_t block = addressOf(grown[0]["addr"]);
  const nlohmann::json* row = regionHolding(step, block);
  ASSERT_NE(row, nullptr) << "no region change holds the grown block " << hex(block);
  std::string change = (*row)["change"];
  EXPECT_TRUE(change.find("added") != std::string::npos ||
              change.find("grown") != std::string::npos)
      << change;
  EXPECT_GE((*row)["size_delta"].get<int64_t>(), int64_t{8} << 20);
  // The 64-byte calloc changed [heap]'s bytes.
  uint64_t small = addressOf(grown[1]["addr"]);
  EXPECT_TRUE(changedPageHolds(step, small)) << hex(small);
  // Totals: anonymous memory grew by the block at least.
  int64_t anon_growth = 0;
  for (const nlohmann::json& total : step["totals"])
    if (total["kind"] == "anon")
      anon_growth = total["rss_delta"];
  EXPECT_GE(anon_growth, int64_t{8} << 20);

  // Nothing changed in the sample's other markers.
  for (const char* key : {"rodata_string", "heap_large", "file_mapping", "memfd", "dontdump"}) {
    uint64_t address = truthAddress(0, key);
    EXPECT_FALSE(changedPageHolds(step, address)) << key;
    const nlohmann::json* holder = regionHolding(step, address);
    if (holder) {
      EXPECT_EQ((*holder)["change"].get<std::string>().find("contents"), std::string::npos)
          << key << " " << (*holder)["change"];
    }
  }
  for (const nlohmann::json& thread : truths_[0]["threads"])
    EXPECT_FALSE(changedPageHolds(step, addressOf(thread["stack_marker_addr"]))) << thread["name"];
  EXPECT_EQ(regionHolding(step, truthAddress(0, "rodata_string")), nullptr);
  EXPECT_EQ(regionHolding(step, truthAddress(0, "file_mapping")), nullptr);
  // Most of the data was decided by digest, without decompressing.
  EXPECT_GT(step["summary"]["chunks_equal_by_digest"],
            step["summary"]["chunks_different_by_digest"]);
}

TEST_F(AnalyzeDiff, SnapshotWithItselfHasNoChange) {
  nlohmann::json document = diffJson({archives_[1], archives_[1]}, 0);
  ASSERT_TRUE(document.is_object());
  const nlohmann::json& step = document["steps"][0];
  EXPECT_EQ(document["differs"], false);
  EXPECT_EQ(step["summary"]["differs"], false);
  EXPECT_TRUE(step["regions"].empty());
  EXPECT_TRUE(step["globals"].empty());
  EXPECT_EQ(step["summary"]["bytes_changed"], 0);
  EXPECT_EQ(step["summary"]["bytes_read"], 0); // every chunk decided by its digest
  EXPECT_GT(step["summary"]["chunks_equal_by_digest"], 0);

  CommandResult text = runAnalyze({"diff", archives_[1], archives_[1]});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("regions: no change"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("globals: no change"), std::string::npos) << text.out;
}

// An archive against its own exported core: the core lacks device, inode, smaps, sharing and
// capture statistics, and what it does not know is not a difference.
TEST_F(AnalyzeDiff, ArchiveAgainstItsOwnExportedCoreHasNoChange) {
  std::string core = dir_->file("own.core");
  CommandResult exported = runAnalyze({"export-core", archives_[1], "-o", core, "--force"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  nlohmann::json document = diffJson({archives_[1], core}, 0);
  ASSERT_TRUE(document.is_object());
  const nlohmann::json& step = document["steps"][0];
  EXPECT_EQ(document["differs"], false) << step["regions"].dump();
  EXPECT_EQ(step["summary"]["regions_added"], 0);
  EXPECT_EQ(step["summary"]["regions_removed"], 0);
  EXPECT_TRUE(step["regions"].empty()) << step["regions"].dump();
  EXPECT_TRUE(step["globals"].empty());
}

TEST_F(AnalyzeDiff, TextShowsOldAndNewValuesLikeGdb) {
  CommandResult result = runAnalyze({"diff", archives_[0], archives_[1]});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  std::string counter = "sample_target:.data g_data_counter (" +
                        hex(truthAddress(0, "data_counter")) +
                        "): " + truths_[0]["data_counter"]["value"].dump() + " -> " +
                        truths_[1]["data_counter"]["value"].dump();
  EXPECT_NE(result.out.find(counter), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("g_data_message (" + hex(truthAddress(0, "data_message")) +
                            "): \"procsnap-data-message-v0\" -> \"procsnap-data-message-v1\""),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("--- " + archives_[0]), std::string::npos);
  EXPECT_NE(result.out.find("+++ " + archives_[1]), std::string::npos);
}

TEST_F(AnalyzeDiff, NewStringsIncludeTheMutationsText) {
  nlohmann::json document = diffJson({archives_[0], archives_[1], "--strings", "-n", "20"}, 1);
  ASSERT_TRUE(document.is_object());
  const nlohmann::json& step = document["steps"][0];
  std::map<std::string, std::set<uint64_t>> where;
  for (const nlohmann::json& found : step["new_strings"])
    where[found["string"]].insert(addressOf(found["address"]));
  const nlohmann::json& grown = truths_[1]["heap_grown"];
  EXPECT_TRUE(where["procsnap-heap-grown-1"].count(addressOf(grown[0]["addr"])));
  EXPECT_TRUE(where["procsnap-heap-grown-small-1"].count(addressOf(grown[1]["addr"])));
  EXPECT_TRUE(where["procsnap-data-message-v1"].count(truthAddress(1, "data_message")));
  // Unchanged text is not new.
  EXPECT_FALSE(where.count("procsnap-heap-marker-large"));
  EXPECT_FALSE(where.count("procsnap-rodata-constant-string"));
}

TEST_F(AnalyzeDiff, SeriesReportsEachStepAndTheTrend) {
  nlohmann::json document = diffJson({archives_[0], archives_[1], archives_[2]}, 1);
  ASSERT_TRUE(document.is_object());
  ASSERT_EQ(document["steps"].size(), 2u);
  EXPECT_EQ(document["steps"][1]["base"]["path"], archives_[1]);
  EXPECT_EQ(document["steps"][1]["new"]["path"], archives_[2]);
  for (const nlohmann::json& global : document["steps"][1]["globals"]) {
    if (global["symbol"] == "g_bss_counter") {
      EXPECT_EQ(global["old"], 1);
      EXPECT_EQ(global["new"], 2);
    }
  }
  bool found = false;
  for (const nlohmann::json& trend : document["trend"]) {
    if (trend["kind"] != "anon")
      continue;
    found = true;
    EXPECT_EQ(trend["trend"], "growing");
    ASSERT_EQ(trend["rss_bytes"].size(), 3u);
    EXPECT_GE(trend["rss_delta"].get<int64_t>(), int64_t{16} << 20);
  }
  EXPECT_TRUE(found);
}

TEST_F(AnalyzeDiff, BadArgumentsGiveOneErrorLine) {
  CommandResult one = runAnalyze({"diff", archives_[0]});
  EXPECT_EQ(one.exit_code, 2);
  expectOneErrorLine(one.err);
  EXPECT_NE(one.err.find("at least two sources"), std::string::npos) << one.err;
  CommandResult missing = runAnalyze({"diff", archives_[0], dir_->file("missing.psnap")});
  EXPECT_EQ(missing.exit_code, 2);
  expectOneErrorLine(missing.err);
  CommandResult length = runAnalyze({"diff", archives_[0], archives_[1], "--strings", "-n", "0"});
  EXPECT_EQ(length.exit_code, 2);
  expectOneErrorLine(length.err);
}

} // namespace
} // namespace procsnap::test
