#include "harness/store/store.h"
