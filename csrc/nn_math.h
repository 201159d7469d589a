#ifndef NNOPT_NN_MATH_H_
#define NNOPT_NN_MATH_H_

/*
 * Inline scalar math written so that GCC vectorizes the loops that call it:
 * no libm calls, no data-dependent branches (both tanh branches are computed
 * and one is selected), integer tricks instead of float->int conversions.
 */

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- splitmix64 (dropout masks; must match reference._mix64_array) ---- */

#define NN_GOLDEN 0x9E3779B97F4A7C15ULL

static inline uint64_t nn_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Unit e (its flat index + 1) of a layer is kept iff the top 24 bits of mix(key + e G)
 * are below thr; this takes z = key + e G, which along a row of consecutive counters
 * grows by G (mod 2^64): a 64-bit multiply fewer per unit than computing e G. */
static inline int nn_dropout_kept_z(uint64_t z, uint64_t thr)
{
    /* mix64's last step z ^ (z >> 31) leaves the top 24 bits unchanged: skipped. */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (z >> 40) < thr;
}

/* ---- exp (float) ----
 * exp(x) = 2^n exp(r), x = n ln2 + r, |r| <= ln2/2, exp(r) by its Taylor polynomial of
 * degree 7 (truncation 5e-9 relative): about 2 ulp from expf. Below -87 it returns 0 and
 * above 88 +inf (expf gives a subnormal or a finite value within a factor 2 there);
 * NaN propagates.
 */
