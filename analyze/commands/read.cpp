// read: shows memory as an xxd-like hex dump, 16 bytes a row, labelled with the section and
// symbol wherever they change, and with one line for each stretch the snapshot does not hold.
#include "analyze/cli/address_expression.h"
#include "analyze/cli/command_table.h"
#include "analyze/cli/common_options.h"
#include "analyze/cli/error_report.h"
#include "analyze/cli/exit_codes.h"
#include "analyze/cli/source_runner.h"
#include "analyze/model/address_space.h"
#include "analyze/output/hex_view.h"

#include <llvm/Support/CommandLine.h>
#include <llvm/Support/raw_ostream.h>

#include <algorithm>
#include <string>
#include <vector>

namespace procsnap::analyze {

namespace {

namespace cl = llvm::cl;

cl::opt<std::string> source_option(cl::Positional, cl::Required, cl::desc("<source>"),
                                   cl::sub(subcommand("read")), cl::cat(commandCategory()));
cl::opt<std::string> what_option(
    cl::Positional, cl::Required,
    cl::desc("<what: 0xADDRESS | 0xSTART-0xEND | 0xSTART+LEN | MODULE:SECTION | SYMBOL>"),
    cl::sub(subcommand("read")), cl::cat(commandCategory()));
cl::opt<std::string> length_option(
    "length",
    cl::desc("Show N bytes from the start (default: the symbol's or range's size, else 256)"),
    cl::value_desc("N"), cl::sub(subcommand("read")), cl::cat(commandCategory()));

// Shown for a lone address or a symbol without a size.
constexpr uint64_t kDefaultReadBytes = 256;
// Most bytes shown when the length comes from the object (a big array, a whole section):
// 4096 rows is more than anyone reads on a terminal. --length lifts it.
constexpr uint64_t kMaxReadBytesWithoutLength = 64 * 1024;
// Bytes read from the snapshot at a time (a multiple of the row size): memory stays bounded
// whatever --length says.
constexpr size_t kReadBlockBytes = 64 * 1024;
static_assert(kReadBlockBytes % kHexBytesPerRow == 0);

// The label of a row: the section of its first byte (or the region kind outside modules) and
// the symbols it touches: the one holding its first byte and any that start inside it.
struct RowLabel {
  std::string key;  // what must change for the label to be shown again
  std::string text; // "[.data] <g_data_counter>", "[.bss] <a+0x10> <b>@+0x8", "[heap]"
};

RowLabel labelFor(const AddressSpace& space, uint64_t address, uint64_t size) {
  AddressInfo info = space.lookup(address);
  RowLabel label;
  std::string section;
  if (!info.section.empty())
    section = info.section.front() == '[' ? info.section : "[" + info.section + "]";
  else if (info.region)
    section = "[" + std::string(toString(info.region->kind)) + "]";
  else
    section = "[unmapped]";
  label.key = section;
  label.text = section;
  if (!info.symbol.empty()) {
    label.key += " " + info.symbol;
    label.text +=
        " <" + info.symbol + (info.symbol_offset ? "+" + hexString(info.symbol_offset) : "") + ">";
  }
  if (info.module_index < 0)
    return label; // no symbols outside modules
  // Symbols starting inside the row. When the first byte's symbol covers the whole row no
  // other can start (symbols here do not nest), so the per-byte lookups are rare.
  uint64_t next = address + 1;
  if (!info.symbol.empty() && info.symbol_size != 0)
    next = std::max(next, info.symbol_address + info.symbol_size);
  std::string previous = info.symbol;
  for (uint64_t at = next; at < address + size; ++at) {
    AddressInfo inner = space.lookup(at);
    if (inner.symbol.empty() || inner.symbol_offset != 0 || inner.symbol == previous)
      continue;
    label.key += " " + inner.symbol;
    label.text += " <" + inner.symbol + ">@+" + hexString(at - address);
    previous = inner.symbol;
    if (inner.symbol_size != 0)
      at = std::max(at, inner.symbol_address + inner.symbol_size - 1);
  }
  return label;
}

llvm::Error showMemory(const CommonOptions& options, Printer& printer) {
  llvm::Expected<AddressExpression> what = parseAddressExpression(what_option);
  if (!what)
    return what.takeError();
  std::optional<uint64_t> length;
  if (!length_option.empty()) {
    llvm::Expected<uint64_t> parsed = parseByteCount(length_option);
    if (!parsed)
      return parsed.takeError();
    length = *parsed;
  }
  llvm::Expected<OpenedSource> source =
      openSource(source_option, options, printer, /*build_address_space=*/true);
  if (!source)
    return source.takeError();
  const Snapshot& snapshot = *source->snapshot;
  const AddressSpace& space = *source->space;
  llvm::Expected<ResolvedRange> resolved =
      resolveAddressExpression(*what, snapshot, &space, LoneAddress::Point);
  if (!resolved)
    return resolved.takeError();
  for (const std::string& note : resolved->notes)
    printer.warn(note);

  const uint64_t start = resolved->range.start;
  uint64_t size = resolved->has_extent ? resolved->range.size() : kDefaultReadBytes;
  if (length) {
    size = *length;
  } else if (size > kMaxReadBytesWithoutLength) {
    printer.warn("showing the first " + std::to_string(kMaxReadBytesWithoutLength) + " of " +
                 std::to_string(size) + " bytes of " + resolved->description +
                 "; use --length to see more");
    size = kMaxReadBytesWithoutLength;
  }
  if (size > UINT64_MAX - start)
    size = UINT64_MAX - start; // the top of the address space
  const uint64_t end = start + size;
  const int digits = hexDigitsFor(end);

  if (printer.isJson()) {
    printer.printString("source", source_option);
    printer.printString("what", resolved->description);
    printer.printHex("start", start);
    printer.printHex("end", end);
    printer.printUnsigned("size", size);
  }
  std::optional<ListScope> rows_scope;
  if (printer.isJson())
    rows_scope.emplace(printer, "rows");

  std::string shown_key; // the label last shown (text prints a label only when it changes)
  bool first_row = true;
  HexViewBuilder builder(start, [&](const HexRow& row) {
    if (row.kind == HexRow::Kind::NotStored) {
      shown_key.clear(); // show the label again after a hole
      if (printer.isJson()) {
        DictScope object(printer);
        printer.printHex("address", row.address);
        printer.printUnsigned("size", row.size);
        printer.printString("not_stored", row.reason());
        return;
      }
      printer.printLine(paddedHex(row.address, digits) + ": \u2026 " + row.notStoredSummary());
      return;
    }
    RowLabel label = labelFor(space, row.address, row.size);
    if (printer.isJson()) {
      DictScope object(printer);
      printer.printHex("address", row.address);
      printer.printUnsigned("size", row.size);
      printer.printString("hex", row.plainHex());
      printer.printString("ascii", row.ascii());
      printer.printString("label", label.text);
      return;
    }
    std::string line = paddedHex(row.address, digits) + ": " + row.groupedHex() + "  " +
                       row.ascii() + std::string(kHexBytesPerRow - row.size, ' ');
    if (first_row || label.key != shown_key)
      line += "  " + label.text;
    first_row = false;
    shown_key = label.key;
    printer.printLine(line);
  });

  std::vector<uint8_t> block(static_cast<size_t>(std::min<uint64_t>(kReadBlockBytes, size)));
  for (uint64_t address = start; address < end;) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(block.size(), end - address));
    llvm::MutableArrayRef<uint8_t> bytes(block.data(), chunk);
    llvm::Expected<ReadResult> read = snapshot.read(address, bytes);
    if (!read)
      return llvm::createStringError(llvm::inconvertibleErrorCode(), "cannot read %s-%s: %s",
                                     hexString(address).c_str(), hexString(address + chunk).c_str(),
                                     llvm::toString(read.takeError()).c_str());
    builder.add(address, std::span<const uint8_t>(bytes.data(), bytes.size()), read->runs);
    address += chunk;
  }
  builder.finish();
  return llvm::Error::success();
}

} // namespace

int runRead(const CommonOptions& options) {
  std::unique_ptr<Printer> printer = Printer::create(llvm::outs(), options.format());
  llvm::Error error = showMemory(options, *printer);
  printer->finish();
  if (error)
    return reportError(std::move(error));
  return kExitOk;
}

} // namespace procsnap::analyze
