// backtrace SOURCE... (alias bt): every thread's stack, unwound offline from the snapshot's
// registers and memory with libdwfl (analyze/engines/stack_unwinder.h), each frame named from
// the module's symbols and, where DWARF is at hand, its file:line.
#include "analyze/cli/command_table.h"
#include "analyze/cli/common_options.h"
#include "analyze/cli/error_report.h"
#include "analyze/cli/source_runner.h"
#include "analyze/engines/stack_unwinder.h"
#include "analyze/engines/unwind_images.h"
#include "analyze/model/code_symbolizer.h"

#include <llvm/Support/CommandLine.h>
#include <llvm/Support/FormatVariadic.h>

namespace procsnap::analyze {

namespace {

namespace cl = llvm::cl;

cl::list<std::string> backtrace_sources(cl::Positional, cl::OneOrMore, cl::desc("<source>..."),
                                        cl::sub(subcommand("backtrace")), cl::sub(subcommand("bt")),
                                        cl::cat(commandCategory()));
cl::list<int32_t> backtrace_threads("thread", cl::desc("Only this thread (repeatable)"),
                                    cl::value_desc("tid"), cl::sub(subcommand("backtrace")),
                                    cl::sub(subcommand("bt")), cl::cat(commandCategory()));
cl::opt<size_t> backtrace_max_frames("max-frames", cl::desc("Frames per thread at most"),
                                     cl::init(256), cl::sub(subcommand("backtrace")),
                                     cl::sub(subcommand("bt")), cl::cat(commandCategory()));

struct BacktraceOptions {
  std::vector<int32_t> tids; // empty: all threads
  size_t max_frames = 256;
};

struct NamedFrame {
  std::string function; // demangled; empty when unknown
  uint64_t offset = 0;  // pc - function start
  std::string module;   // file name; empty outside modules
  std::string file;     // empty without DWARF
  uint32_t line = 0;
};

NamedFrame nameFrame(const AddressSpace& space, llvm::symbolize::LLVMSymbolizer& symbolizer,
                     const UnwoundFrame& frame) {
  NamedFrame named;
  // A return address names the call, which lies before it.
  uint64_t lookup = frame.activation ? frame.pc : frame.pc - 1;
  AddressInfo info = space.lookup(lookup);
  named.module = info.module_name;
  if (!info.symbol.empty()) {
    named.function = info.symbol;
    named.offset = frame.pc - info.symbol_address;
  }
  if (info.module_index < 0 || !info.file_vaddr)
    return named;
  const LocatedModule* located = space.modules()[static_cast<size_t>(info.module_index)].located;
  if (!located)
    return named;
  if (!hasSymbolizerDwarf(*located))
    return named;
  auto line = symbolizeModuleCode(symbolizer, *located, *info.file_vaddr);
  if (!line) {
    llvm::consumeError(line.takeError()); // a damaged debug file: the frame keeps its symbol
    return named;
  }
  if (line->FileName != llvm::DILineInfo::BadString) {
    named.file = line->FileName;
    named.line = line->Line;
  }
  return named;
}

void printFrame(Printer& printer, size_t number, const UnwoundFrame& frame,
                const NamedFrame& named) {
  if (!printer.isJson()) {
    std::string text = llvm::formatv("#{0,-2} {1}", number, hexString(frame.pc)).str();
    if (frame.signal_trampoline)
      text += " <signal handler called>";
    text += " " + (named.function.empty() ? std::string("<?>") : named.function);
    if (!named.function.empty() && named.offset != 0)
      text += "+" + hexString(named.offset);
    if (!named.module.empty())
      text += " (" + named.module + ")";
    if (!named.file.empty())
      text += " at " + named.file + ":" + std::to_string(named.line);
    if (frame.trust != FrameTrust::Context && frame.trust != FrameTrust::Cfi)
      text += " [" + toString(frame.trust).str() + "]";
    printer.printLine(text);
    return;
  }
  DictScope scope(printer);
  printer.printHex("pc", frame.pc);
  if (named.function.empty())
    printer.printNull("function");
  else
    printer.printString("function", named.function);
  printer.printUnsigned("offset", named.offset);
  printer.printString("module", named.module);
  if (named.file.empty()) {
    printer.printNull("file");
    printer.printNull("line");
  } else {
    printer.printString("file", named.file);
    printer.printUnsigned("line", named.line);
  }
  printer.printBool("inlined", false);
  printer.printString("trust", toString(frame.trust));
  printer.printBool("signal_trampoline", frame.signal_trampoline);
}

llvm::Error printBacktrace(OpenedSource& source, const BacktraceOptions& options,
                           Printer& printer) {
  const Snapshot& snapshot = *source.snapshot;
  const auto& records = snapshot.metadata().threads;
  UnwindOptions unwind;
  unwind.max_frames = options.max_frames;
  for (int32_t tid : options.tids) {
    auto found = std::find_if(records.begin(), records.end(),
                              [&](const ThreadRecord& record) { return record.tid == tid; });
    if (found == records.end())
      return llvm::createStringError(llvm::inconvertibleErrorCode(), "no thread %d in '%s'", tid,
                                     snapshot.sourcePath().str().c_str());
    unwind.thread_indices.push_back(static_cast<size_t>(found - records.begin()));
  }
  std::vector<std::string> warnings;
  UnwindImages images = buildUnwindImages(*source.space, warnings);
  std::vector<UnwoundThread> threads = unwindThreads(snapshot, images.images, unwind, warnings);
  for (const std::string& warning : warnings)
    printer.warn(warning);

  auto symbolizer = createSymbolizer(source.locator->options());

  // Text: eu-stack's shape, one header per thread, not an indented list.
  if (printer.isJson())
    printer.beginList("threads");
  for (const UnwoundThread& thread : threads) {
    const ThreadRecord& record = records[thread.thread_index];
    if (printer.isJson()) {
      printer.beginObject();
      printer.printSigned("tid", record.tid);
      printer.printString("name", record.name);
      printer.printString("state", record.state);
      printer.printString("stop_reason", thread.stop_reason);
      printer.printBool("complete", thread.complete);
      printer.beginList("frames");
    } else {
      printer.printLine(
          llvm::formatv("TID {0} ({1}) {2}:", record.tid, record.name, record.state).str());
    }
    for (size_t i = 0; i < thread.frames.size(); ++i)
      printFrame(printer, i, thread.frames[i],
                 nameFrame(*source.space, *symbolizer, thread.frames[i]));
    if (printer.isJson()) {
      printer.endList();
      printer.endObject();
    } else {
      printer.printLine("(" + thread.stop_reason + ")");
      printer.printLine("");
    }
  }
  if (printer.isJson())
    printer.endList();
  return llvm::Error::success();
}

} // namespace

int runBacktrace(const CommonOptions& common) {
  BacktraceOptions options;
  options.tids.assign(backtrace_threads.begin(), backtrace_threads.end());
  options.max_frames = backtrace_max_frames;
  if (options.max_frames == 0)
    return reportError("--max-frames must be at least 1");
  std::vector<std::string> paths(backtrace_sources.begin(), backtrace_sources.end());
  return runForEachSource(paths, common, /*build_address_space=*/true,
                          [&](OpenedSource& source, Printer& printer) {
                            return printBacktrace(source, options, printer);
                          });
}

} // namespace procsnap::analyze
