// A walk over a pickle's opcodes, before LibTorch's unpickler sees it: that unpickler allocates
// whatever length a string or bytes opcode declares before it reads (a 4-byte BINUNICODE length
// of 4 GiB in a 2 kB checkpoint allocated 4 GiB), so every declared length is checked against the
// bytes that follow it first, and every memo index (LONG_BINPUT grew the memo to a 4-byte index:
// 30 GB) against the pickle's size.
#pragma once
#include <cstddef>
#include <string>

namespace cliprepro {

// Throws std::runtime_error naming `where` and the opcode's offset when an opcode declares more
// bytes than remain or a memo index no pickle of this size can reach. Opcodes it does not know end the walk (the unpickler refuses them itself).
void check_pickle_lengths(const char* data, size_t size, const std::string& where);

}  // namespace cliprepro
