#include "harness/compare/compare.h"
