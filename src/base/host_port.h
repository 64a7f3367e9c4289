// host_port.h — "HOST:PORT" listen addresses on command lines.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cllm {

// ParseHostPort splits "host:port" or "[v6]:port" (port 0–65535; 0 picks a
// free port when listening). False on anything else.
bool ParseHostPort(std::string_view text, std::string* host, uint16_t* port);

}  // namespace cllm
