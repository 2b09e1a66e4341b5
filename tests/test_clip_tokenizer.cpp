// CLIP BPE tokenizer tests (being written).
#include <gtest/gtest.h>
