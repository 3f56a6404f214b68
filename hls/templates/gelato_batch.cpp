// GELATO batch driver: runs the firmware top function on many events in one call.
//
// hls4ml's Python bridge calls the top function once per event through ctypes; this
// driver takes a whole (n_events x n_in) block of features instead, so the bit-accurate
// emulation runs at the speed of the compiled C++.  Each input is cast from double to
// input_t exactly as hls4ml's bridge and testbench do (the type's rounding and overflow
// modes apply), and each result is returned as the exact double value of result_t.
//
// Written into the hls4ml project by gelato.hls.batch, which fills in the @...@ fields.

#include <map>
#include <string>

#include "firmware/@PROJECT@.h"
#include "firmware/nnet_utils/nnet_helpers.h"

namespace nnet {
bool trace_enabled = false;
std::map<std::string, void *> *trace_outputs = NULL;
size_t trace_type_size = sizeof(double);
} // namespace nnet

namespace gelato {

struct batch_config {
    static const unsigned n_in = @N_IN@;
    static const unsigned n_out = @N_OUT@;
};

} // namespace gelato

extern "C" {

void gelato_batch_scores(const double *features, double *results, long n_events) {
    typedef gelato::batch_config config;
Events:
    for (long e = 0; e < n_events; e++) {
        input_t inputs[config::n_in];
        result_t outputs[config::n_out];
        for (unsigned i = 0; i < config::n_in; i++) {
            inputs[i] = features[e * config::n_in + i];
        }
        @PROJECT@(inputs, outputs);
        for (unsigned j = 0; j < config::n_out; j++) {
            results[e * config::n_out + j] = outputs[j].to_double();
        }
    }
}
}
