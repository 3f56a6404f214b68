// GELATO fast scorer: the firmware's arithmetic on native types, many events per call, several threads.
//
// Every fixed-point value of the firmware is carried as its integer code (value / LSB) in a
// double or a float.  The Python generator (gelato.hls.fastkernel) only emits this kernel after
// proving, for the types and weights at hand, that every code, product and partial sum is an
// integer of magnitude at most 2**51 (double) or 2**23 (float), so each multiply and add here is
// exact, in any order and with or without FMA contraction.  A cast to a narrower fixed-point type is a
// multiplication by a power of two (exact), a rounding with the type's mode, and a clamp when
// the type saturates; wrap-around and truncating accumulators are refused by the generator.
//
// Written by gelato.hls.fastkernel, which fills in the @...@ fields (types, weights, layers).

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

// Everything but the extern "C" entry points has internal linkage (the unnamed namespace): the
// weight tables are C++17 inline variables, which g++ would otherwise export as process-wide
// unique symbols, so a second kernel loaded into the same process would run the first one's weights.
namespace gelato_fast {
namespace {

enum rounding_mode { trn = 0, trn_zero = 1, rnd = 2, rnd_conv = 3 };

// Round an exact, scaled code to an integer as ap_fixed's quantization mode does.
template <class T, int MODE> inline T round_code(T scaled) {
    if constexpr (MODE == trn) {
        return std::floor(scaled);
    } else if constexpr (MODE == trn_zero) {
        return std::trunc(scaled);
    } else if constexpr (MODE == rnd) {
        return std::floor(scaled + T(0.5)); // the sum cannot round across an integer for codes <= 2**51 / 2**23
    } else {
        return std::rint(scaled); // half to even under the default rounding mode (checked on entry)
    }
}

// Events are scored in tiles of `lanes` events: every array below is [rows][lanes], so each
// operation is one SIMD instruction across the events of a tile, with the weights as scalars.
static const unsigned lanes = 16;
// Output columns a dense layer accumulates at once (independent multiply-add chains, named in dense_codes).
static const unsigned column_block = 4;

// Cast codes in place to another fixed-point type: scale by 2**shift, round, clamp if saturating.
template <class T, class CAST_T> inline void cast_codes(T data[CAST_T::n][lanes]) {
Cast:
    for (unsigned i = 0; i < CAST_T::n; i++) {
        for (unsigned b = 0; b < lanes; b++) {
            T code = round_code<T, CAST_T::rounding>(data[i][b] * T(CAST_T::scale));
            if constexpr (CAST_T::saturate) {
                code = std::min(std::max(code, T(CAST_T::min_code)), T(CAST_T::max_code));
            }
            data[i][b] = code;
        }
    }
}

// relu: negative codes become zero (then cast_codes applies the activation's type).
template <class T, unsigned N> inline void relu_codes(T data[N][lanes]) {
Relu:
    for (unsigned i = 0; i < N; i++) {
        for (unsigned b = 0; b < lanes; b++) {
            data[i][b] = std::max(data[i][b], T(0));
        }
    }
}

// Raw input words and the bit shift: float32 feature -> raw code -> scaled model-input code.
// poison[b] accumulates feature * 0: it stays zero for finite features and becomes NaN when an
// event has a NaN or infinite feature (no input word holds it); the caller adds it to the score.
// (A bool flag here would keep GCC from vectorizing the loop.)
template <class CONFIG_T>
inline void input_codes(const float features[lanes][CONFIG_T::n_in], double codes[CONFIG_T::n_in][lanes],
                        double poison[lanes]) {
    float columns[CONFIG_T::n_in][lanes];
Transpose: // event-major rows -> feature-major columns, so that the arithmetic below is SIMD
    for (unsigned b = 0; b < lanes; b++) {
        for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
            columns[i][b] = features[b][i];
        }
    }
Input:
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        for (unsigned b = 0; b < lanes; b++) {
            const float value = columns[i][b];
            poison[b] += double(value) * 0.0;
            double raw = round_code<double, CONFIG_T::raw_rounding>(double(value) * CONFIG_T::raw_scale);
            raw = std::min(std::max(raw, CONFIG_T::raw_min_code), CONFIG_T::raw_max_code);
            double scaled = round_code<double, CONFIG_T::scaled_rounding>(raw * CONFIG_T::shift_scale[i]);
            codes[i][b] = std::min(std::max(scaled, CONFIG_T::scaled_min_code), CONFIG_T::scaled_max_code);
        }
    }
}