static inline float nn_exp_f32(float x)
{
    const float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const float kd = xc * 1.44269504088896341f + magic;
    const float n = kd - magic;
    const float r = (xc - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t kb;
    memcpy(&kb, &kd, sizeof kb);
    const uint32_t sb = (kb + 127u) << 23; /* 2^n from the low bits of kd */
    float scale;
    memcpy(&scale, &sb, sizeof scale);
    float res = p * scale;
    res = x < -87.0f ? 0.0f : res;
    return x > 88.0f ? (float)INFINITY : res;
}

/* ---- tanh ----
 * float: tanh(x) ~ x P(x^2) / Q(x^2) on |x| <= 9, P and Q of degree 4, fitted by
 *        Lawson-weighted least squares for the smallest maximum absolute error (3.4e-7
 *        measured in float32 arithmetic over [-40, 40]); beyond 9 tanh rounds to +-1.
 *        Ten multiply-adds and one division: the cheapest form that vectorizes.
 *        The same rational function as the Numba kernels' float32 tanh.
 * double: |x| < 0.625: tanh(x) = x + x^3 Q(x^2), Q a least-squares fit (abs error of the
 *        fit 1.1e-16, below the type's rounding); otherwise tanh(|x|) = 1 - 2 / (exp(2|x|) + 1),
 *        exp by range reduction 2|x| = n ln2 + r, |r| <= ln2/2, and a Taylor polynomial of
 *        exp(r) (truncation 2e-16 relative), scaled by 2^n built from the bits of n; |x| is
 *        clamped at 19.1, where tanh rounds to 1.
 * NaN propagates; tanh(-0) = -0. Measured max abs error vs np.tanh: see
 * tests/test_parity_kernels.py (bounds 1e-6 float, 1e-13 double).
 */

static inline float nn_tanh_f32(float x)
{
    /* Comparisons that let NaN through, so that a diverging batch stays NaN. */
    const float a = x > 9.0f ? 9.0f : (x < -9.0f ? -9.0f : x);
    const float u = a * a;
    float p = 1.3184984277485585e-08f;
    p = p * u + 2.0472384683325860e-05f;
    p = p * u + 3.4866158303648127e-03f;
    p = p * u + 1.3373226369836361e-01f;
    p = p * u + 1.0f; /* 1: tanh(x) = x exactly for tiny x */
    float q = 7.7029762529044857e-07f;
    q = q * u + 3.2714406971731728e-04f;
    q = q * u + 2.5842108599356949e-02f;
    q = q * u + 4.6706523247818166e-01f;
    q = q * u + 1.0f;
    float r = a * p / q;
    /* The fit overshoots 1 by ~1e-8 near the clamp: keep |tanh| <= 1 so 1 - H^2 >= 0;
     * past the clamp tanh rounds to exactly +-1 in float32. */
    r = r > 1.0f ? 1.0f : (r < -1.0f ? -1.0f : r);
    return x > 9.0f ? 1.0f : (x < -9.0f ? -1.0f : r);
}

static inline double nn_tanh_f64(double x)
{
    const double ax = fabs(x);
    const double x2 = x * x;
    double q = -1.5638613391497217e-05;
    q = q * x2 + 7.613810107533757e-05;
    q = q * x2 - 0.00022754537011247588;
    q = q * x2 + 0.0005857261133596669;
    q = q * x2 - 0.001454743313880084;
    q = q * x2 + 0.0035919377832911337;
    q = q * x2 - 0.008863212991577796;
    q = q * x2 + 0.021869486782896182;
    q = q * x2 - 0.05396825388473102;
    q = q * x2 + 0.13333333333122188;
    q = q * x2 - 0.3333333333333137;
    const double small = copysign(x + x * x2 * q, x);

    const double y = 2.0 * (ax < 20.0 ? ax : 20.0);
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    const double kd = y * 1.4426950408889634074 + magic;
    const double n = kd - magic;
    /* ln2 split so that n * hi is exact for |n| < 2^20. */
    const double r = (y - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
    double p = 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    uint64_t kb;
    memcpy(&kb, &kd, sizeof kb);
    const uint64_t sb = (kb + 1023u) << 52;
    double scale;
    memcpy(&scale, &sb, sizeof scale);
    const double big = copysign(1.0 - 2.0 / (p * scale + 1.0), x);

    const double res = ax < 0.625 ? small : big;
    return x != x ? x : res;
}

/* ---- log (double), for the losses ----
 * x = m 2^e with m in [sqrt(2)/2, sqrt(2)); log m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...)
 * with s = (m - 1) / (m + 1), |s| <= 0.1716: eleven terms leave a truncation below 2e-17
 * relative. Branch-free (so loops over it vectorize), about 2 ulp from libm's log on the
 * losses' range: positive normal x (the clipped probabilities, >= 2.2e-16). NaN
 * propagates; x <= 0, subnormal x and inf are not handled (the losses never pass them).
 */
static inline double nn_log_f64(double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    const double e0 = (double)(int64_t)(bits >> 52) - 1023.0;
    const uint64_t mb = (bits & 0x000FFFFFFFFFFFFFULL) | 0x3FF0000000000000ULL;
    double m;
    memcpy(&m, &mb, sizeof m);
    const int up = m > 1.41421356237309504880;
    m = up ? 0.5 * m : m;
    const double e = up ? e0 + 1.0 : e0;
    const double s = (m - 1.0) / (m + 1.0), s2 = s * s;
    double q = 1.0 / 23.0;
    q = q * s2 + 1.0 / 21.0;
    q = q * s2 + 1.0 / 19.0;
    q = q * s2 + 1.0 / 17.0;
    q = q * s2 + 1.0 / 15.0;
    q = q * s2 + 1.0 / 13.0;
    q = q * s2 + 1.0 / 11.0;
    q = q * s2 + 1.0 / 9.0;
    q = q * s2 + 1.0 / 7.0;
    q = q * s2 + 1.0 / 5.0;
    q = q * s2 + 1.0 / 3.0;
    /* ln 2 split so that e * hi is exact for the exponents of doubles. */
    const double res = e * 6.93147180369123816490e-01 +
                       (2.0 * s + (2.0 * s * (s2 * q) + e * 1.90821492927058770002e-10));
    return x != x ? x : res;
}

#endif /* NNOPT_NN_MATH_H_ */
