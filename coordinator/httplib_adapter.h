// The one include of cpp-httplib for drover. Debian's libcpp-httplib is a
// compiled library built with OpenSSL, zlib and Brotli; its classes change
// layout with those macros, so every user must see the same ones it was built
// with, or objects are silently the wrong size. Link: cpp-httplib.
// Thread-safety: as httplib (a Server handles requests on its own thread pool).
#pragma once

#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT
#endif
#ifndef CPPHTTPLIB_ZLIB_SUPPORT
#define CPPHTTPLIB_ZLIB_SUPPORT
#endif
#ifndef CPPHTTPLIB_BROTLI_SUPPORT
#define CPPHTTPLIB_BROTLI_SUPPORT
#endif

#include <httplib.h>
