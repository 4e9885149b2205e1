/* Unit tests of sf_dist_parse_env (src/dist.c): which launcher's variables set rank, world and
 * local rank, in which order, the run's tag, and the errors for malformed or inconsistent values,
 * over a fake environment. */
#include "config.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "dist.h"

/* the fake environment: NULL-terminated name, value pairs */
static const char *const *env;

static char *fake_get(const char *name)
{
    for (int i = 0; env[i]; i += 2)
        if (strcmp(env[i], name) == 0) return (char *)env[i + 1];
    return NULL;
}

static int parse(const char *const *vars, sf_dist_info *d, char *err)
{
    env = vars;
    return sf_dist_parse_env(fake_get, d, err, 256);
}

static void test_no_launcher(void **state)
{
    (void)state;
    static const char *const none[] = {"HOME", "/root", NULL};
    sf_dist_info d;
    char err[256];
    assert_int_equal(parse(none, &d, err), 0);
    assert_int_equal(d.rank, 0);
    assert_int_equal(d.world, 1);
    assert_int_equal(d.local_rank, 0);
    assert_string_equal(d.source, "none");
}

static void test_each_launcher(void **state)
{
    (void)state;
    static const char *const own[] = {"SFBENCH_RANK", "2", "SFBENCH_WORLD", "4", "SFBENCH_LOCAL_RANK", "2", NULL};
    static const char *const ompi[] = {"OMPI_COMM_WORLD_RANK", "5", "OMPI_COMM_WORLD_SIZE", "8",
                                       "OMPI_COMM_WORLD_LOCAL_RANK", "1", NULL};
    static const char *const pmi[] = {"PMI_RANK", "3", "PMI_SIZE", "4", "MPI_LOCALRANKID", "3", NULL};
    static const char *const slurm[] = {"SLURM_PROCID", "6", "SLURM_STEP_NUM_TASKS", "16", "SLURM_LOCALID", "6", NULL};
    static const struct {
        const char *const *env;
        int rank, world, local;
        const char *source;
    } cases[] = {{own, 2, 4, 2, "sfbench --gpus"}, {ompi, 5, 8, 1, "Open MPI"}, {pmi, 3, 4, 3, "PMI"},
                 {slurm, 6, 16, 6, "Slurm"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sf_dist_info d;
        char err[256];
        assert_int_equal(parse(cases[i].env, &d, err), 0);
        assert_int_equal(d.rank, cases[i].rank);
        assert_int_equal(d.world, cases[i].world);
        assert_int_equal(d.local_rank, cases[i].local);
        assert_string_equal(d.source, cases[i].source);
    }
}

/* sfbench's own variables come first, then Open MPI's, PMI's and Slurm's (an srun inside an
 * sbatch allocation started by mpirun sees several) */
static void test_precedence_and_local_default(void **state)
{
    (void)state;
    static const char *const both[] = {"SLURM_PROCID", "0", "SLURM_STEP_NUM_TASKS", "1", "OMPI_COMM_WORLD_RANK", "3",
                                       "OMPI_COMM_WORLD_SIZE", "4", NULL};
    sf_dist_info d;
    char err[256];
    assert_int_equal(parse(both, &d, err), 0);
    assert_string_equal(d.source, "Open MPI");
    assert_int_equal(d.rank, 3);
    assert_int_equal(d.local_rank, 3);   /* no local rank given: the rank */
}

/* a Slurm batch script: SLURM_PROCID and the allocation's SLURM_NTASKS, but no step: one process */
static void test_slurm_batch_script(void **state)
{
    (void)state;
    static const char *const batch[] = {"SLURM_PROCID", "0", "SLURM_NTASKS", "4", "SLURM_JOB_ID", "5", NULL};
    sf_dist_info d;
    char err[256];
    assert_int_equal(parse(batch, &d, err), 0);
    assert_int_equal(d.world, 1);
    assert_string_equal(d.source, "none");
}

static void test_tags(void **state)
{
    (void)state;
    static const char *const given[] = {"SFBENCH_DIST_TAG", "a/b", "SLURM_JOB_ID", "9", NULL};
    static const char *const slurm[] = {"SLURM_PROCID", "1", "SLURM_STEP_NUM_TASKS", "2", "SLURM_JOB_ID", "77",
                                        "SLURM_STEP_ID", "3", NULL};
    static const char *const pmix[] = {"PMI_RANK", "1", "PMI_SIZE", "2", "PMIX_NAMESPACE", "ns1", NULL};
    static const char *const bare[] = {"PMI_RANK", "1", "PMI_SIZE", "2", NULL};
    sf_dist_info d;
    char err[256];
    assert_int_equal(parse(given, &d, err), 0);
    assert_string_equal(d.tag, "a_b");   /* a tag names a file: no '/' */
    assert_int_equal(parse(slurm, &d, err), 0);
    assert_string_equal(d.tag, "slurm-77.3");
    assert_int_equal(parse(pmix, &d, err), 0);
    assert_string_equal(d.tag, "pmix-ns1");
    assert_int_equal(parse(bare, &d, err), 0);
    assert_string_equal(d.tag, "run");
}

static void test_errors(void **state)
{
    (void)state;
    static const char *const bad_rank[] = {"PMI_RANK", "x", "PMI_SIZE", "2", NULL};
    static const char *const no_rank[] = {"SLURM_STEP_NUM_TASKS", "2", NULL};
    static const char *const outside[] = {"OMPI_COMM_WORLD_RANK", "4", "OMPI_COMM_WORLD_SIZE", "4", NULL};
    static const char *const zero_world[] = {"SFBENCH_RANK", "0", "SFBENCH_WORLD", "0", NULL};
    static const char *const negative[] = {"SFBENCH_RANK", "-1", "SFBENCH_WORLD", "2", NULL};
    sf_dist_info d;
    char err[256];
    assert_int_equal(parse(bad_rank, &d, err), -1);
    assert_non_null(strstr(err, "PMI's rank variables are malformed: PMI_RANK=x PMI_SIZE=2"));
    assert_int_equal(parse(no_rank, &d, err), -1);
    assert_non_null(strstr(err, "SLURM_PROCID=(unset)"));
    assert_int_equal(parse(outside, &d, err), -1);
    assert_non_null(strstr(err, "Open MPI says rank 4 of a world of 4"));
    assert_int_equal(parse(zero_world, &d, err), -1);
    assert_int_equal(parse(negative, &d, err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_launcher),
        cmocka_unit_test(test_each_launcher),
        cmocka_unit_test(test_precedence_and_local_default),
        cmocka_unit_test(test_slurm_batch_script),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
