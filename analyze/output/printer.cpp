#include "analyze/output/printer.h"

#include "common/util/terminal_text.h"

#include <llvm/Support/Format.h>
#include <llvm/Support/JSON.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace procsnap::analyze {

std::string hexString(uint64_t value) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "0x%llx", static_cast<unsigned long long>(value));
  return buffer;
}

void Printer::Table::addRow(std::vector<Cell> row) {
  row.resize(columns_.size());
  rows_.push_back(std::move(row));
}

Printer::~Printer() = default;

void Printer::warn(llvm::StringRef message) {
  if (!warned_.insert(message).second)
    return;
  warnings_.push_back(message.str());
  errs_ << "procsnap-analyze: warning: " << escapeForTerminal(message) << "\n";
  errs_.flush();
}

namespace {

std::string formatDouble(double value, int precision) {
  if (!std::isfinite(value))
    return "-";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", std::clamp(precision, 0, 17), value);
  return buffer;
}

// How a cell reads in text, by its column's type.
std::string cellText(const Printer::Cell& cell, const Printer::Column& column) {
  if (std::holds_alternative<std::monostate>(cell))
    return "-";
  if (const auto* text = std::get_if<std::string>(&cell))
    return *text;
  if (const auto* unsigned_value = std::get_if<uint64_t>(&cell))
    return column.type == Printer::Column::Type::Hex ? hexString(*unsigned_value)
                                                     : std::to_string(*unsigned_value);
  if (const auto* signed_value = std::get_if<int64_t>(&cell))
    return std::to_string(*signed_value);
  if (const auto* flag = std::get_if<bool>(&cell))
    return *flag ? "yes" : "no";
  return formatDouble(std::get<double>(cell), column.precision);
}

llvm::json::Value cellJson(const Printer::Cell& cell, const Printer::Column& column) {
  if (std::holds_alternative<std::monostate>(cell))
    return nullptr;
  if (const auto* text = std::get_if<std::string>(&cell))
    return llvm::json::isUTF8(*text) ? *text : llvm::json::fixUTF8(*text);
  if (const auto* unsigned_value = std::get_if<uint64_t>(&cell)) {
    if (column.type == Printer::Column::Type::Hex)
      return hexString(*unsigned_value);
    return *unsigned_value;
  }
  if (const auto* signed_value = std::get_if<int64_t>(&cell))
    return *signed_value;
  if (const auto* flag = std::get_if<bool>(&cell))
    return *flag;
  double value = std::get<double>(cell);
  if (!std::isfinite(value))
    return nullptr;
  return value;
}

// Indented "key: value" text, YAML-like: a list's objects start with "- ".
class TextPrinter final : public Printer {
public:
  TextPrinter(llvm::raw_ostream& os, llvm::raw_ostream& errs)
      : Printer(Format::Text, errs), os_(os) {}
  ~TextPrinter() override { finish(); }

  void beginObject(llvm::StringRef key) override {
    if (inList()) {
      frames_.push_back({Kind::Object, indent() + 2, true});
      return;
    }
    if (!key.empty() || !frames_.empty()) {
      line(key.str() + ":");
      frames_.push_back({Kind::Object, indent() + 2, false});
    } else {
      frames_.push_back({Kind::Object, indent(), false});
    }
  }
  void endObject() override { pop(); }
  void beginList(llvm::StringRef key) override {
    if (inList()) {
      line("-");
    } else if (!key.empty()) {
      line(key.str() + ":");
    }
    frames_.push_back({Kind::List, indent() + 2, false});
  }
  void endList() override { pop(); }

