// sections on captured samples (PIE and non-PIE): section addresses are readelf's plus the
// load bias, every byte of a module's regions is accounted for, and .bss is where it really
// is (the file mapping's tail plus the anonymous mapping after it).
#include "tests/e2e/analyze_core_support.h"

#include <map>

namespace procsnap::test {
namespace {

using nlohmann::json;

struct ReadelfSection {
  uint64_t address = 0, size = 0;
  std::string type;
};

std::map<std::string, ReadelfSection> readelfSections(const std::string& file) {
  std::map<std::string, ReadelfSection> sections;
  CommandResult readelf = runCommand({"readelf", "-SW", file}, kAnalyzeTimeoutSeconds);
  EXPECT_EQ(readelf.exit_code, 0) << readelf.err;
  std::istringstream lines(readelf.out);
  std::string line;
  while (std::getline(lines, line)) {
    size_t close = line.find("] ");
    if (line.find("  [") != 0 || close == std::string::npos ||
        line.find("[Nr]") != std::string::npos)
      continue;
    std::istringstream fields(line.substr(close + 2));
    std::string name, type, address, offset, size, entry_size, flags;
    fields >> name >> type >> address >> offset >> size >> entry_size >> flags;
    if (flags.find('A') == std::string::npos || name == "NULL")
      continue; // only allocated sections occupy memory
    sections[name] = {std::stoull(address, nullptr, 16), std::stoull(size, nullptr, 16), type};
  }
  return sections;
}

class AnalyzeSectionsTest : public ::testing::TestWithParam<SampleVariant> {
protected:
  static void TearDownTestSuite() { captured().clear(); }
  void SetUp() override {
    auto& slot = captured()[GetParam()];
    if (!slot)
      slot = CapturedSample::create(GetParam());
    ASSERT_NE(slot, nullptr) << "the sample could not be captured";
    sample_ = slot.get();
  }
  static std::map<SampleVariant, std::unique_ptr<CapturedSample>>& captured() {
    static std::map<SampleVariant, std::unique_ptr<CapturedSample>> all;
    return all;
  }
  json exeModule(const json& source) {
    for (const json& module : source["modules"])
      if (module["path"] == sample_->truth()["exe"])
        return module;
    ADD_FAILURE() << "no module for the executable";
    return nullptr;
  }

