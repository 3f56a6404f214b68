#ifndef NNET_BITSHIFT_H_
#define NNET_BITSHIFT_H_

// GELATO input scaling: x_scaled[i] = x[i] / 2**shift(i), one power-of-two exponent per
// feature, done on fixed-point words with no multiplier.
//
// Two steps, in this order (an emulator must do the same):
//   1. the input word is copied into shift_t, a type with max_right_shift more fraction
//      bits and max_left_shift more integer bits than the input type, and shifted there:
//      a right shift (positive exponent) keeps every input LSB, a left shift (negative
//      exponent) cannot overflow.  This step is exact.
//   2. the shifted word is cast to the model input type res_T, whose own rounding and
//      overflow modes apply (GELATO uses AP_RND_CONV and AP_SAT, as QKeras rounds).
// The exponents are compile-time constants, so after unrolling each shift is wiring.

#include "nnet_common.h"

namespace nnet {

struct bitshift_config {
    // Number of features.
    static const unsigned n_in = 10;
    // Largest positive (right) and largest magnitude negative (left) exponent.
    static const unsigned max_right_shift = 0;
    static const unsigned max_left_shift = 0;
    // Type wide enough to hold every shifted input word exactly.
    typedef ap_fixed<16, 6> shift_t;
    // Exponent of feature i: x / 2**shift(i); negative means a left shift.
    static int shift(unsigned i) { return 0; }
};

template <class data_T, class res_T, typename CONFIG_T>
void bitshift_scale(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in]) {
    #pragma HLS INLINE
    #pragma HLS ARRAY_PARTITION variable=data complete
    #pragma HLS ARRAY_PARTITION variable=res complete

BitShift:
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        #pragma HLS UNROLL
        typename CONFIG_T::shift_t word = data[i];
        const int exponent = CONFIG_T::shift(i);
        if (exponent >= 0) {
            word = word >> (unsigned)exponent;
        } else {
            word = word << (unsigned)(-exponent);
        }
        res[i] = (res_T)word;
    }
}

} // namespace nnet

#endif
