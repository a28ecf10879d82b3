#include "analyze/cli/address_expression.h"

#include "analyze/output/printer.h"

#include <llvm/ADT/StringExtras.h>

namespace procsnap::analyze {
namespace {

llvm::Error invalid(llvm::StringRef text, const llvm::Twine& why) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "invalid address expression '" + text + "': " + why);
}

// "0x1f" (hex) or "31" (decimal), nothing else: no sign, no spaces, no overflow.
std::optional<uint64_t> parseNumber(llvm::StringRef text) {
  uint64_t value = 0;
  if (text.starts_with_insensitive("0x")) {
    llvm::StringRef digits = text.drop_front(2);
    if (digits.empty() || !llvm::all_of(digits, llvm::isHexDigit) || digits.getAsInteger(16, value))
      return std::nullopt;
    return value;
  }
  if (text.empty() || !llvm::all_of(text, llvm::isDigit) || text.getAsInteger(10, value))
    return std::nullopt;
  return value;
}

bool isSymbolCharacter(char c) {
  // Printable and not a space: demangled C++ names hold ':', '<', '(', ',', '~', '*', '&'.
  return c > 0x20 && c < 0x7f;
}

std::string regionName(const RegionRecord& region) {
  const std::string& path = region.map().path;
  return path.empty() ? std::string(toString(region.kind)) : path;
}

} // namespace

llvm::Expected<uint64_t> parseByteCount(llvm::StringRef text) {
  llvm::StringRef digits = text;
  unsigned shift = 0;
  if (!text.starts_with_insensitive("0x") && !text.empty()) {
    switch (text.back()) {
    case 'k':
    case 'K':
      shift = 10;
      break;
    case 'm':
    case 'M':
      shift = 20;
      break;
    case 'g':
    case 'G':
      shift = 30;
      break;
    default:
      break;
    }
    if (shift != 0)
      digits = text.drop_back();
  }
  std::optional<uint64_t> value = parseNumber(digits);
  if (!value)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "invalid byte count '%s' (use 4096, 0x1000, 4k, 1M or 2G)",
                                   text.str().c_str());
  if (shift != 0 && (*value >> (64 - shift)) != 0)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "byte count '%s' is too large",
                                   text.str().c_str());
  uint64_t count = *value << shift;
  if (count == 0)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "byte count '%s' is zero",
                                   text.str().c_str());
  return count;
}

llvm::Expected<AddressExpression> parseAddressExpression(llvm::StringRef text) {
  AddressExpression expression;
  expression.text = text.str();
  if (text.empty())
    return invalid(text, "it is empty");
  if (!llvm::all_of(text, isSymbolCharacter))
    return invalid(text, "it holds spaces or control characters");

  // Numbers start with a digit; symbols and module names never do (C and C++ identifiers,
  // and "MODULE:SECTION" with a module file name, are checked below).
  if (llvm::isDigit(text.front())) {
    size_t operator_at = text.find_first_of("-+");
    llvm::StringRef left = text.substr(0, operator_at);
    std::optional<uint64_t> start = parseNumber(left);
    if (!start)
      return invalid(text, "'" + left + "' is not a number (use 0x... for hex)");
    expression.start = *start;
    if (operator_at == llvm::StringRef::npos) {
      expression.kind = AddressExpression::Kind::Address;
      return expression;
    }
    llvm::StringRef right = text.substr(operator_at + 1);
    if (text[operator_at] == '-') {
      std::optional<uint64_t> end = parseNumber(right);
      if (!end)
        return invalid(text, "'" + right + "' is not a number (use 0x... for hex)");
      if (*end <= *start)
        return invalid(text, "the end is not above the start");
      expression.kind = AddressExpression::Kind::Range;
      expression.end = *end;
      return expression;
    }
    llvm::Expected<uint64_t> length = parseByteCount(right);
    if (!length)
      return invalid(text, llvm::toString(length.takeError()));
    if (*length > UINT64_MAX - *start)
      return invalid(text, "the range runs past the end of the address space");
    expression.kind = AddressExpression::Kind::StartLength;
    expression.end = *start + *length;
    return expression;
  }

  // MODULE:SECTION, split at the last ':' followed by a section name ('.data'); a demangled
  // name such as ns::K::frob has "::" and no dot after it.
  size_t colon = text.rfind(':');
  if (colon != llvm::StringRef::npos && colon + 1 < text.size() && text[colon + 1] == '.' &&
      colon > 0 && text[colon - 1] != ':') {
    expression.kind = AddressExpression::Kind::ModuleSection;
    expression.module = text.substr(0, colon).str();
    expression.section = text.substr(colon + 1).str();
    return expression;
  }
  if (text.ends_with("!") || text.starts_with("!"))
    return invalid(text, "use MODULE!SYMBOL with both parts");
  expression.kind = AddressExpression::Kind::Symbol;
  expression.symbol = text.str();
  return expression;
}