  void printString(llvm::StringRef key, llvm::StringRef value) override { pair(key, value); }
  void printUnsigned(llvm::StringRef key, uint64_t value) override {
    pair(key, std::to_string(value));
  }
  void printSigned(llvm::StringRef key, int64_t value) override {
    pair(key, std::to_string(value));
  }
  void printDouble(llvm::StringRef key, double value) override {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.6g", value);
    pair(key, std::isfinite(value) ? buffer : "-");
  }
  void printHex(llvm::StringRef key, uint64_t value) override { pair(key, hexString(value)); }
  void printBool(llvm::StringRef key, bool value) override { pair(key, value ? "yes" : "no"); }
  void printNull(llvm::StringRef key) override { pair(key, "-"); }
  void printStringList(llvm::StringRef key, llvm::ArrayRef<std::string> values) override {
    std::string joined = values.empty() ? "-" : "";
    for (const std::string& value : values) {
      if (!joined.empty())
        joined += ", ";
      joined += value;
    }
    pair(key, joined);
  }

  void printTable(llvm::StringRef key, const Table& table) override {
    if (!key.empty() && !inList())
      line(key.str() + ":");
    int extra = key.empty() || inList() ? 0 : 2;
    const auto& columns = table.columns();
    std::vector<std::vector<std::string>> texts;
    texts.reserve(table.rows().size());
    std::vector<size_t> widths(columns.size());
    for (size_t c = 0; c < columns.size(); ++c)
      widths[c] = columns[c].title.size();
    for (const auto& row : table.rows()) {
      std::vector<std::string> cells;
      for (size_t c = 0; c < columns.size(); ++c) {
        cells.push_back(escapeForTerminal(cellText(row[c], columns[c])));
        widths[c] = std::max(widths[c], cells.back().size());
      }
      texts.push_back(std::move(cells));
    }
    auto emit = [&](const std::vector<std::string>& cells) {
      std::string text;
      for (size_t c = 0; c < columns.size(); ++c) {
        bool last = c + 1 == columns.size();
        size_t pad = widths[c] - std::min(widths[c], cells[c].size());
        if (c > 0)
          text += "  ";
        if (columns[c].align == Column::Align::Right)
          text.append(pad, ' ');
        text += cells[c];
        if (columns[c].align == Column::Align::Left && !last)
          text.append(pad, ' ');
      }
      while (!text.empty() && text.back() == ' ')
        text.pop_back();
      os_.indent(indent() + extra) << text << "\n";
    };
    std::vector<std::string> titles;
    for (const Column& column : columns)
      titles.push_back(column.title);
    emit(titles);
    for (const auto& cells : texts)
      emit(cells);
  }

  void printLine(llvm::StringRef text) override {
    if (text.empty()) {
      os_ << "\n";
      return;
    }
    line(text.str());
  }

  void finish() override {
    frames_.clear();
    os_.flush();
  }

private:
  enum class Kind { Object, List };
  struct Frame {
    Kind kind;
    int indent;
    bool dash_pending; // an object in a list: its first line starts with "- "
  };

  bool inList() const { return !frames_.empty() && frames_.back().kind == Kind::List; }
  int indent() const { return frames_.empty() ? 0 : frames_.back().indent; }
  void pop() {
    if (!frames_.empty())
      frames_.pop_back();
  }

  // Every text line but a table's ends here: the one place input text is escaped.
  void line(const std::string& raw) {
    const std::string text = escapeForTerminal(raw);
    if (!frames_.empty() && frames_.back().dash_pending) {
      frames_.back().dash_pending = false;
      os_.indent(indent() - 2) << "- " << text << "\n";
      return;
    }
    os_.indent(indent()) << (inList() ? "- " : "") << text << "\n";
  }
  void pair(llvm::StringRef key, llvm::StringRef value) {
    if (inList())
      line(value.str());
    else
      line(key.str() + ": " + value.str());
  }

  llvm::raw_ostream& os_;
  std::vector<Frame> frames_;
};

// JSON through llvm::json::OStream; the root object is opened at creation.
class JsonPrinter final : public Printer {
public:
  JsonPrinter(llvm::raw_ostream& os, llvm::raw_ostream& errs)
      : Printer(Format::Json, errs), os_(os), json_(os, 2) {
    json_.objectBegin();
    kinds_.push_back(Kind::Object);
    json_.attribute("schema_version", kJsonSchemaVersion);
  }
  ~JsonPrinter() override { finish(); }

