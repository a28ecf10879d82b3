// sections: for each module, its PT_LOAD segments and allocated sections at runtime
// addresses, where .bss really lies (the tail of the file-backed rw mapping plus the
// anonymous mapping after it), and for each of its regions the labelled spans that account
// for every byte.
#include "analyze/cli/command_table.h"
#include "analyze/cli/common_options.h"
#include "analyze/cli/source_runner.h"
#include "analyze/model/address_space.h"

#include <llvm/Support/CommandLine.h>

namespace procsnap::analyze {

namespace {

namespace cl = llvm::cl;

cl::list<std::string> sections_sources(cl::Positional, cl::OneOrMore, cl::desc("<source>..."),
                                       cl::sub(subcommand("sections")), cl::cat(commandCategory()));
cl::list<std::string> sections_modules(
    "module", cl::desc("Only these modules (path, file name or unique prefix; repeatable)"),
    cl::value_desc("NAME"), cl::sub(subcommand("sections")), cl::cat(commandCategory()));

using Type = Printer::Column::Type;
using Align = Printer::Column::Align;

std::string segmentTypeName(uint32_t type) {
  switch (type) {
  case 1:
    return "LOAD";
  case 2:
    return "DYNAMIC";
  case 3:
    return "INTERP";
  case 4:
    return "NOTE";
  case 6:
    return "PHDR";
  case 7:
    return "TLS";
  case 0x6474e550:
    return "GNU_EH_FRAME";
  case 0x6474e551:
    return "GNU_STACK";
  case 0x6474e552:
    return "GNU_RELRO";
  case 0x6474e553:
    return "GNU_PROPERTY";
  default:
    return hexString(type);
  }
}

std::string sectionTypeName(uint32_t type) {
  switch (type) {
  case 1:
    return "PROGBITS";
  case 2:
    return "SYMTAB";
  case 3:
    return "STRTAB";
  case 4:
    return "RELA";
  case 5:
    return "HASH";
  case 6:
    return "DYNAMIC";
  case 7:
    return "NOTE";
  case 8:
    return "NOBITS";
  case 9:
    return "REL";
  case 11:
    return "DYNSYM";
  case 14:
    return "INIT_ARRAY";
  case 15:
    return "FINI_ARRAY";
  case 16:
    return "PREINIT_ARRAY";
  case 0x6ffffff6:
    return "GNU_HASH";
  case 0x6ffffffd:
    return "VERDEF";
  case 0x6ffffffe:
    return "VERNEED";
  case 0x6fffffff:
    return "VERSYM";
  default:
    return hexString(type);
  }
}

std::string sectionFlags(const ElfSection& section) {
  std::string flags;
  if (section.flags & 1)
    flags += 'W';
  if (section.flags & 2)
    flags += 'A';
  if (section.flags & 4)
    flags += 'X';
  if (section.flags & 0x400)
    flags += 'T';
  return flags;
}

void printBss(const LoadedModule& module, const std::vector<RegionRecord>& regions,
              Printer& printer) {
  if (!module.bss) {
    printer.printNull("bss");
    return;
  }
  DictScope bss(printer, "bss");
  printer.printHex("start", module.bss->start);
  printer.printHex("end", module.bss->end);
  printer.printUnsigned("size", module.bss->size());
  // Where .bss lies, region by region: the same spans as below, so the parts add up.
  Printer::Table parts({{"START", "start", Type::Hex},
                        {"END", "end", Type::Hex},
                        {"SIZE", "size", Type::Unsigned, Align::Right},
                        {"REGION-START", "region_start", Type::Hex},
                        {"REGION-KIND", "region_kind"},
                        {"BACKING", "backing"}});
  for (const SectionSpan& span : module.spans) {
    if (span.synthetic || span.label != ".bss")
      continue;
    const RegionRecord& region = regions[static_cast<size_t>(span.region_index)];
    bool file_backed = !region.map().path.empty();
    parts.addRow({span.start, span.end, span.size(), region.map().start,
                  std::string(toString(region.kind)),
                  std::string(file_backed ? "file mapping (zeroed tail of its last page)"
                                          : "anonymous mapping")});
  }
  printer.printTable("parts", parts);
}

llvm::Error printModule(const LoadedModule& module, const SnapshotMetadata& metadata,
                        Printer& printer) {
  const ModuleRecord& record = metadata.modules[module.module_index];
  DictScope scope(printer);
  printer.printString("path", module.path);
  printer.printString("build_id", record.build_id);
  if (module.located)
    printer.printString("found", module.located->where);
  else
    printer.printNull("found");
  if (module.load_bias)
    printer.printHex("load_bias", static_cast<uint64_t>(*module.load_bias));
  else
    printer.printNull("load_bias");
  const ElfModule* elf = module.elf();
  if (elf)
    printer.printString("elf_type", elf->isPositionIndependent() ? "DYN"
                                    : elf->elfType() == 2        ? "EXEC"
                                                                 : "other");
  const uint64_t bias = module.load_bias ? static_cast<uint64_t>(*module.load_bias) : 0;
  const bool known = elf && module.load_bias;

  Printer::Table segments({{"INDEX", "index", Type::Unsigned, Align::Right},
                           {"TYPE", "type"},
                           {"PERM", "perms"},
                           {"OFFSET", "offset", Type::Hex, Align::Right},
                           {"VADDR", "vaddr", Type::Hex, Align::Right},
                           {"START", "start", Type::Hex, Align::Right},
                           {"END", "end", Type::Hex, Align::Right},
                           {"FILESZ", "filesz", Type::Unsigned, Align::Right},
                           {"MEMSZ", "memsz", Type::Unsigned, Align::Right}});
  Printer::Table sections({{"NAME", "name"},
                           {"TYPE", "type"},
                           {"FLAGS", "flags"},
                           {"START", "start", Type::Hex, Align::Right},
                           {"END", "end", Type::Hex, Align::Right},
                           {"SIZE", "size", Type::Unsigned, Align::Right},
                           {"OFFSET", "offset", Type::Hex, Align::Right},
                           {"VADDR", "vaddr", Type::Hex, Align::Right}});
  if (elf) {
    for (size_t i = 0; i < elf->segments().size(); ++i) {
      const ElfSegment& segment = elf->segments()[i];
      if (!segment.isLoad())
        continue;
      segments.addRow(
          {uint64_t{i}, segmentTypeName(segment.type), segment.permissions(), segment.offset,
           segment.vaddr, known ? Printer::Cell{segment.vaddr + bias} : Printer::Cell{},
           known ? Printer::Cell{segment.vaddr + segment.memsz + bias} : Printer::Cell{},
           segment.filesz, segment.memsz});
    }
    for (const ElfSection& section : elf->sections()) {
      if (!section.isAlloc())
        continue;
      sections.addRow(
          {section.name, sectionTypeName(section.type), sectionFlags(section),
           known ? Printer::Cell{section.address + bias} : Printer::Cell{},
           known ? Printer::Cell{section.address + section.size + bias} : Printer::Cell{},
           section.size, section.offset, section.address});
    }
  }
  printer.printTable("segments", segments);
  printer.printTable("sections", sections);
  printBss(module, metadata.regions, printer);

  ListScope regions(printer, "regions");
  for (int region_index : module.region_indices) {
    const RegionRecord& region = metadata.regions[static_cast<size_t>(region_index)];
    DictScope entry(printer);
    printer.printHex("start", region.map().start);
    printer.printHex("end", region.map().end);
    printer.printString("perms", region.map().perms.str());
    printer.printHex("offset", region.map().offset);
    printer.printString("kind", toString(region.kind));
    Printer::Table spans({{"START", "start", Type::Hex},
                          {"END", "end", Type::Hex},
                          {"SIZE", "size", Type::Unsigned, Align::Right},
                          {"LABEL", "label"}});
    uint64_t accounted = 0;
    for (const SectionSpan& span : module.spans) {
      if (span.region_index != region_index)
        continue;
      spans.addRow({span.start, span.end, span.size(), span.label});
      accounted += span.size();
    }
    printer.printUnsigned("size", region.map().size());
    printer.printUnsigned("accounted", accounted);
    printer.printTable("spans", spans);
  }
  return llvm::Error::success();
}

llvm::Error printSections(OpenedSource& source, llvm::ArrayRef<std::string> only,
                          Printer& printer) {
  const AddressSpace& space = *source.space;
  std::vector<int> wanted;
  for (const std::string& name : only) {
    int index = space.findModule(name);
    if (index < 0)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "no module named '%s' (or the name is ambiguous)",
                                     name.c_str());
    wanted.push_back(index);
  }
  if (only.empty()) {
    for (size_t i = 0; i < space.modules().size(); ++i)
      wanted.push_back(static_cast<int>(i));
  }
  ListScope modules(printer, "modules");
  for (int index : wanted) {
    if (llvm::Error error = printModule(space.modules()[static_cast<size_t>(index)],
                                        source.snapshot->metadata(), printer))
      return error;
  }
  return llvm::Error::success();
}

} // namespace

int runSections(const CommonOptions& options) {
  std::vector<std::string> paths(sections_sources.begin(), sections_sources.end());
  std::vector<std::string> only(sections_modules.begin(), sections_modules.end());
  return runForEachSource(
      paths, options, /*build_address_space=*/true,
      [&](OpenedSource& source, Printer& printer) { return printSections(source, only, printer); });
}

} // namespace procsnap::analyze