bool needsAddressSpace(const AddressExpression& expression) {
  return expression.kind == AddressExpression::Kind::ModuleSection ||
         expression.kind == AddressExpression::Kind::Symbol;
}

llvm::Expected<ResolvedRange> resolveAddressExpression(const AddressExpression& expression,
                                                       const Snapshot& snapshot,
                                                       const AddressSpace* space,
                                                       LoneAddress lone_address) {
  if (needsAddressSpace(expression) && space == nullptr)
    return invalid(expression.text, "symbols and sections need the modules' ELF data");
  const auto& regions = snapshot.metadata().regions;
  ResolvedRange resolved;
  switch (expression.kind) {
  case AddressExpression::Kind::Range:
  case AddressExpression::Kind::StartLength:
    resolved.range = {expression.start, expression.end};
    resolved.description = hexString(expression.start) + "-" + hexString(expression.end);
    resolved.has_extent = true;
    return resolved;

  case AddressExpression::Kind::Address: {
    int index = snapshot.findRegion(expression.start);
    if (index < 0)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "address %s is not in any region of the snapshot",
                                     hexString(expression.start).c_str());
    const RegionRecord& region = regions[static_cast<size_t>(index)];
    if (lone_address == LoneAddress::Point) {
      resolved.range = {expression.start, expression.start};
      resolved.description = hexString(expression.start);
      return resolved;
    }
    if (region.map().start != expression.start)
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          "address %s is inside region %s-%s (%s), not at its start; give a range "
          "0xSTART-0xEND or 0xSTART+LEN",
          hexString(expression.start).c_str(), hexString(region.map().start).c_str(),
          hexString(region.map().end).c_str(), regionName(region).c_str());
    resolved.range = {region.map().start, region.map().end};
    resolved.description = "region " + hexString(region.map().start) + "-" +
                           hexString(region.map().end) + " (" + regionName(region) + ")";
    resolved.has_extent = true;
    return resolved;
  }

  case AddressExpression::Kind::ModuleSection: {
    if (space->findModule(expression.module) < 0)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "no module '%s' in the snapshot (or the name is ambiguous)",
                                     expression.module.c_str());
    std::optional<AddressRange> range = space->findSection(expression.module, expression.section);
    if (!range)
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          "module '%s' has no loaded section '%s' (or its ELF data was not found)",
          expression.module.c_str(), expression.section.c_str());
    if (range->size() == 0)
      return llvm::createStringError(llvm::inconvertibleErrorCode(), "section '%s' is empty",
                                     expression.text.c_str());
    resolved.range = *range;
    resolved.description = expression.text;
    resolved.has_extent = true;
    return resolved;
  }

  case AddressExpression::Kind::Symbol: {
    std::vector<SymbolLocation> found = space->findSymbol(expression.symbol);
    if (found.empty())
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "no symbol '%s' in the snapshot's modules",
                                     expression.symbol.c_str());
    const SymbolLocation& symbol = found.front();
    if (found.size() > 1) {
      bool all_same = llvm::all_of(
          found, [&](const SymbolLocation& other) { return other.address == symbol.address; });
      if (!all_same)
        resolved.notes.push_back(std::to_string(found.size()) + " symbols named '" +
                                 expression.symbol + "'; using the first, at " +
                                 hexString(symbol.address));
    }
    resolved.range = {symbol.address, symbol.address + symbol.size};
    resolved.description = symbol.name;
    resolved.has_extent = symbol.size != 0;
    return resolved;
  }
  }
  return invalid(expression.text, "unknown kind"); // unreachable: the switch covers every kind
}

llvm::Expected<uint64_t> parseAddress(llvm::StringRef text) {
  llvm::StringRef trimmed = text.trim();
  uint64_t value = 0;
  bool failed;
  if (trimmed.starts_with_insensitive("0x"))
    failed = trimmed.drop_front(2).getAsInteger(16, value) || trimmed.size() == 2;
  else
    failed = trimmed.getAsInteger(10, value);
  if (failed)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "'%s' is not an address (use 0x... for hex)",
                                   text.str().c_str());
  return value;
}

} // namespace procsnap::analyze
