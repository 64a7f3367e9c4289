#include "base/host_port.h"

namespace cllm {

bool ParseHostPort(std::string_view s, std::string* host, uint16_t* port) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == s.size() || s.size() - colon - 1 > 5) return false;
  std::string h(s.substr(0, colon));
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  uint32_t p = 0;
  for (char c : s.substr(colon + 1)) {
    if (c < '0' || c > '9') return false;
    p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (p > 65535 || h.empty()) return false;
  *host = std::move(h);
  *port = static_cast<uint16_t>(p);
  return true;
}

}  // namespace cllm
