#include "analyze/output/printer.h"

#include <gtest/gtest.h>
#include <llvm/Support/JSON.h>
#include <llvm/Support/raw_ostream.h>

#include <string>

namespace procsnap::analyze {
namespace {

// Prints the same description through a back end and returns what it wrote.
template <typename Body>
std::string render(Printer::Format format, Body body, std::string* errors = nullptr) {
  std::string out, err;
  {
    llvm::raw_string_ostream os(out), es(err);
    std::unique_ptr<Printer> printer = Printer::create(os, format, es);
    body(*printer);
    printer->finish();
  }
  if (errors)
    *errors = err;
  return out;
}

void describeProcess(Printer& printer) {
  {
    DictScope process(printer, "process");
    printer.printSigned("pid", 42);
    printer.printString("comm", "sample");
    printer.printHex("base", 0x7f0000001000);
    printer.printUnsigned("size", 4096);
    printer.printBool("partial", false);
    printer.printDouble("ratio", 2.5);
    printer.printNull("nothing");
    printer.printStringList("cmdline", {"a", "b c"});
  }
  {
    ListScope threads(printer, "threads");
    for (int tid : {7, 8}) {
      DictScope thread(printer);
      printer.printSigned("tid", tid);
      printer.printString("name", tid == 7 ? "main" : "worker");
    }
  }
  Printer::Table table(
      {{"START", "start", Printer::Column::Type::Hex},
       {"SIZE", "size", Printer::Column::Type::Unsigned, Printer::Column::Align::Right},
       {"PATH", "path"}});
  table.addRow({uint64_t{0x1000}, uint64_t{4}, std::string("/bin/x")});
  table.addRow({uint64_t{0x7fff0000}, uint64_t{123456}, Printer::Cell{}});
  printer.printTable("regions", table);
  printer.printLine("free-form text only");
}

TEST(PrinterTest, TextIsIndentedKeyValueAndAlignedTables) {
  std::string text = render(Printer::Format::Text, describeProcess);
  EXPECT_EQ(text, "process:\n"
                  "  pid: 42\n"
                  "  comm: sample\n"
                  "  base: 0x7f0000001000\n"
                  "  size: 4096\n"
                  "  partial: no\n"
                  "  ratio: 2.5\n"
                  "  nothing: -\n"
                  "  cmdline: a, b c\n"
                  "threads:\n"
                  "  - tid: 7\n"
                  "    name: main\n"
                  "  - tid: 8\n"
                  "    name: worker\n"
                  "regions:\n"
                  "  START         SIZE  PATH\n"
                  "  0x1000           4  /bin/x\n"
                  "  0x7fff0000  123456  -\n"
                  "free-form text only\n");
}

TEST(PrinterTest, JsonHasTypedValuesHexStringsAndTablesAsObjects) {
  std::string text = render(Printer::Format::Json, describeProcess);
  auto parsed = llvm::json::parse(text);
  ASSERT_TRUE(static_cast<bool>(parsed)) << llvm::toString(parsed.takeError()) << "\n" << text;
  const llvm::json::Object* root = parsed->getAsObject();
  ASSERT_NE(root, nullptr);
  const llvm::json::Object* process = root->getObject("process");
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->getInteger("pid"), 42);
  EXPECT_EQ(process->getString("comm"), "sample");
  EXPECT_EQ(process->getString("base"), "0x7f0000001000"); // addresses: strings
  EXPECT_EQ(process->getInteger("size"), 4096);            // sizes: numbers
  EXPECT_EQ(process->getBoolean("partial"), false);
  EXPECT_EQ(process->getNumber("ratio"), 2.5);
  ASSERT_NE(process->get("nothing"), nullptr);
  EXPECT_EQ(process->get("nothing")->kind(), llvm::json::Value::Null);
  ASSERT_NE(process->getArray("cmdline"), nullptr);
  EXPECT_EQ((*process->getArray("cmdline"))[1].getAsString(), "b c");
  const llvm::json::Array* threads = root->getArray("threads");
  ASSERT_NE(threads, nullptr);
  ASSERT_EQ(threads->size(), 2u);
  EXPECT_EQ((*threads)[1].getAsObject()->getString("name"), "worker");
  const llvm::json::Array* regions = root->getArray("regions");
  ASSERT_NE(regions, nullptr);
  ASSERT_EQ(regions->size(), 2u);
  const llvm::json::Object* second = (*regions)[1].getAsObject();
  EXPECT_EQ(second->getString("start"), "0x7fff0000");
  EXPECT_EQ(second->getInteger("size"), 123456);
  EXPECT_EQ(second->get("path")->kind(), llvm::json::Value::Null);
  EXPECT_EQ(root->get("warnings"), nullptr); // only when there were warnings
  EXPECT_EQ(text.find("free-form"), std::string::npos);
}

TEST(PrinterTest, WarningsAreDeduplicatedAndListedInJson) {
  std::string errors;
  std::string text = render(
      Printer::Format::Json,
      [](Printer& printer) {
        printer.warn("module 'x' not found");
        printer.warn("module 'x' not found");
        printer.warn("other");
        printer.printUnsigned("n", 1);
      },
      &errors);
  EXPECT_EQ(errors, "procsnap-analyze: warning: module 'x' not found\n"
                    "procsnap-analyze: warning: other\n");
  auto parsed = llvm::json::parse(text);
  ASSERT_TRUE(static_cast<bool>(parsed)) << llvm::toString(parsed.takeError());
  const llvm::json::Array* warnings = parsed->getAsObject()->getArray("warnings");
  ASSERT_NE(warnings, nullptr);
  EXPECT_EQ(warnings->size(), 2u);
}

TEST(PrinterTest, JsonStaysValidWithInvalidUtf8AndUnclosedScopes) {
  std::string text = render(Printer::Format::Json, [](Printer& printer) {
    printer.beginObject("open");
    printer.beginList("never-closed");
    printer.printString("", std::string("bad \xff\xfe bytes"));
    Printer::Table table(std::vector<Printer::Column>{{"S", "s"}});
    table.addRow({std::string("\xc3")});
    printer.printTable("t", table);
  });
  auto parsed = llvm::json::parse(text);
  EXPECT_TRUE(static_cast<bool>(parsed))
      << (parsed ? "" : llvm::toString(parsed.takeError())) << "\n"
      << text;
}

TEST(PrinterTest, NestedListsAndScalarsInListsInText) {
  std::string text = render(Printer::Format::Text, [](Printer& printer) {
    ListScope ids(printer, "uid");
    printer.printUnsigned("", 1000);
    printer.printUnsigned("", 0);
  });
  EXPECT_EQ(text, "uid:\n  - 1000\n  - 0\n");
}

TEST(PrinterTest, HexStringIsLowercaseWithoutPadding) {
  EXPECT_EQ(hexString(0), "0x0");
  EXPECT_EQ(hexString(0xABCDEF), "0xabcdef");
  EXPECT_EQ(hexString(~uint64_t{0}), "0xffffffffffffffff");
}

} // namespace
} // namespace procsnap::analyze
