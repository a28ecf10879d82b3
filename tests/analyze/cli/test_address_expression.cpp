#include "analyze/cli/address_expression.h"

#include <gtest/gtest.h>

namespace procsnap::analyze {
namespace {

using Kind = AddressExpression::Kind;

AddressExpression parsed(llvm::StringRef text) {
  llvm::Expected<AddressExpression> expression = parseAddressExpression(text);
  if (!expression) {
    ADD_FAILURE() << text.str() << ": " << llvm::toString(expression.takeError());
    return {};
  }
  return *expression;
}

std::string errorOf(llvm::StringRef text) {
  llvm::Expected<AddressExpression> expression = parseAddressExpression(text);
  if (expression)
    return "(parsed)";
  return llvm::toString(expression.takeError());
}

TEST(AddressExpression, Ranges) {
  AddressExpression range = parsed("0x7f0000001000-0x7f0000003000");
  EXPECT_EQ(range.kind, Kind::Range);
  EXPECT_EQ(range.start, 0x7f0000001000u);
  EXPECT_EQ(range.end, 0x7f0000003000u);

  AddressExpression decimal = parsed("4096-8192");
  EXPECT_EQ(decimal.kind, Kind::Range);
  EXPECT_EQ(decimal.start, 4096u);
  EXPECT_EQ(decimal.end, 8192u);

  AddressExpression length = parsed("0x1000+0x100");
  EXPECT_EQ(length.kind, Kind::StartLength);
  EXPECT_EQ(length.start, 0x1000u);
  EXPECT_EQ(length.end, 0x1100u);
  EXPECT_EQ(parsed("0x1000+4k").end, 0x2000u);
  EXPECT_EQ(parsed("0X1000+1M").end, 0x101000u);
  EXPECT_EQ(parsed("0x0+2G").end, 0x80000000u);
  EXPECT_EQ(parsed("0x10+16").end, 0x20u);
}

TEST(AddressExpression, AddressesModulesSectionsAndSymbols) {
  AddressExpression address = parsed("0x55d4e8204000");
  EXPECT_EQ(address.kind, Kind::Address);
  EXPECT_EQ(address.start, 0x55d4e8204000u);

  AddressExpression section = parsed("libc.so.6:.data");
  EXPECT_EQ(section.kind, Kind::ModuleSection);
  EXPECT_EQ(section.module, "libc.so.6");
  EXPECT_EQ(section.section, ".data");
  AddressExpression path = parsed("/usr/lib/x86_64-linux-gnu/libc.so.6:.data.rel.ro");
  EXPECT_EQ(path.kind, Kind::ModuleSection);
  EXPECT_EQ(path.module, "/usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(path.section, ".data.rel.ro");

  AddressExpression symbol = parsed("g_data_counter");
  EXPECT_EQ(symbol.kind, Kind::Symbol);
  EXPECT_EQ(symbol.symbol, "g_data_counter");
  EXPECT_EQ(parsed("ns::K::frob(int)").kind, Kind::Symbol);
  EXPECT_EQ(parsed("libc.so.6!malloc").symbol, "libc.so.6!malloc");
  EXPECT_EQ(parsed("_ZN2ns1K4frobEi").kind, Kind::Symbol);
}

TEST(AddressExpression, RejectsBadInput) {
  EXPECT_EQ(errorOf(""), "invalid address expression '': it is empty");
  EXPECT_EQ(errorOf("0x2000-0x1000"),
            "invalid address expression '0x2000-0x1000': the end is not above the start");
  EXPECT_EQ(errorOf("0x1000-0x1000"),
            "invalid address expression '0x1000-0x1000': the end is not above the start");
  EXPECT_NE(errorOf("0xzz"), "(parsed)");
  EXPECT_NE(errorOf("0x"), "(parsed)");
  EXPECT_NE(errorOf("0x-0x10"), "(parsed)");
  EXPECT_NE(errorOf("0x10-"), "(parsed)");
  EXPECT_NE(errorOf("0x10+"), "(parsed)");
  EXPECT_NE(errorOf("0x10+0"), "(parsed)");
  EXPECT_NE(errorOf("0x10+-5"), "(parsed)");
  EXPECT_NE(errorOf("12abc"), "(parsed)");
  EXPECT_NE(errorOf("0x10000000000000000"), "(parsed)"); // 2^64
  EXPECT_NE(errorOf("99999999999999999999"), "(parsed)");
  EXPECT_EQ(errorOf("0xffffffffffffff00+0x200"),
            "invalid address expression '0xffffffffffffff00+0x200': the range runs past the end "
            "of the address space");
  EXPECT_NE(errorOf("0x1000+99999999999G"), "(parsed)");
  EXPECT_NE(errorOf("g data"), "(parsed)");
  EXPECT_NE(errorOf("bad\x01name"), "(parsed)");
  EXPECT_NE(errorOf("libc.so.6!"), "(parsed)");
}

TEST(ByteCount, ParsesSuffixesAndRejectsNonsense) {
  EXPECT_EQ(*parseByteCount("256"), 256u);
  EXPECT_EQ(*parseByteCount("0x100"), 256u);
  EXPECT_EQ(*parseByteCount("4k"), 4096u);
  EXPECT_EQ(*parseByteCount("4K"), 4096u);
  EXPECT_EQ(*parseByteCount("3m"), 3u << 20);
  EXPECT_EQ(*parseByteCount("1G"), 1u << 30);
  for (const char* bad : {"", "0", "0k", "-1", "1.5k", "k", "0x", "12q", "1T", "20000000000G"}) {
    llvm::Expected<uint64_t> count = parseByteCount(bad);
    EXPECT_FALSE(count) << bad;
    if (!count)
      llvm::consumeError(count.takeError());
  }
}

} // namespace
} // namespace procsnap::analyze
