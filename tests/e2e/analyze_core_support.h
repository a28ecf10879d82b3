// Shared by the end-to-end tests of info, maps, sections and symbolize: running the analyzer
// in both output modes and picking a source's entry out of the JSON document.
#pragma once

#include "tests/e2e/analyze_commands_support.h"

#include <sstream>

namespace procsnap::test {

// The analyzer's JSON for one source: the first entry of "sources" (a null value, and a test
// failure, when the run failed).
inline nlohmann::json analyzeJson(std::vector<std::string> args) {
  args.push_back("--json");
  CommandResult result = runAnalyze(args);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  nlohmann::json document = parseJson(result.out);
  if (!document.is_object() || !document.contains("sources") || document["sources"].empty()) {
    ADD_FAILURE() << "no sources in: " << result.out.substr(0, 500);
    return nullptr;
  }
  return document["sources"][0];
}

inline std::string analyzeText(std::vector<std::string> args) {
  CommandResult result = runAnalyze(args);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return result.out;
}

// The rows of a text table, split on whitespace: the lines after the header line (whose first
// word is `header_start`) up to a blank line, a "- " list item or a "key:" line.
inline std::vector<std::vector<std::string>> textTable(const std::string& text,
                                                       const std::string& header_start) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream lines(text);
  std::string line;
  bool in_table = false;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::vector<std::string> row;
    std::string field;
    while (fields >> field)
      row.push_back(field);
    if (!in_table) {
      in_table = !row.empty() && row[0] == header_start;
      continue;
    }
    bool key_line = !row.empty() && row[0].size() > 1 && row[0].back() == ':' &&
                    row[0].find_first_not_of("abcdefghijklmnopqrstuvwxyz_:") == std::string::npos;
    if (row.empty() || row[0] == "-" || key_line)
      break;
    rows.push_back(std::move(row));
  }
  return rows;
}

inline uint64_t hexValue(const nlohmann::json& value) {
  return value.is_string() ? std::stoull(value.get<std::string>(), nullptr, 16)
                           : value.get<uint64_t>();
}

// Address of a symbol in an ELF file according to nm, or 0.
inline uint64_t nmAddress(const std::string& file, const std::string& symbol) {
  CommandResult nm = runCommand({"nm", file}, kAnalyzeTimeoutSeconds);
  EXPECT_EQ(nm.exit_code, 0) << nm.err;
  std::istringstream lines(nm.out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string address, type, name;
    if (fields >> address >> type >> name && name == symbol)
      return std::stoull(address, nullptr, 16);
  }
  return 0;
}

} // namespace procsnap::test
