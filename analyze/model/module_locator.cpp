#include "analyze/model/module_locator.h"

#include <llvm/Support/FileSystem.h>
#include <llvm/Support/Path.h>

#include <algorithm>

namespace procsnap::analyze {

namespace {

std::unique_ptr<ElfModule> loadFile(const std::string& path, std::string* problem) {
  auto buffer = readRegularFile(path);
  if (!buffer) {
    *problem = "cannot read '" + path + "': " + buffer.getError().message();
    return nullptr;
  }
  auto module = ElfModule::create(std::move(*buffer));
  if (!module) {
    *problem = llvm::toString(module.takeError());
    return nullptr;
  }
  return std::move(*module);
}

// DIR/.build-id/xx/rest.debug, the layout of Debian's -dbg and -dbgsym packages.
std::string buildIdPath(llvm::StringRef dir, llvm::StringRef build_id) {
  llvm::SmallString<256> path(dir);
  llvm::sys::path::append(path, ".build-id", build_id.take_front(2),
                          build_id.drop_front(2).str() + ".debug");
  return std::string(path);
}

// What identifies a module's file: records that agree on it describe the same bytes.
std::string fileKey(const ModuleRecord& record) {
  return record.path + '\0' + record.build_id + '\0' + std::to_string(record.file_size) +
         (record.embedded ? "\0embedded" : "");
}

} // namespace

const ElfSymbol* LocatedModule::symbolAt(uint64_t vaddr) const {
  if (debug_elf) {
    if (const ElfSymbol* symbol = debug_elf->symbolAt(vaddr))
      return symbol;
  }
  return elf->symbolAt(vaddr);
}

std::vector<const ElfSymbol*> LocatedModule::findSymbols(llvm::StringRef name) const {
  std::vector<const ElfSymbol*> found = elf->findSymbols(name);
  if (debug_elf) {
    for (const ElfSymbol* symbol : debug_elf->findSymbols(name)) {
      bool known = std::any_of(found.begin(), found.end(), [&](const ElfSymbol* other) {
        return other->address == symbol->address && other->raw_name == symbol->raw_name;
      });
      if (!known)
        found.push_back(symbol);
    }
  }
  return found;
}

ModuleLocator::ModuleLocator(const Snapshot& snapshot, LocatorOptions options, WarningHandler warn)
    : snapshot_(snapshot), options_(std::move(options)), warn_(std::move(warn)) {
  if (options_.debug_dirs.empty())
    options_.debug_dirs.push_back(kDefaultDebugDir);
}

ModuleLocator::~ModuleLocator() = default;

const LocatedModule* ModuleLocator::locate(size_t module_index) {
  if (auto it = by_index_.find(module_index); it != by_index_.end())
    return it->second;
  const auto& modules = snapshot_.metadata().modules;
  if (module_index >= modules.size())
    return nullptr;
  const std::string key = fileKey(modules[module_index]);
  auto file = by_file_.find(key);
  if (file == by_file_.end())
    file = by_file_.emplace(key, find(module_index)).first;
  return by_index_.emplace(module_index, file->second.get()).first->second;
}

std::string ModuleLocator::findDebugFile(const std::string& build_id) const {
  if (build_id.size() < 4)
    return "";
  for (const std::string& dir : options_.debug_dirs) {
    std::string path = buildIdPath(dir, build_id);
    if (llvm::sys::fs::exists(path))
      return path;
  }
  return "";
}

std::unique_ptr<LocatedModule> ModuleLocator::find(size_t module_index) {
  const auto& modules = snapshot_.metadata().modules;
  if (module_index >= modules.size())
    return nullptr;
  const ModuleRecord& record = modules[module_index];
  auto result = std::make_unique<LocatedModule>();
  std::vector<std::string> problems;

  // 1. What the snapshot carries.
  auto image = snapshot_.moduleImage(module_index);
  if (!image) {
    problems.push_back(llvm::toString(image.takeError()));
  } else if (*image) {
    auto module = ElfModule::create(std::move(*image));
    if (module) {
      result->elf = std::move(*module);
      result->where = record.embedded ? "embedded" : "sketch";
    } else {
      problems.push_back(llvm::toString(module.takeError()));
    }
  }

  // 2-3. The file on this host, when its build-id says it is the same file. Even when the
  // snapshot holds a sketch, the real file may carry DWARF for file:line.
  // Checked from a summary (build-id, DWARF, .symtab) so that a module the snapshot already
  // has costs no symbol parsing here.
  auto matches = [&](const std::string& path, const ElfFileSummary& summary) {
    if (!record.build_id.empty())
      return summary.build_id == record.build_id;
    // No build-id to compare: the size is the best evidence left.
    uint64_t size = 0;
    return record.file_size == 0 ||
           (!llvm::sys::fs::file_size(path, size) && size == record.file_size);
  };
  std::vector<std::pair<std::string, const char*>> candidates;
  if (!options_.sysroot.empty() && !record.path.empty()) {
    llvm::SmallString<256> path(options_.sysroot);
    llvm::sys::path::append(path, record.path);
    candidates.push_back({std::string(path), "sysroot"});
  }
  if (options_.use_original_paths && !record.path.empty() && record.path.front() == '/')
    candidates.insert(candidates.begin(), {record.path, "path"});
  for (const auto& [path, where] : candidates) {
    if (!llvm::sys::fs::exists(path))
      continue;
    auto summary = summarizeElfFile(path);
    if (!summary) {
      problems.push_back(llvm::toString(summary.takeError()));
      continue;
    }
    if (!matches(path, *summary)) {
      problems.push_back("'" + path + "' has build-id " +
                         (summary->build_id.empty() ? "none" : summary->build_id) +
                         ", the snapshot's module has " +
                         (record.build_id.empty() ? "none" : record.build_id));
      continue;
    }
    if (summary->has_debug_info && result->debug_path.empty())
      result->debug_path = path;
    if (!result->elf) {
      std::string problem;
      result->elf = loadFile(path, &problem);
      if (!result->elf) {
        problems.push_back(problem);
        continue;
      }
      result->where = where;
      result->file_path = path;
    } else if (result->file_path.empty() && record.embedded) {
      result->file_path = path; // the same bytes on disk: the symbolizer can read them by path
    }
    break;
  }

  // 4. Debug directories by build-id: sections and symbols, and DWARF.
  std::string debug_file = findDebugFile(record.build_id);
  if (!debug_file.empty()) {
    std::string problem;
    if (!result->elf) {
      std::unique_ptr<ElfModule> module = loadFile(debug_file, &problem);
      if (module) {
        result->elf = std::move(module);
        result->where = "debug-dir";
        result->file_path = debug_file;
      } else {
        problems.push_back(problem);
      }
    }
    if (result->debug_path.empty())
      result->debug_path = debug_file;
  }

  if (!result->elf) {
    if (warn_) {
      std::string message = "no ELF data for module '" + record.path + "'";
      if (!record.build_id.empty())
        message += " (build-id " + record.build_id + ")";
      if (!problems.empty())
        message += ": " + problems.front();
      warn_(message);
    }
    return nullptr;
  }
  for (const std::string& warning : result->elf->warnings()) {
    if (warn_)
      warn_("module '" + record.path + "': " + warning);
  }
  if (result->debug_path.empty() && result->elf->hasDebugInfo() && !result->file_path.empty())
    result->debug_path = result->file_path;
  if (!result->elf->hasSymtab() && !result->debug_path.empty() &&
      result->debug_path != result->file_path) {
    std::string problem;
    result->debug_elf = loadFile(result->debug_path, &problem);
    if (!result->debug_elf && warn_)
      warn_(problem);
  }
  return result;
}

} // namespace procsnap::analyze