// Per feature, the events of a tile whose raw word or scaled model-input word saturates (the
// same two casts as input_codes, compared with the type limits before the clamp).  Returns the
// number of NaN or infinite features, which no input word holds.
template <class CONFIG_T>
inline long count_saturation(const float features[lanes][CONFIG_T::n_in], long counts[CONFIG_T::n_in]) {
    long not_finite = 0;
Features:
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        long saturated = 0;
        for (unsigned b = 0; b < lanes; b++) {
            const float value = features[b][i];
            not_finite += !std::isfinite(value);
            const double raw = round_code<double, CONFIG_T::raw_rounding>(double(value) * CONFIG_T::raw_scale);
            const double word = std::min(std::max(raw, CONFIG_T::raw_min_code), CONFIG_T::raw_max_code);
            const double scaled = round_code<double, CONFIG_T::scaled_rounding>(word * CONFIG_T::shift_scale[i]);
            saturated += (raw != word) | (scaled < CONFIG_T::scaled_min_code) | (scaled > CONFIG_T::scaled_max_code);
        }
        counts[i] += saturated;
    }
    return not_finite;
}

// One SIMD register as a GCC vector type, so each multiply-add of a dense layer is one vector
// instruction across events of a tile, whatever the auto-vectorizer decides.  The width follows
// the instruction set the library is compiled for.
#if defined(__AVX512F__)
static const unsigned simd_bytes = 64;
#elif defined(__AVX__)
static const unsigned simd_bytes = 32;
#else
static const unsigned simd_bytes = 16;
#endif
template <class T> struct lane_vector;
template <> struct lane_vector<double> { typedef double type __attribute__((vector_size(simd_bytes))); };
template <> struct lane_vector<float> { typedef float type __attribute__((vector_size(simd_bytes))); };

// Dense layer on codes: acc = bias + sum_i x_i w_i in accumulator-LSB units (exact).  The weight
// table has n_out_padded columns (zeros beyond n_out), a multiple of column_block.
template <class data_T, class CONFIG_T>
inline void dense_codes(const data_T data[CONFIG_T::n_in][lanes],
                        typename CONFIG_T::accum_t acc[CONFIG_T::n_out_padded][lanes]) {
    typedef typename CONFIG_T::accum_t accum_t;
    typedef typename lane_vector<accum_t>::type accum_vector;
    static const unsigned width = simd_bytes / sizeof(accum_t);
    static_assert(CONFIG_T::n_out_padded % column_block == 0, "pad the weight table to whole column blocks");
    static_assert(lanes % width == 0, "a tile is a whole number of SIMD registers");
Lanes:
    for (unsigned b = 0; b < lanes; b += width) {
    Columns: // four named accumulators, so that they stay in registers (an array of them would not)
        for (unsigned j = 0; j < CONFIG_T::n_out_padded; j += column_block) {
            accum_vector sum0 = accum_vector{} + CONFIG_T::biases[j], sum1 = accum_vector{} + CONFIG_T::biases[j + 1];
            accum_vector sum2 = accum_vector{} + CONFIG_T::biases[j + 2];
            accum_vector sum3 = accum_vector{} + CONFIG_T::biases[j + 3];
        Product:
            for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
                accum_vector x;
                for (unsigned k = 0; k < width; k++) {
                    x[k] = accum_t(data[i][b + k]);
                }
                const accum_t *weights = CONFIG_T::weights + i * CONFIG_T::n_out_padded + j;
                sum0 += x * weights[0];
                sum1 += x * weights[1];
                sum2 += x * weights[2];
                sum3 += x * weights[3];
            }
            std::memcpy(&acc[j][b], &sum0, sizeof(sum0));
            std::memcpy(&acc[j + 1][b], &sum1, sizeof(sum1));
            std::memcpy(&acc[j + 2][b], &sum2, sizeof(sum2));
            std::memcpy(&acc[j + 3][b], &sum3, sizeof(sum3));
        }
    }
}

// Sum of squares of the latent codes, in score-accumulator LSB units (exact in double).
template <class data_T, class CONFIG_T> inline void dot_codes(const data_T data[CONFIG_T::n_in][lanes],
                                                             double acc[1][lanes]) {
    for (unsigned b = 0; b < lanes; b++) {
        acc[0][b] = 0.0;
    }
Square:
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        for (unsigned b = 0; b < lanes; b++) {
            const double code = double(data[i][b]);
            acc[0][b] += code * code * CONFIG_T::scale;
        }
    }
}

