// symbolize on a captured sample: the sample's globals, functions, heap and stacks are named
// as the sample itself says they are, with file:line from the sample's DWARF.
#include "tests/e2e/analyze_core_support.h"

namespace procsnap::test {
namespace {

using nlohmann::json;

class AnalyzeSymbolizeTest : public SharedCaptureTest<AnalyzeSymbolizeTest> {
protected:
  // One symbolize run over all queries; the answers in query order.
  static json symbolize(const std::vector<std::string>& queries) {
    std::vector<std::string> args = {"symbolize", captured_->archive()};
    args.insert(args.end(), queries.begin(), queries.end());
    json source = analyzeJson(args);
    if (!source.is_object() || source["addresses"].size() != queries.size()) {
      ADD_FAILURE() << "unexpected answer: " << source.dump().substr(0, 500);
      return json::array();
    }
    return source["addresses"];
  }
};

TEST_F(AnalyzeSymbolizeTest, GlobalsAreNamedWithTheirSectionAndOffset) {
  struct Expected {
    const char* key;
    uint64_t offset;
    const char* symbol;
    const char* section;
  };
  const Expected cases[] = {{"data_counter", 0, "g_data_counter", ".data"},
                            {"data_message", 10, "g_data_message", ".data"},
                            {"rodata_string", 3, "g_rodata_string", ".rodata"},
                            {"bss_counter", 4, "g_bss_counter", ".bss"},
                            {"bss_array", 3u << 20, "g_bss_array", ".bss"}};
  std::vector<std::string> queries;
  for (const Expected& c : cases)
    queries.push_back(hex(captured_->address(c.key) + c.offset));
  json answers = symbolize(queries);
  ASSERT_EQ(answers.size(), std::size(cases));
  const std::string exe = captured_->truth()["exe"];
  for (size_t i = 0; i < std::size(cases); ++i) {
    const json& answer = answers[i];
    SCOPED_TRACE(answer.dump());
    EXPECT_EQ(answer["mapped"], true);
    EXPECT_EQ(answer["module"], exe);
    EXPECT_EQ(answer["symbol"], cases[i].symbol);
    EXPECT_EQ(answer["symbol_offset"], cases[i].offset);
    EXPECT_EQ(hexValue(answer["symbol_address"]), captured_->address(cases[i].key));
    EXPECT_EQ(answer["section"], cases[i].section);
    // DWARF (the sample is built with -g) names the global too.
    ASSERT_TRUE(answer.contains("global"));
    EXPECT_EQ(answer["global"]["name"], cases[i].symbol);
    EXPECT_EQ(answer["global"]["offset"], cases[i].offset);
  }
  // The last .bss case lies in the anonymous mapping, which is still the executable's .bss.
  EXPECT_EQ(answers[4]["region"]["kind"], "bss");
  EXPECT_EQ(answers[4]["region"]["path"], "");
}

TEST_F(AnalyzeSymbolizeTest, SymbolNamesResolveToTheirAddresses) {
  json answers = symbolize({"g_data_counter", "main", "libc.so.6!malloc", "exe!g_bss_array"});
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_EQ(hexValue(answers[0]["address"]), captured_->address("data_counter"));
  EXPECT_EQ(answers[1]["symbol"], "main");
  EXPECT_EQ(answers[1]["section"], ".text");
  EXPECT_EQ(answers[1]["function"], "main");
  EXPECT_NE(answers[1]["file"].get<std::string>().find("sample_target.cpp"), std::string::npos);
  EXPECT_GT(answers[1]["line"].get<uint64_t>(), 0u);
  EXPECT_NE(answers[2]["module"].get<std::string>().find("libc.so.6"), std::string::npos);
  EXPECT_EQ(answers[2]["region"]["kind"], "text");
  EXPECT_EQ(answers[2]["section"], ".text");
  EXPECT_EQ(hexValue(answers[3]["address"]), captured_->address("bss_array"));
}

TEST_F(AnalyzeSymbolizeTest, HeapStacksAndUnmappedAddresses) {
  const json& truth = captured_->truth();
  json answers = symbolize({hex(captured_->address("heap_small")),
                            hex(addressOf(truth["threads"][0]["stack_marker_addr"])), "0x1",
                            hex(captured_->address("reservation") + 4096)});
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_EQ(answers[0]["region"]["kind"], "heap");
  EXPECT_FALSE(answers[0].contains("module"));
  EXPECT_EQ(answers[1]["region"]["kind"], "thread-stack");
  EXPECT_EQ(answers[1]["region"]["page_state"], "stored");
  EXPECT_EQ(answers[2]["mapped"], false);
  EXPECT_EQ(answers[3]["region"]["page_state"], "not-present"); // reserved, never touched
}

TEST_F(AnalyzeSymbolizeTest, TextAndJsonAgreeAndBadQueriesFail) {
  std::string address = hex(captured_->address("data_message") + 1);
  std::string text = analyzeText({"symbolize", captured_->archive(), address});
  EXPECT_NE(text.find("symbol: g_data_message"), std::string::npos) << text;
  EXPECT_NE(text.find("section: .data"), std::string::npos) << text;
  EXPECT_NE(text.find("symbol_offset: 1"), std::string::npos) << text;

  CommandResult unknown = runAnalyze({"symbolize", captured_->archive(), "no_such_symbol_xyz"});
  EXPECT_EQ(unknown.exit_code, 2);
  expectOneErrorLine(unknown.err);
  CommandResult bad_number = runAnalyze({"symbolize", captured_->archive(), "12abc"});
  EXPECT_EQ(bad_number.exit_code, 2);
  expectOneErrorLine(bad_number.err);
  CommandResult no_address = runAnalyze({"symbolize", captured_->archive()});
  EXPECT_EQ(no_address.exit_code, 2);
  expectOneErrorLine(no_address.err);
}

} // namespace
} // namespace procsnap::test
