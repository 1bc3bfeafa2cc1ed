#pragma once
#include <zmq.h>
#include <errno.h>
#include <string.h>
// errno is a macro on glibc; Swift cannot always read it directly.
static inline int czmq_errno(void) { return errno; }