// clang-format off
@CONFIG@
// clang-format on

// One tile of events: features [lanes][n_features] -> scores [lanes] (NaN where a feature is not finite).
inline void score_tile(const float features[lanes][n_features], double scores[lanes]) {
@LAYERS@
}

inline void score_block(const float *features, double *scores, long first, long last) {
    typedef const float tile_t[lanes][n_features];
Tiles:
    for (long e = first; e + long(lanes) <= last; e += lanes) {
        score_tile(*reinterpret_cast<tile_t *>(features + e * n_features), scores + e);
    }
    const long done = first + (last - first) / long(lanes) * long(lanes);
    if (done < last) { // the last, partial tile: zero-padded copy
        float padded[lanes][n_features] = {};
        double padded_scores[lanes];
        std::copy(features + done * n_features, features + last * n_features, &padded[0][0]);
        score_tile(padded, padded_scores);
        std::copy(padded_scores, padded_scores + (last - done), scores + done);
    }
}

// Saturation counts of events [first, last), added to counts; returns the non-finite feature count.
inline long saturation_block(const float *features, long counts[n_features], long first, long last) {
    typedef const float tile_t[lanes][n_features];
    long not_finite = 0;
Tiles:
    for (long e = first; e + long(lanes) <= last; e += lanes) {
        not_finite += count_saturation<input_config>(*reinterpret_cast<tile_t *>(features + e * n_features), counts);
    }
    const long done = first + (last - first) / long(lanes) * long(lanes);
    if (done < last) { // the last, partial tile: zero-padded copy (zero saturates nothing)
        float padded[lanes][n_features] = {};
        std::copy(features + done * n_features, features + last * n_features, &padded[0][0]);
        not_finite += count_saturation<input_config>(padded, counts);
    }
    return not_finite;
}

// Split [0, n_events) into one share of whole tiles per thread and run block(first, last, t) on each.
template <class BLOCK_T> inline void run_threads(long n_events, int n_threads, BLOCK_T block) {
    const long threads = std::max(1L, std::min<long>(n_threads, n_events));
    const long share = ((n_events + threads - 1) / threads + lanes - 1) / lanes * lanes; // whole tiles
    std::vector<std::thread> workers;
    for (long t = 1; t < threads; t++) {
        workers.emplace_back(block, std::min(n_events, t * share), std::min(n_events, (t + 1) * share), t);
    }
    block(0L, std::min(n_events, share), 0L);
    for (std::thread &worker : workers) {
        worker.join();
    }
}

} // namespace
} // namespace gelato_fast

extern "C" {

// Number of input features the kernel was generated for (checked by the Python caller).
int gelato_fast_n_features() { return gelato_fast::n_features; }

// Scores of n_events events (row-major float32 features) with n_threads threads; an event with a
// NaN or infinite feature gets a NaN score (the caller refuses it).  Returns 0, or -1 when the
// floating-point rounding mode is not round-to-nearest-even, in which case no score is written.
int gelato_fast_scores(const float *features, double *scores, long n_events, int n_threads) {
    if (std::fegetround() != FE_TONEAREST) {
        return -1;
    }
    gelato_fast::run_threads(n_events, n_threads, [=](long first, long last, long) {
        gelato_fast::score_block(features, scores, first, last);
    });
    return 0;
}

// Per feature, the number of events whose raw or scaled input word saturates (counts[n_features],
// overwritten).  Returns the number of NaN or infinite features, or -1 when the rounding mode is
// not round-to-nearest-even (counts then untouched).
long gelato_fast_input_saturation(const float *features, long *counts, long n_events, int n_threads) {
    if (std::fegetround() != FE_TONEAREST) {
        return -1;
    }
    const long n = gelato_fast::n_features;
    std::vector<long> partial(n * std::max(1, n_threads), 0), not_finite(std::max(1, n_threads), 0);
    gelato_fast::run_threads(n_events, n_threads, [&](long first, long last, long t) {
        not_finite[t] = gelato_fast::saturation_block(features, partial.data() + t * n, first, last);
    });
    long total_not_finite = 0;
    for (long i = 0; i < n; i++) {
        counts[i] = 0;
    }
    for (long t = 0; t < long(not_finite.size()); t++) {
        total_not_finite += not_finite[t];
        for (long i = 0; i < n; i++) {
            counts[i] += partial[t * n + i];
        }
    }
    return total_not_finite;
}
}
