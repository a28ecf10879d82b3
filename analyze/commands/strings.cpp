// strings: printable strings in the stored memory, found as GNU `strings -a` finds them
// (analyze/engines/string_scanner.h), each with its address, region kind, module, section and
// symbol. Every region is its own stream: no string runs from one region into the next, and the
// bytes a region does not store count as zeros, so the hits of one region are exactly GNU's hits on
// that region dumped with `dump`.
#include "analyze/cli/address_expression.h"
#include "analyze/cli/command_table.h"
#include "analyze/cli/common_options.h"
#include "analyze/cli/error_report.h"
#include "analyze/cli/exit_codes.h"
#include "analyze/cli/source_runner.h"
#include "analyze/engines/string_scanner.h"
#include "analyze/model/address_space.h"

#include <llvm/Support/CommandLine.h>
#include <llvm/Support/raw_ostream.h>

#include <algorithm>
#include <string>
#include <vector>

namespace procsnap::analyze {

namespace {

namespace cl = llvm::cl;

cl::opt<std::string> source_option(cl::Positional, cl::Required, cl::desc("<source>"),
                                   cl::sub(subcommand("strings")), cl::cat(commandCategory()));
cl::opt<unsigned> min_length_option(
    "n", cl::desc("Report strings of at least N characters (default 4, like GNU strings)"),
    cl::value_desc("N"), cl::init(4), cl::Prefix, cl::sub(subcommand("strings")),
    cl::cat(commandCategory()));
cl::alias min_length_alias("bytes", cl::desc("Alias for -n"), cl::aliasopt(min_length_option),
                           cl::cat(commandCategory()));
cl::opt<std::string> encoding_option(
    "encoding",
    cl::desc("Character encoding: s = 7-bit ASCII (default), l = 16-bit little-endian (UTF-16LE)"),
    cl::value_desc("s|l"), cl::init("s"), cl::sub(subcommand("strings")),
    cl::cat(commandCategory()));
cl::alias encoding_alias("e", cl::desc("Alias for --encoding"), cl::aliasopt(encoding_option),
                         cl::cat(commandCategory()));
cl::list<std::string>
    kind_option("kind", cl::desc("Only regions of these kinds (heap, data, bss, stack, anon, ...)"),
                cl::value_desc("KIND[,KIND...]"), cl::CommaSeparated,
                cl::sub(subcommand("strings")), cl::cat(commandCategory()));
cl::opt<std::string> region_option("region", cl::desc("Only the region containing this address"),
                                   cl::value_desc("ADDRESS"), cl::sub(subcommand("strings")),
                                   cl::cat(commandCategory()));

// Bytes read from the snapshot at a time: about one archive chunk, so memory stays bounded
// and each chunk is decompressed once.
constexpr size_t kScanBlockBytes = size_t{1} << 20;

// Text columns: the widest region kind ("thread-stack", "private-anon") and a typical
// module:section, so most lines line up.
constexpr size_t kKindColumnWidth = 12;
constexpr size_t kLocationColumnWidth = 28;

struct StringsOptions {
  StringEncoding encoding = StringEncoding::Ascii7;
  size_t min_length = 4;
  std::vector<RegionKind> kinds; // empty: every kind
  std::optional<uint64_t> region_address;
};

llvm::Expected<StringsOptions> stringsOptionsFromCommandLine() {
  StringsOptions options;
  std::optional<StringEncoding> encoding = stringEncodingFromLetter(encoding_option);
  if (!encoding)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "unknown encoding '%s' (use s or l)",
                                   encoding_option.getValue().c_str());
  options.encoding = *encoding;
  if (min_length_option < 1 || min_length_option > kMaxMinStringLength)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "-n must be between 1 and %zu, got %u", kMaxMinStringLength,
                                   min_length_option.getValue());
  options.min_length = min_length_option;
  for (const std::string& name : kind_option) {
    std::optional<RegionKind> kind = regionKindFromString(name);
    if (!kind)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "unknown region kind '%s' (see the maps command)",
                                     name.c_str());
    options.kinds.push_back(*kind);
  }
  if (!region_option.empty()) {
    llvm::Expected<uint64_t> address = parseAddress(region_option);
    if (!address)
      return address.takeError();
    options.region_address = *address;
  }
  return options;
}

