#include "src/model/checkpoint.h"
