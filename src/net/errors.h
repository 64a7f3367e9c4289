// errors.h — the error codes of the net library (server and client alike).
#pragma once

#include "base/result.h"

namespace cllm::net {

enum class NetErrc {
  kInvalidArgument = 1,  // bad address, option out of range
  kListen,               // cannot bind / listen (address in use, permission)
  kConnect,              // DNS or TCP connect failure
  kTimeout,              // a deadline passed (which one is in the detail)
  kTls,                  // TLS failure that is not a peer verifier's verdict
  kRefused,              // the peer verifier refused the peer (detail: its reason)
  kProtocol,             // malformed HTTP, connection closed early
  kTooLarge,             // a head or body over its limit
  kClosed,               // the peer closed the connection
};
const char* NetErrcName(NetErrc code);

template <typename T>
using NetResult = Result<T, NetErrc>;
using NetStatus = Status<NetErrc>;

}  // namespace cllm::net
