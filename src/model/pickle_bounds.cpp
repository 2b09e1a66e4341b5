#include "src/model/pickle_bounds.h"

#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace cliprepro {
namespace {

// How an opcode's argument is laid out (Python's pickletools.opcodes, protocols 0-5).
enum class Arg { kNone, kFixed, kLength, kLine, kTwoLines, kUnknown };

struct Layout {
  Arg arg;
  size_t bytes;  // kFixed: the argument's size; kLength: the size of the length field
};

Layout layout(uint8_t op) {
  switch (op) {
    case 'K':
    case 'h':
    case 'q':
    case 0x82:
    case 0x80:  // BININT1 BINGET BINPUT EXT1 PROTO
      return {Arg::kFixed, 1};
    case 'M':
    case 0x83:  // BININT2 EXT2
      return {Arg::kFixed, 2};
    case 'J':
    case 'j':
    case 'r':
    case 0x84:  // BININT LONG_BINGET LONG_BINPUT EXT4
      return {Arg::kFixed, 4};
    case 'G':
    case 0x95:  // BINFLOAT; FRAME (its length is advisory, the frame's opcodes follow)
      return {Arg::kFixed, 8};
    case 'U':
    case 0x8c:
    case 'C':
    case 0x8a:  // SHORT_BINSTRING SHORT_BINUNICODE SHORT_BINBYTES LONG1
      return {Arg::kLength, 1};
    case 'T':
    case 'X':
    case 'B':
    case 0x8b:  // BINSTRING BINUNICODE BINBYTES LONG4
      return {Arg::kLength, 4};
    case 0x8d:
    case 0x8e:
    case 0x96:  // BINUNICODE8 BINBYTES8 BYTEARRAY8
      return {Arg::kLength, 8};
    case 'I':
    case 'L':
    case 'S':
    case 'V':
    case 'F':
    case 'g':
    case 'p':
    case 'P':
      return {Arg::kLine, 0};
    case 'c':
    case 'i':  // GLOBAL INST: module and name lines
      return {Arg::kTwoLines, 0};
    case '(':
    case '.':
    case '0':
    case '1':
    case '2':
    case 'N':
    case 'R':
    case 'a':
    case 'b':
    case 'd':
    case '}':
    case 'e':
    case 'l':
    case ']':
    case 'o':
    case 's':
    case 't':
    case ')':
    case 'u':
    case 'Q':
    case 0x81:
    case 0x85:
    case 0x86:
    case 0x87:
    case 0x88:
    case 0x89:
    case 0x8f:
    case 0x90:
    case 0x91:
    case 0x92:
    case 0x93:
    case 0x94:
    case 0x97:
    case 0x98:
      return {Arg::kNone, 0};
    default:
      return {Arg::kUnknown, 0};
  }
}

uint64_t little_endian(const char* p, size_t bytes) {
  uint64_t n = 0;
  for (size_t i = 0; i < bytes; ++i) n |= uint64_t(uint8_t(p[i])) << (8 * i);
  return n;
}

}  // namespace

void check_pickle_lengths(const char* data, size_t size, const std::string& where) {
  const auto fail = [&](size_t at, const std::string& what) {
    throw std::runtime_error(where + ": pickle opcode at byte " + std::to_string(at) + " " + what);
  };
  size_t pos = 0;
  while (pos < size) {
    const size_t at = pos;
    const uint8_t op = static_cast<uint8_t>(data[pos++]);
    const Layout l = layout(op);
    const size_t left = size - pos;
    switch (l.arg) {
      case Arg::kUnknown:
        return;
      case Arg::kNone:
        if (op == '.') return;  // STOP
        break;
      case Arg::kFixed:
        if (l.bytes > left) fail(at, "is cut short");
        if (op == 'r') {  // LONG_BINPUT: the unpickler grows its memo to the index first
          const uint64_t index = little_endian(data + pos, 4);
          // Each memoised value takes at least one opcode, so no index reaches the pickle's size.
          if (index >= size) {
            fail(at, "puts memo entry " + std::to_string(index) + " in a " + std::to_string(size) +
                         "-byte pickle");
          }
        }
        pos += l.bytes;
        break;
      case Arg::kLength: {
        if (l.bytes > left) fail(at, "is cut short");
        const uint64_t n = little_endian(data + pos, l.bytes);
        pos += l.bytes;
        if (n > size - pos) {
          fail(at, "declares " + std::to_string(n) + " bytes where " + std::to_string(size - pos) +
                       " remain");
        }
        pos += size_t(n);
        break;
      }
      case Arg::kLine:
      case Arg::kTwoLines:
        for (int line = 0; line < (l.arg == Arg::kLine ? 1 : 2); ++line) {
          const void* nl = std::memchr(data + pos, '\n', size - pos);
          if (nl == nullptr) fail(at, "has no end of line");
          pos = size_t(static_cast<const char*>(nl) - data) + 1;
        }
        break;
    }
  }
}

}  // namespace cliprepro