  CapturedSample* sample_ = nullptr;
};

TEST_P(AnalyzeSectionsTest, SectionAddressesAreReadelfPlusTheLoadBias) {
  const std::string exe = sample_->truth()["exe"];
  json source = analyzeJson({"sections", "--module", exe, sample_->archive()});
  ASSERT_EQ(source["modules"].size(), 1u);
  json module = source["modules"][0];
  const uint64_t bias = hexValue(module["load_bias"]);
  EXPECT_EQ(bias, sample_->address("data_counter") - nmAddress(exe, "g_data_counter"));
  if (GetParam() == SampleVariant::NoPie) {
    EXPECT_EQ(bias, 0u);
  }
  auto expected = readelfSections(exe);
  ASSERT_EQ(module["sections"].size(), expected.size());
  for (const json& section : module["sections"]) {
    std::string name = section["name"];
    ASSERT_EQ(expected.count(name), 1u) << name;
    EXPECT_EQ(hexValue(section["start"]), expected[name].address + bias) << name;
    EXPECT_EQ(section["size"], expected[name].size) << name;
    EXPECT_EQ(hexValue(section["end"]), expected[name].address + expected[name].size + bias);
    EXPECT_EQ(section["type"], expected[name].type) << name;
  }
}

TEST_P(AnalyzeSectionsTest, EveryByteOfEveryModuleRegionIsAccountedFor) {
  json source = analyzeJson({"sections", sample_->archive()});
  ASSERT_GE(source["modules"].size(), 4u); // the sample, libc, libstdc++, ld.so, ...
  for (const json& module : source["modules"]) {
    SCOPED_TRACE(module["path"].get<std::string>());
    EXPECT_EQ(module["found"], "sketch");
    ASSERT_FALSE(module["regions"].empty());
    for (const json& region : module["regions"]) {
      uint64_t cursor = hexValue(region["start"]);
      uint64_t sum = 0;
      for (const json& span : region["spans"]) {
        EXPECT_EQ(hexValue(span["start"]), cursor) << "a gap or an overlap";
        EXPECT_EQ(span["size"].get<uint64_t>(), hexValue(span["end"]) - hexValue(span["start"]));
        EXPECT_NE(span["label"], "<?>");
        cursor = hexValue(span["end"]);
        sum += span["size"].get<uint64_t>();
      }
      EXPECT_EQ(cursor, hexValue(region["end"]));
      EXPECT_EQ(sum, region["size"]);
      EXPECT_EQ(region["accounted"], region["size"]);
    }
  }
}

TEST_P(AnalyzeSectionsTest, BssSpansTheFileMappingTailAndTheAnonymousMapping) {
  const std::string exe = sample_->truth()["exe"];
  json source = analyzeJson({"sections", "--module", exe, sample_->archive()});
  json module = source["modules"][0];
  const json& bss = module["bss"];
  ASSERT_TRUE(bss.is_object());
  const uint64_t array = sample_->address("bss_array");
  EXPECT_LE(hexValue(bss["start"]), array);
  EXPECT_GE(hexValue(bss["end"]), array + (4u << 20));
  uint64_t sum = 0;
  bool in_file = false, in_anon = false;
  for (const json& part : bss["parts"]) {
    sum += part["size"].get<uint64_t>();
    auto live = mappingOf(sample_->pid(), hexValue(part["start"]));
    ASSERT_TRUE(live.has_value());
    EXPECT_EQ(live->start, hexValue(part["region_start"]));
    if (live->path.empty()) {
      in_anon = true;
      EXPECT_EQ(part["region_kind"], "bss");
      EXPECT_EQ(hexValue(part["start"]), live->start); // the anonymous mapping starts in .bss
    } else {
      in_file = true;
      EXPECT_EQ(live->path, exe);
      EXPECT_EQ(hexValue(part["end"]), live->end); // the rest of the file mapping's last page
    }
  }
  EXPECT_EQ(sum, bss["size"]);
  EXPECT_TRUE(in_anon);
  // .bss starts inside the rw file mapping unless it happens to start on a page boundary.
  EXPECT_EQ(in_file, hexValue(bss["start"]) % 4096 != 0);
  // The anonymous mapping is not all .bss: its page-rounded tail is labelled as such.
  for (const json& region : module["regions"]) {
    if (region["kind"] != "bss")
      continue;
    const json& last = region["spans"].back();
    if (hexValue(bss["end"]) % 4096 != 0) {
      EXPECT_EQ(last["label"], "[unmapped]");
    }
  }
}

TEST_P(AnalyzeSectionsTest, TextAndJsonAgree) {
  const std::string exe = sample_->truth()["exe"];
  json source = analyzeJson({"sections", "--module", exe, sample_->archive()});
  std::string text = analyzeText({"sections", "--module", exe, sample_->archive()});
  auto rows = textTable(text, "NAME");
  const json& sections = source["modules"][0]["sections"];
  ASSERT_EQ(rows.size(), sections.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSERT_GE(rows[i].size(), 6u);
    EXPECT_EQ(rows[i][0], sections[i]["name"]);
    EXPECT_EQ(rows[i][3], sections[i]["start"]);
    EXPECT_EQ(rows[i][5], std::to_string(sections[i]["size"].get<uint64_t>()));
  }
  CommandResult unknown =
      runAnalyze({"sections", "--module", "no-such-module", sample_->archive()});
  EXPECT_EQ(unknown.exit_code, 2);
  expectOneErrorLine(unknown.err);
}

INSTANTIATE_TEST_SUITE_P(Variants, AnalyzeSectionsTest,
                         ::testing::Values(SampleVariant::Pie, SampleVariant::NoPie),
                         [](const auto& info) {
                           return info.param == SampleVariant::Pie ? "Pie" : "NoPie";
                         });

} // namespace
} // namespace procsnap::test