  void beginObject(llvm::StringRef key) override {
    if (finished_)
      return;
    open(key);
    json_.objectBegin();
    kinds_.push_back(Kind::Object);
  }
  void endObject() override { close(Kind::Object); }
  void beginList(llvm::StringRef key) override {
    if (finished_)
      return;
    open(key);
    json_.arrayBegin();
    kinds_.push_back(Kind::List);
  }
  void endList() override { close(Kind::List); }

  void printString(llvm::StringRef key, llvm::StringRef value) override {
    // json::Value requires valid UTF-8: fixUTF8 replaces invalid sequences with U+FFFD.
    value_(key, llvm::json::isUTF8(value) ? llvm::json::Value(value.str())
                                          : llvm::json::Value(llvm::json::fixUTF8(value)));
  }
  void printUnsigned(llvm::StringRef key, uint64_t value) override { value_(key, value); }
  void printSigned(llvm::StringRef key, int64_t value) override { value_(key, value); }
  void printDouble(llvm::StringRef key, double value) override {
    value_(key, std::isfinite(value) ? llvm::json::Value(value) : llvm::json::Value(nullptr));
  }
  void printHex(llvm::StringRef key, uint64_t value) override { value_(key, hexString(value)); }
  void printBool(llvm::StringRef key, bool value) override { value_(key, value); }
  void printNull(llvm::StringRef key) override { value_(key, nullptr); }
  void printStringList(llvm::StringRef key, llvm::ArrayRef<std::string> values) override {
    llvm::json::Array array;
    for (const std::string& value : values)
      array.push_back(llvm::json::isUTF8(value) ? value : llvm::json::fixUTF8(value));
    value_(key, std::move(array));
  }

  void printTable(llvm::StringRef key, const Table& table) override {
    if (finished_)
      return;
    open(key);
    json_.arrayBegin();
    const auto& columns = table.columns();
    for (const auto& row : table.rows()) {
      json_.objectBegin();
      for (size_t c = 0; c < columns.size(); ++c) {
        json_.attribute(columns[c].json_key, cellJson(row[c], columns[c]));
      }
      json_.objectEnd();
    }
    json_.arrayEnd();
    if (inObject())
      json_.attributeEnd();
  }

  void printLine(llvm::StringRef) override {} // text only, see printer.h

  void finish() override {
    if (finished_)
      return;
    while (kinds_.size() > 1)
      close(kinds_.back());
    if (!warnings().empty()) {
      json_.attributeArray("warnings", [&] {
        for (const std::string& warning : warnings())
          json_.value(warning);
      });
    }
    json_.objectEnd();
    kinds_.clear();
    finished_ = true;
    os_ << "\n";
    os_.flush();
  }

private:
  enum class Kind { Object, List };

  bool inObject() const { return !kinds_.empty() && kinds_.back() == Kind::Object; }
  void open(llvm::StringRef key) {
    if (inObject())
      json_.attributeBegin(key);
  }
  void close(Kind kind) {
    if (finished_ || kinds_.size() <= 1 || kinds_.back() != kind)
      return;
    if (kind == Kind::Object)
      json_.objectEnd();
    else
      json_.arrayEnd();
    kinds_.pop_back();
    if (inObject())
      json_.attributeEnd();
  }
  void value_(llvm::StringRef key, llvm::json::Value value) {
    if (finished_)
      return;
    if (inObject())
      json_.attribute(key, std::move(value));
    else
      json_.value(std::move(value));
  }

  llvm::raw_ostream& os_;
  llvm::json::OStream json_;
  std::vector<Kind> kinds_;
  bool finished_ = false;
};

} // namespace

std::unique_ptr<Printer> Printer::create(llvm::raw_ostream& os, Format format,
                                         llvm::raw_ostream& errs) {
  if (format == Format::Json)
    return std::make_unique<JsonPrinter>(os, errs);
  return std::make_unique<TextPrinter>(os, errs);
}

} // namespace procsnap::analyze
