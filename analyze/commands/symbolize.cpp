// symbolize SOURCE ADDR...: what each address is: region, module, segment, section,
// symbol+offset, and file:line (code) or the global it lies in (data) when DWARF is at hand.
// An argument that is not a number is looked up as a symbol name ("g_counter",
// "libc.so.6!malloc").
#include "analyze/cli/address_expression.h"
#include "analyze/cli/command_table.h"
#include "analyze/cli/common_options.h"
#include "analyze/cli/error_report.h"
#include "analyze/cli/source_runner.h"
#include "analyze/model/address_space.h"
#include "analyze/model/code_symbolizer.h"

#include <llvm/DebugInfo/Symbolize/Symbolize.h>
#include <llvm/Support/CommandLine.h>

#include <cctype>

namespace procsnap::analyze {

namespace {

namespace cl = llvm::cl;

cl::list<std::string> symbolize_args(cl::Positional, cl::OneOrMore,
                                     cl::desc("<source> <address or symbol>..."),
                                     cl::sub(subcommand("symbolize")), cl::cat(commandCategory()));
cl::opt<bool> symbolize_no_dwarf("no-dwarf", cl::desc("Do not read DWARF for file:line"),
                                 cl::sub(subcommand("symbolize")), cl::cat(commandCategory()));

struct SymbolizeOptions {
  std::vector<std::string> targets; // addresses or symbol names
  bool use_dwarf = true;
};

struct Target {
  std::string text;
  uint64_t address = 0;
};

// Adds file:line or the DWARF global for one address of a module.
void printDebugInfo(llvm::symbolize::LLVMSymbolizer& symbolizer, const LoadedModule& module,
                    uint64_t file_vaddr, bool is_code, Printer& printer) {
  const LocatedModule* located = module.located;
  if (!located)
    return;
  if (!hasSymbolizerDwarf(*located))
    return;
  if (is_code) {
    auto line = symbolizeModuleCode(symbolizer, *located, file_vaddr);
    if (!line) {
      printer.warn(llvm::toString(line.takeError()));
      return;
    }
    if (line->FunctionName != llvm::DILineInfo::BadString)
      printer.printString("function", line->FunctionName);
    if (line->FileName != llvm::DILineInfo::BadString) {
      printer.printString("file", line->FileName);
      printer.printUnsigned("line", line->Line);
      printer.printUnsigned("column", line->Column);
    }
    return;
  }
  bool in_memory = located->debug_path.empty();
  llvm::object::SectionedAddress address{file_vaddr, llvm::object::SectionedAddress::UndefSection};
  auto global = in_memory ? symbolizer.symbolizeData(located->elf->object(), address)
                          : symbolizer.symbolizeData(located->debug_path, address);
  if (!global) {
    printer.warn(llvm::toString(global.takeError()));
    return;
  }
  if (global->Name == llvm::DILineInfo::BadString || global->Name.empty())
    return;
  DictScope scope(printer, "global");
  printer.printString("name", global->Name);
  printer.printHex("start", *module.runtime(global->Start));
  printer.printUnsigned("size", global->Size);
  printer.printUnsigned("offset", file_vaddr - global->Start);
  if (!global->DeclFile.empty()) {
    printer.printString("file", global->DeclFile);
    printer.printUnsigned("line", global->DeclLine);
  }
}

llvm::Error printSymbolize(OpenedSource& source, const SymbolizeOptions& options,
                           Printer& printer) {
  const AddressSpace& space = *source.space;
  std::vector<Target> targets;
  for (const std::string& text : options.targets) {
    llvm::StringRef trimmed = llvm::StringRef(text).trim();
    if (!trimmed.empty() && (std::isdigit(static_cast<unsigned char>(trimmed.front())))) {
      auto address = parseAddress(trimmed);
      if (!address)
        return address.takeError();
      targets.push_back({text, *address});
      continue;
    }
    std::vector<SymbolLocation> found = space.findSymbol(trimmed);
    if (found.empty())
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "no symbol named '%s' in any module", text.c_str());
    if (found.size() > 1)
      printer.warn("'" + text + "' names " + std::to_string(found.size()) +
                   " symbols: using the first (qualify it as MODULE!SYMBOL)");
    targets.push_back({text, found.front().address});
  }

  auto symbolizer = createSymbolizer(source.locator->options());

  ListScope list(printer, "addresses");
  for (const Target& target : targets) {
    DictScope entry(printer);
    printer.printString("query", target.text);
    printer.printHex("address", target.address);
    AddressInfo info = space.lookup(target.address);
    if (!info.region) {
      printer.printBool("mapped", false);
      continue;
    }
    printer.printBool("mapped", true);
    {
      DictScope region(printer, "region");
      printer.printHex("start", info.region->map().start);
      printer.printHex("end", info.region->map().end);
      printer.printString("perms", info.region->map().perms.str());
      printer.printString("kind", toString(info.region->kind));
      printer.printString("path", info.region->map().path);
      for (const PageRun& run : info.region->pages) {
        if (target.address >= run.start && target.address < run.end) {
          printer.printString("page_state", toString(run.state));
          break;
        }
      }
    }
    if (info.module_index < 0)
      continue;
    const LoadedModule& module = space.modules()[static_cast<size_t>(info.module_index)];
    printer.printString("module", module.path);
    if (info.file_vaddr)
      printer.printHex("module_offset", *info.file_vaddr);
    printer.printString("segment", info.segment);
    printer.printString("section", info.section);
    if (!info.symbol.empty()) {
      printer.printString("symbol", info.symbol);
      printer.printHex("symbol_address", info.symbol_address);
      printer.printUnsigned("symbol_size", info.symbol_size);
      printer.printUnsigned("symbol_offset", info.symbol_offset);
    } else {
      printer.printString("symbol", "<?>");
    }
    if (options.use_dwarf && info.file_vaddr && module.elf()) {
      const ElfSection* section = module.elf()->sectionAt(*info.file_vaddr);
      bool is_code = section && (section->flags & 4) != 0;
      printDebugInfo(*symbolizer, module, *info.file_vaddr, is_code, printer);
    }
  }
  return llvm::Error::success();
}

} // namespace

int runSymbolize(const CommonOptions& common) {
  if (symbolize_args.size() < 2)
    return reportError("symbolize needs a source and at least one address or symbol");
  SymbolizeOptions options;
  options.targets.assign(symbolize_args.begin() + 1, symbolize_args.end());
  options.use_dwarf = !symbolize_no_dwarf;
  std::vector<std::string> paths = {symbolize_args.front()};
  return runForEachSource(paths, common, /*build_address_space=*/true,
                          [&](OpenedSource& source, Printer& printer) {
                            return printSymbolize(source, options, printer);
                          });
}

} // namespace procsnap::analyze
