/* Unit tests of decode attention's automatic split count (sf_decode_split_rule,
 * kernels/decode_attention.cu) from the figures the rule reads off a device, no GPU needed: one
 * mma CTA an SM where its 64 KB in flight (at head dim 128) cover the SM's share of the
 * bandwidth (an H100's), a second where they do not (an H200's) as long as its splits keep 256
 * keys; the occupancy, at most 16 splits, over a paged cache; never splits shorter than 128 keys. */
#include "config.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "decode_attention.h"

/* what the two machines report: memory clock (MHz) and bus width (bits) */
static const double h100 = 2.0 * 2619e6 * 5120 / 8, h200 = 2.0 * 3201e6 * 6016 / 8;
static const size_t mma_in_flight = 64 * 1024; /* the mma kernel's at head dim 128 */

/* the mma kernel at two CTAs an SM on a 132-SM device of bandwidth bw */
static int mma(int64_t ctas_a_split, int64_t keys, double bw, int paged)
{
    const sf_decode_split_inputs in = {ctas_a_split, keys, 132, 2, mma_in_flight, bw, paged};
    return sf_decode_split_rule(&in);
}

static void test_one_cta_an_sm_where_it_covers_the_bandwidth(void **state)
{
    (void)state;
    assert_int_equal(mma(32, 4096, h100, 0), 4);    /* 32/32 heads, B = 1 */
    assert_int_equal(mma(8, 4096, h100, 0), 16);    /* 64/8, B = 1 */
    assert_int_equal(mma(8, 2048, h100, 0), 16);
    assert_int_equal(mma(8, 1024, h100, 0), 8);     /* 16 would be 64 keys a split */
    assert_int_equal(mma(128, 16384, h100, 0), 1);  /* 32/32, B = 4 */
    assert_int_equal(mma(32, 4096, 0.0, 0), 4);     /* a device that reports no bandwidth */
    /* at head dim 64 a CTA keeps 32 KB in flight: short of the H100's 51 KB too */
    const sf_decode_split_inputs d64 = {32, 4096, 132, 2, 32 * 1024, h100, 0};
    assert_int_equal(sf_decode_split_rule(&d64), 8);
}

static void test_a_second_cta_where_it_does_not(void **state)
{
    (void)state;
    assert_int_equal(mma(32, 4096, h200, 0), 8);
    assert_int_equal(mma(32, 16384, h200, 0), 8);
    assert_int_equal(mma(128, 4096, h200, 0), 2);
    assert_int_equal(mma(256, 4096, h200, 0), 1);   /* B = 8: one split fills two an SM */
    assert_int_equal(mma(8, 16384, h200, 0), 33);
}

static void test_a_second_ctas_splits_keep_256_keys(void **state)
{
    (void)state;
    assert_int_equal(mma(8, 4096, h200, 0), 16);    /* 33 would be 124 keys; one CTA an SM gives 16 */
    assert_int_equal(mma(32, 1024, h200, 0), 4);    /* 8 would be 128 keys */
    assert_int_equal(mma(32, 600, h200, 0), 4);     /* the first CTA's splits: 128 keys and up */
    assert_int_equal(mma(32, 300, h200, 0), 3);
    assert_int_equal(mma(32, 100, h200, 0), 1);
    const sf_decode_split_inputs one_fits = {32, 4096, 132, 1, mma_in_flight, h200, 0};
    assert_int_equal(sf_decode_split_rule(&one_fits), 4);
}

static void test_paged_and_classic_kernels_take_their_occupancy(void **state)
{
    (void)state;
    assert_int_equal(mma(32, 4096, h100, 1), 8);
    assert_int_equal(mma(8, 16384, h100, 1), 16);   /* 33 capped */
    const sf_decode_split_inputs classic = {32, 4096, 132, 3, 0, h200, 0};
    assert_int_equal(sf_decode_split_rule(&classic), 12);
    const sf_decode_split_inputs many = {1, 1 << 20, 132, 16, 0, h200, 0};
    assert_int_equal(sf_decode_split_rule(&many), SF_DECODE_MAX_SPLITS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_cta_an_sm_where_it_covers_the_bandwidth),
        cmocka_unit_test(test_a_second_cta_where_it_does_not),
        cmocka_unit_test(test_a_second_ctas_splits_keep_256_keys),
        cmocka_unit_test(test_paged_and_classic_kernels_take_their_occupancy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