// What a hit's region is called when no module claims it: its path ("[heap]", a file) or "-".
std::string regionLocation(const RegionRecord& region) {
  const std::string& path = region.map().path;
  if (path.empty())
    return "-";
  if (path.front() == '[')
    return path;
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void appendPadded(std::string& out, const std::string& text, size_t width) {
  out += text;
  if (text.size() < width)
    out.append(width - text.size(), ' ');
}

// Appends value as hexString spells it ("0x1a2b"), without snprintf and a temporary.
void appendHex(std::string& out, uint64_t value) {
  char digits[16];
  size_t count = 0;
  do {
    digits[count++] = "0123456789abcdef"[value & 0xf];
    value >>= 4;
  } while (value != 0);
  out += "0x";
  while (count > 0)
    out += digits[--count];
}

class StringsCommand final {
public:
  StringsCommand(const StringsOptions& options, const AddressSpace& space, Printer& printer)
      : options_(options), space_(space), snapshot_(space.snapshot()), printer_(printer),
        scanner_(options.encoding, options.min_length,
                 [this](const FoundString& found) { report(found); }) {}

  llvm::Error run() {
    const auto& regions = snapshot_.metadata().regions;
    int only_region = -1;
    if (options_.region_address) {
      only_region = snapshot_.findRegion(*options_.region_address);
      if (only_region < 0)
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       "address %s is not in any region of the snapshot",
                                       hexString(*options_.region_address).c_str());
    }
    std::vector<uint8_t> block(kScanBlockBytes);
    std::optional<ListScope> list;
    if (printer_.isJson())
      list.emplace(printer_, "strings");
    for (size_t index = 0; index < regions.size(); ++index) {
      const RegionRecord& region = regions[index];
      if (only_region >= 0 && static_cast<size_t>(only_region) != index)
        continue;
      if (!options_.kinds.empty() && std::find(options_.kinds.begin(), options_.kinds.end(),
                                               region.kind) == options_.kinds.end())
        continue;
      if (llvm::Error error = scanRegion(static_cast<int>(index), block))
        return error;
    }
    list.reset();
    if (printer_.isJson()) {
      DictScope summary(printer_, "summary");
      printer_.printUnsigned("strings", hits_);
      printer_.printUnsigned("regions_scanned", regions_scanned_);
      printer_.printUnsigned("bytes_scanned", bytes_scanned_);
    }
    return llvm::Error::success();
  }

private:
  llvm::Error scanRegion(int index, std::vector<uint8_t>& block) {
    const RegionRecord& region = snapshot_.metadata().regions[static_cast<size_t>(index)];
    std::vector<StoredExtent> extents =
        snapshot_.storedExtents(region.map().start, region.map().end);
    if (extents.empty())
      return llvm::Error::success();
    region_index_ = index;
    region_in_module_ = space_.moduleOfRegion(index) >= 0;
    region_kind_ = std::string(toString(region.kind));
    region_location_ = regionLocation(region);
    ++regions_scanned_;
    scanner_.begin(region.map().start);
    for (const StoredExtent& extent : extents) {
      for (uint64_t address = extent.start; address < extent.end;) {
        size_t size = static_cast<size_t>(std::min<uint64_t>(block.size(), extent.end - address));
        llvm::MutableArrayRef<uint8_t> bytes(block.data(), size);
        llvm::Expected<ReadResult> read = snapshot_.read(address, bytes);
        if (!read) {
          // A damaged chunk (salvaged archives): say so and scan on; its bytes count as zeros.
          printer_.warn("cannot read " + hexString(address) + "-" + hexString(address + size) +
                        ": " + llvm::toString(read.takeError()) + "; not scanned");
        } else {
          scanner_.feed(address, std::span<const uint8_t>(bytes.data(), bytes.size()));
          bytes_scanned_ += size;
        }
        address += size;
      }
    }
    scanner_.finish();
    return llvm::Error::success();
  }

  void report(const FoundString& found) {
    ++hits_;
    AddressInfo info;
    if (region_in_module_)
      info = space_.lookup(found.offset);
    std::string symbol;
    if (!info.symbol.empty())
      symbol = info.symbol + (info.symbol_offset ? "+" + hexString(info.symbol_offset) : "");
    if (printer_.isJson()) {
      DictScope hit(printer_);
      printer_.printHex("address", found.offset);
      printer_.printString("kind", region_kind_);
      printer_.printHex(
          "region_start",
          snapshot_.metadata().regions[static_cast<size_t>(region_index_)].map().start);
      printOrNull("module", info.module_name);
      printOrNull("section", info.section);
      printOrNull("symbol", info.symbol);
      if (!info.symbol.empty())
        printer_.printHex("symbol_offset", info.symbol_offset);
      printer_.printUnsigned("length", found.length);
      printer_.printString("string", found.text);
      printer_.printBool("truncated", found.truncated);
      return;
    }
    // Text: one line per hit, built in a reused buffer (millions of hits on big regions).
    line_.clear();
    appendHex(line_, found.offset);
    line_ += "  ";
    appendPadded(line_, region_kind_, kKindColumnWidth);
    line_ += "  ";
    if (region_in_module_) {
      size_t location_start = line_.size();
      line_ += info.module_name.empty() ? "<?>" : info.module_name;
      line_ += ':';
      line_ += info.section.empty() ? "<?>" : info.section;
      if (!symbol.empty()) {
        line_ += " <";
        line_ += symbol;
        line_ += '>';
      }
      size_t location_size = line_.size() - location_start;
      if (location_size < kLocationColumnWidth)
        line_.append(kLocationColumnWidth - location_size, ' ');
    } else {
      appendPadded(line_, region_location_, kLocationColumnWidth);
    }
    line_ += "  ";
    line_ += found.text;
    if (found.truncated) {
      line_ += " ...[";
      line_ += std::to_string(found.length);
      line_ += " characters]";
    }
    printer_.printLine(line_);
  }

  void printOrNull(llvm::StringRef key, const std::string& value) {
    if (value.empty())
      printer_.printNull(key);
    else
      printer_.printString(key, value);
  }

  const StringsOptions& options_;
  const AddressSpace& space_;
  const Snapshot& snapshot_;
  Printer& printer_;
  StringScanner scanner_;

  int region_index_ = -1;
  bool region_in_module_ = false;
  std::string region_kind_;
  std::string region_location_;
  std::string line_; // the text line being built, reused
  uint64_t hits_ = 0;
  uint64_t regions_scanned_ = 0;
  uint64_t bytes_scanned_ = 0;
};

} // namespace

int runStrings(const CommonOptions& options) {
  llvm::Expected<StringsOptions> strings_options = stringsOptionsFromCommandLine();
  if (!strings_options)
    return reportError(strings_options.takeError());
  std::unique_ptr<Printer> printer = Printer::create(llvm::outs(), options.format());
  llvm::Expected<OpenedSource> source =
      openSource(source_option, options, *printer, /*build_address_space=*/true);
  if (!source)
    return reportError(source.takeError());
  if (printer->isJson()) {
    printer->printString("source", source_option);
    printer->printString("encoding", toLetter(strings_options->encoding));
    printer->printUnsigned("min_length", strings_options->min_length);
  }
  StringsCommand command(*strings_options, *source->space, *printer);
  if (llvm::Error error = command.run()) {
    printer->finish();
    return reportError(std::move(error));
  }
  printer->finish();
  return kExitOk;
}

} // namespace procsnap::analyze
