// tee.h — choosing the TEE attester: `cllm-server --tee`, and a client's `--client-tee` (mutual mode).
#pragma once

#include <memory>
#include <string>

#include "attestation/attester.h"

namespace cllm::app {

// OpenAttester returns the attester for `tee` ("sim", "snp", "tdx", "csv" or
// "auto": the first interface this machine offers). `sim_key` is the sim
// platform key file (required for "sim"). Errors explain what is missing.
attestation::AttestResult<std::shared_ptr<attestation::Attester>> OpenAttester(const std::string& tee,
                                                                               const std::string& sim_key);

}  // namespace cllm::app
