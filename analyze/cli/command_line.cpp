#include "analyze/cli/command_line.h"

#include "analyze/cli/error_report.h"

#include <llvm/ADT/StringExtras.h>
#include <llvm/Support/raw_ostream.h>

#include <cctype>

namespace procsnap::analyze {

namespace {

// The shared options that take their value as the next argument when not written "=VALUE".
bool takesSeparateValue(llvm::StringRef arg) {
  llvm::StringRef name = arg.ltrim('-');
  return !arg.contains('=') && (name == "sysroot" || name == "debug-dir");
}

const CommandRow* commandNamed(llvm::StringRef name) {
  for (const CommandRow& row : kCommandTable)
    if (name == row.name)
      return &row;
  return nullptr;
}

// "<what: 0xSTART-0xEND | ...>" reads "<what>" in a usage line.
std::string shortPositional(llvm::StringRef description) {
  size_t colon = description.find(':');
  if (description.starts_with("<") && colon != llvm::StringRef::npos)
    return (description.take_front(colon) + ">").str();
  return description.str();
}

// LLVM's first line without the program prefix, its "Try:"/"See:" pointers and final
// punctuation, starting lowercase: "Unknown command line argument '--x'.  Try: ..." reads
// "unknown command line argument '--x'".
std::string cleanedMessage(llvm::StringRef llvm_errors) {
  llvm::SmallVector<llvm::StringRef, 4> lines;
  llvm_errors.split(lines, '\n', -1, /*KeepEmpty=*/false);
  if (lines.empty())
    return "invalid command line";
  llvm::StringRef first = lines[0];
  if (first.starts_with("procsnap-analyze")) {
    size_t colon = first.find(": ");
    if (colon != llvm::StringRef::npos)
      first = first.drop_front(colon + 2);
  }
  for (llvm::StringRef pointer : {"  Try:", " See:", " Try:"}) {
    size_t at = first.find(pointer);
    if (at != llvm::StringRef::npos)
      first = first.take_front(at);
  }
  first = first.rtrim(" .!");
  std::string message = first.str();
  if (llvm::StringRef(message).starts_with_insensitive("not enough positional")) {
    message = "missing arguments";
  }
  if (!message.empty())
    message[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(message[0])));
  // LLVM's suggestion ("Did you mean '--json'?") is worth keeping, on the same line.
  for (llvm::StringRef line : llvm::ArrayRef(lines).drop_front()) {
    size_t at = line.find("Did you mean ");
    if (at != llvm::StringRef::npos)
      message += " (did you mean " + line.drop_front(at + 13).rtrim(" ?").str() + "?)";
  }
  return message;
}

} // namespace

ReorderedCommandLine commandFirst(int argc, char** argv) {
  ReorderedCommandLine line;
  line.args.assign(argv, argv + argc);
  for (int i = 1; i < argc; ++i) {
    llvm::StringRef arg = argv[i];
    if (arg.starts_with("-") && arg != "-") {
      if (takesSeparateValue(arg))
        ++i;
      continue;
    }
    line.command = commandNamed(arg);
    if (line.command && i > 1) {
      line.args.erase(line.args.begin() + i);
      line.args.insert(line.args.begin() + 1, argv[i]);
    }
    break;
  }
  return line;
}

std::string usageLine(const CommandRow* command) {
  if (!command)
    return "usage: procsnap-analyze COMMAND [OPTIONS] SOURCE... (procsnap-analyze --help lists "
           "the commands)";
  std::string usage = std::string("usage: procsnap-analyze ") + command->name + " [OPTIONS]";
  for (const llvm::cl::Option* positional : subcommand(command->name).PositionalOpts)
    usage += " " + shortPositional(positional->HelpStr);
  return usage;
}

int reportUsageError(llvm::StringRef llvm_errors, const CommandRow* command) {
  int status = reportError(cleanedMessage(llvm_errors));
  llvm::errs() << usageLine(command) << "\n";
  return status;
}

} // namespace procsnap::analyze
