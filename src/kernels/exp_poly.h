/* exp_poly.h - the constants of the vector e^x of the AVX2 and AVX-512 levels
 * (elem_avx2.c, cpu_avx512.c), one definition for both so they give the same bits:
 * x = n ln2 + r (ln2 in two parts, so n ln2 is exact), |r| <= ln2/2, e^r by its
 * Taylor series to r^12 in Horner form (relative error below 1e-14), times 2^n. */
#ifndef FRUGAL_EXP_POLY_H
#define FRUGAL_EXP_POLY_H

#define FR_EXP_LOG2E 1.4426950408889634
#define FR_EXP_LN2_HI 6.93147180369123816490e-01
#define FR_EXP_LN2_LO 1.90821492927058770002e-10

/* 1/12!, 1/11!, ..., 1/1!, 1/0!: Horner's coefficients, highest power first */
static const double fr_exp_taylor[13] = {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
                                         1.0 / 40320.0,     1.0 / 5040.0,     1.0 / 720.0,     1.0 / 120.0,
                                         1.0 / 24.0,        1.0 / 6.0,        0.5,             1.0,
                                         1.0};

#endif
