#include <zmq.h>
// mallopt: libzmq mallocs every large message; see MessageMemory.swift.
#include <malloc.h>
