// One output code path, two back ends (like LLVM's ScopedPrinter): commands describe what
// they print (objects, lists, typed values, tables) and the printer chosen once in main
// renders it as indented text or as JSON (llvm::json::OStream). docs/JSON.md is the schema.
//
// Value conventions, both back ends:
// - printHex: addresses, offsets, flags. Text "0x7f12…"; JSON the string "0x7f12…" (lowercase,
//   no padding), because JSON numbers lose precision above 2^53 in JavaScript.
// - printUnsigned/printSigned/printDouble: sizes, counts, times. JSON numbers.
// - Keys are snake_case; inside a list the key is ignored.
// The JSON document is one object (opened by create, closed by finish) whose first member is
// "schema_version": kJsonSchemaVersion. Warnings go to stderr once each, and in JSON also to a
// final "warnings" list of the root object.
#pragma once

#include <llvm/ADT/ArrayRef.h>
#include <llvm/ADT/StringRef.h>
#include <llvm/ADT/StringSet.h>
#include <llvm/Support/raw_ostream.h>

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace procsnap::analyze {

// The version of every JSON document's layout (docs/JSON.md, "Compatibility"): raised when a
// member is removed, renamed or changes type or meaning; adding members keeps it.
inline constexpr int kJsonSchemaVersion = 2;

class Printer {
public:
  enum class Format { Text, Json };

  // os receives the output; warnings go to errs (stderr by default).
  static std::unique_ptr<Printer> create(llvm::raw_ostream& os, Format format,
                                         llvm::raw_ostream& errs = llvm::errs());
  virtual ~Printer();
  Printer(const Printer&) = delete;
  Printer& operator=(const Printer&) = delete;

  Format format() const { return format_; }
  bool isJson() const { return format_ == Format::Json; }

  // Nesting. Prefer the RAII scopes below. Text: "key:" then the contents indented by two.
  virtual void beginObject(llvm::StringRef key = "") = 0;
  virtual void endObject() = 0;
  virtual void beginList(llvm::StringRef key = "") = 0;
  virtual void endList() = 0;

  // Text: "key: value".
  virtual void printString(llvm::StringRef key, llvm::StringRef value) = 0;
  virtual void printUnsigned(llvm::StringRef key, uint64_t value) = 0;
  virtual void printSigned(llvm::StringRef key, int64_t value) = 0;
  virtual void printDouble(llvm::StringRef key, double value) = 0;
  virtual void printHex(llvm::StringRef key, uint64_t value) = 0;
  virtual void printBool(llvm::StringRef key, bool value) = 0; // text: "yes" / "no"
  virtual void printNull(llvm::StringRef key) = 0;             // text: "-"
  // Text: "key: a, b, c" on one line; JSON: a list of strings.
  virtual void printStringList(llvm::StringRef key, llvm::ArrayRef<std::string> values) = 0;

  // Tables: text prints aligned columns under a header line (like pmap -X), after a "key:"
  // line when key is not empty; JSON prints a list of objects, one per row, keyed by the
  // columns' json_key with typed values.
  struct Column {
    enum class Align { Left, Right };
    enum class Type { String, Unsigned, Signed, Double, Hex, Bool };
    std::string title;    // text header
    std::string json_key; // JSON member name
    Type type = Type::String;
    Align align = Align::Left;
    int precision = 2; // Double: digits after the point in text (JSON prints full precision)
  };
  // A cell holds a value of its column's type (Hex and Unsigned take uint64_t), or nothing:
  // text "-", JSON null. A cell of the wrong type is printed as it is, never dropped. A bool
  // reads "yes"/"no" in text, like printBool.
  using Cell = std::variant<std::monostate, std::string, uint64_t, int64_t, double, bool>;
  class Table {
  public:
    explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}
    // A row with fewer cells than columns is padded with empty cells.
    void addRow(std::vector<Cell> row);
    const std::vector<Column>& columns() const { return columns_; }
    const std::vector<std::vector<Cell>>& rows() const { return rows_; }
    bool empty() const { return rows_.empty(); }

  private:
    std::vector<Column> columns_;
    std::vector<std::vector<Cell>> rows_;
  };
  virtual void printTable(llvm::StringRef key, const Table& table) = 0;

  // Free-form text (hex dumps, blank lines, headings): the text back end prints the line
  // verbatim at the current indentation; the JSON back end drops it, so a command that uses
  // it must also print the same content as structured values (typically only when isJson()).
  virtual void printLine(llvm::StringRef text) = 0;

  // Prints "procsnap-analyze: warning: message" to errs once per distinct message.
  void warn(llvm::StringRef message);
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Closes what is open and, in JSON, the root object; flushes. Called by the destructor
  // when not called before; idempotent.
  virtual void finish() = 0;

protected:
  Printer(Format format, llvm::raw_ostream& errs) : format_(format), errs_(errs) {}

private:
  Format format_;
  llvm::raw_ostream& errs_;
  llvm::StringSet<> warned_;
  std::vector<std::string> warnings_;
};

// RAII scopes: DictScope d(printer, "process"); ... closes at end of scope.
class DictScope {
public:
  explicit DictScope(Printer& printer, llvm::StringRef key = "") : printer_(printer) {
    printer_.beginObject(key);
  }
  ~DictScope() { printer_.endObject(); }
  DictScope(const DictScope&) = delete;
  DictScope& operator=(const DictScope&) = delete;

private:
  Printer& printer_;
};

class ListScope {
public:
  explicit ListScope(Printer& printer, llvm::StringRef key = "") : printer_(printer) {
    printer_.beginList(key);
  }
  ~ListScope() { printer_.endList(); }
  ListScope(const ListScope&) = delete;
  ListScope& operator=(const ListScope&) = delete;

private:
  Printer& printer_;
};

// "0x1a2b": the one hex spelling both back ends use.
std::string hexString(uint64_t value);

} // namespace procsnap::analyze
