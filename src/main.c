/* sfbench: the command line. Options, the device, then the script under the Lua host. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "dist.h"
#include "host.h"
#include "ops.h"
#include "sfbench.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: sfbench [options] SCRIPT [key=value ...]\n"
            "       sfbench [options] -e CODE [key=value ...]\n"
            "       sfbench TOOL [ARGS ...]   a tool over result files: compare, report, export\n"
            "                                 (sfbench TOOL --help for its own options)\n"
            "Run a Lua benchmark scenario on the GPU (or the CPU backend when there is none).\n\n"
            "  SCRIPT             a Lua file, or the name of an installed scenario (e.g. attention_sweep)\n"
            "  key=value          override a scenario parameter; lists are comma-separated (seq=512,1024)\n"
            "  -e CODE            run CODE instead of a script\n"
            "  --device DEV       cpu, cuda or cuda:N (default: cuda when a GPU is present, else cpu)\n"
            "  --gpus N           run N ranks on this host, one process a GPU (rank r on cuda:r), for\n"
            "                     collectives (sf.dist); an ordinary sweep shares its points out.\n"
            "                     With --device cpu: N CPU ranks over shared memory (for testing)\n"
            "  --output DIR       directory for result JSON files (default: results)\n"
            "  --format FMT       print tables as md (default), csv or json (every column, full precision)\n"
            "  -q, --quiet        print no tables or progress\n"
            "  --traceback        after a script error's one-line message, print the Lua stack\n"
            "  --profile          run each measured case once more after its warm-up, between\n"
            "                     cudaProfilerStart and Stop, for a profiler whose capture starts\n"
            "                     off (Nsight Compute's, see doc/API.md, Profiling)\n"
            "  --list             list the built-in ops and their arguments\n"
            "  -h, --help         show this help\n"
            "  -V, --version      show the version\n\n"
            "Environment: SFBENCH_DATADIR overrides where scenarios and Lua modules are found;\n"
            "SFBENCH_PDL=0 starts each of our kernels only after the previous one has finished\n"
            "(by default, on cc 9.0+, programmatic dependent launch overlaps a kernel's start with\n"
            "the previous one's tail; the decode GEMV always starts after it); SFBENCH_DECODE_VARIANT\n"
            "(mma, the default, base, ring, ring48) picks the decode attention kernel's variant.\n\n"
            "Under mpirun or srun each process is a rank (see doc/API.md, Several GPUs), as it is with\n"
            "SFBENCH_RANK, SFBENCH_WORLD and SFBENCH_LOCAL_RANK set (--gpus sets them); the ranks of a\n"
            "run meet in SFBENCH_DIST_DIR (default $TMPDIR or /tmp) under SFBENCH_DIST_TAG.\n\n"
            "Scenarios are in %s/scenarios. Exit status: 0 ok, 1 script error (compare: a point\n"
            "got slower), 2 usage error, 130 interrupted (the points measured so far are saved); a\n"
            "script that returns an integer exits with it.\n",
            sf_find_datadir());
}

static int fail_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "sfbench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see sfbench --help)\n");
    return 2;
}

/* --format's values: the formats of report.format */
static int known_format(const char *v)
{
    return !strcmp(v, "md") || !strcmp(v, "csv") || !strcmp(v, "json");
}

static int readable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

/* a script argument that is not a file may name a scenario (a folder of that name, such as an
 * --output folder called `ab`, does not hide the scenario) */
static const char *resolve_script(const char *arg, const char *datadir, char *buf, size_t n)
{
    if (readable_file(arg)) return arg;
    snprintf(buf, n, "%s/scenarios/%s%s", datadir, arg, strstr(arg, ".lua") ? "" : ".lua");
    return readable_file(buf) ? buf : NULL;
}

static void script_name(const char *path, char *buf, size_t n)
{
    const char *base = strrchr(path, '/');
    snprintf(buf, n, "%s", base ? base + 1 : path);
    char *dot = strstr(buf, ".lua");
    if (dot && dot[4] == 0) *dot = 0;
}

static char *join_args(int argc, char **argv)
{
    size_t len = 1;
    for (int i = 0; i < argc; i++) len += strlen(argv[i]) + 1;
    char *s = malloc(len);
    if (!s) return NULL;
    s[0] = 0;
    for (int i = 0; i < argc; i++) {
        if (i) strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

/* `sfbench NAME ...` where lua/sfbench/cli/NAME.lua exists: a tool over result files, written in
 * Lua; its arguments are passed through unparsed (the tool reads its own options) */
static int is_tool(const char *name, const char *datadir)
{
    if (!*name || strspn(name, "abcdefghijklmnopqrstuvwxyz_") != strlen(name)) return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/lua/sfbench/cli/%s.lua", datadir, name);
    return access(path, R_OK) == 0;
}

static int run_tool(int argc, char **argv, const char *datadir)
{
    sf_host_opts o = {0};
    o.datadir = datadir;
    o.output_dir = "results";
    o.tool_args = argv + 2;
    o.ntool_args = argc - 2;
    char err[256], code[256];
    if (sf_device_select("cpu", err, sizeof err) != 0) {
        fprintf(stderr, "sfbench: %s\n", err);
        return 2;
    }
    o.command_line = join_args(argc, argv);
    lua_State *L = sf_host_new(&o);
    if (!L) {
        fprintf(stderr, "sfbench: cannot create a Lua state (out of memory)\n");
        free((void *)o.command_line);
        return 1;
    }
    snprintf(code, sizeof code, "return require('sfbench.cli.%s')(require('sfbench').argv)", argv[1]);
    int status = sf_host_run(L, code, 0, argv[1]);
    sf_host_close(L);
    free((void *)o.command_line);
    return status;
}

static int parse_gpus(const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    return (*v && !*end && n >= 1 && n <= 1024) ? (int)n : -1;
}

/* the options and key=value arguments of `sfbench [options] SCRIPT|-e CODE [key=value ...]`:
 * fills o (o->args points into argv), *device, *script and *code; -1 to go on, else the exit status */
static int parse_args(int argc, char **argv, sf_host_opts *o, const char **device, const char **script,
                      const char **code, int *gpus)
{
    int only_args = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_args && a[0] == '-' && a[1]) {
            if (strcmp(a, "--") == 0) only_args = 1;
            else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
            else if (!strcmp(a, "-V") || !strcmp(a, "--version")) { printf("sfbench %s\n", PACKAGE_VERSION); return 0; }
            else if (!strcmp(a, "--list")) { sf_print_op_list(); return 0; }
            else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) o->quiet = 1;
            else if (!strcmp(a, "--traceback")) o->traceback = 1;
            else if (!strcmp(a, "--profile")) o->profile = 1;
            else if (!strcmp(a, "-e") || !strcmp(a, "--device") || !strcmp(a, "--output") || !strcmp(a, "--format") ||
                     !strcmp(a, "--gpus")) {
                if (i + 1 >= argc) return fail_usage("option %s needs a value", a);
                const char *v = argv[++i];
                if (!strcmp(a, "-e")) {
                    if (*code) return fail_usage("-e given twice ('%s')", v);
                    *code = v;
                } else if (!strcmp(a, "--device")) *device = v;
                else if (!strcmp(a, "--gpus")) {
                    if ((*gpus = parse_gpus(v)) < 0) return fail_usage("--gpus takes a number of ranks from 1 to 1024, got '%s'", v);
                }
                else if (!strcmp(a, "--format")) o->format = v;
                else o->output_dir = v;
            } else if (!strncmp(a, "--device=", 9)) *device = a + 9;
            else if (!strncmp(a, "--output=", 9)) o->output_dir = a + 9;
            else if (!strncmp(a, "--format=", 9)) o->format = a + 9;
            else if (!strncmp(a, "--gpus=", 7)) {
                if ((*gpus = parse_gpus(a + 7)) < 0) return fail_usage("--gpus takes a number of ranks from 1 to 1024, got '%s'", a + 7);
            }
            else return fail_usage("unknown option '%s'", a);
        } else if (!*script && !strchr(a, '=')) {
            *script = a;
        } else if (strchr(a, '=') && a[0] != '=') {
            o->args[o->nargs++] = argv[i];
        } else {
            return fail_usage("expected key=value after the script, got '%s'", a);
        }
    }
    if (o->format && !known_format(o->format))
        return fail_usage("unknown format '%s' for --format (expected md, csv or json)", o->format);
    if (*script && *code) return fail_usage("a script ('%s') and -e CODE: give one of them", *script);
    if (!*script && !*code) {
        usage(stderr);
        return 2;
    }
    return -1;
}

/* after the arguments: the script found, the device opened, the Lua state run */
static int run_script(int argc, char **argv, sf_host_opts *o, const char *device, const char *script,
                      const char *code)
{
    o->datadir = sf_find_datadir();
    char path[4096], name[4096];
    if (script) {
        const char *found = resolve_script(script, o->datadir, path, sizeof path);
        if (!found) {
            fprintf(stderr, "sfbench: cannot open script '%s' (no such file, and no scenario of that name in %s/scenarios)\n",
                    script, o->datadir);
            return 2;
        }
        script = found;
    }
    char err[512], dev[32];
    if (!(device = sf_dist_setup(device, dev, sizeof dev, err, sizeof err)) || sf_device_select(device, err, sizeof err) != 0) {
        fprintf(stderr, "sfbench: %s%s\n", sf_dist_prefix(), err);
        return 2;
    }
    if (sf_dist_connect(err, sizeof err) != 0) {
        fprintf(stderr, "sfbench: %s%s\n", sf_dist_prefix(), err);
        return 1;
    }
    if (sf_dist.info.rank != 0) o->quiet = 1;   /* rank 0 prints the tables and the progress */
    o->command_line = join_args(argc, argv);
    lua_State *L = sf_host_new(o);
    if (!L) {
        fprintf(stderr, "sfbench: cannot create a Lua state (out of memory)\n");
        free((void *)o->command_line);
        return 1;
    }
    script_name(script ? script : "command-line", name, sizeof name);
    int status = sf_host_run(L, script ? script : code, script != NULL, name);
    sf_host_close(L);
    sf_dist_close();
    free((void *)o->command_line);
    return status;
}

/* --gpus N: the ranks, each this command line without the option */
static int launch_ranks(int n, int argc, char **argv, const char *device)
{
    sf_dist_info d;
    char err[256];
    if (sf_dist_parse_env(getenv, &d, err, sizeof err) == 0 && d.world > 1) {
        fprintf(stderr, "sfbench: --gpus %d inside a launcher's world of %d (%s): give one of them\n", n, d.world, d.source);
        return 2;
    }
    if (!strncmp(device, "cuda:", 5)) {
        fprintf(stderr, "sfbench: --gpus %d puts rank r on cuda:r: drop --device %s\n", n, device);
        return 2;
    }
    if (strcmp(device, "cpu") != 0) {
        int count = sf_cuda_device_count();
        if (count < n) {
            fprintf(stderr, "sfbench: --gpus %d: %d CUDA device%s here (--device cpu runs CPU ranks)\n", n, count,
                    count == 1 ? "" : "s");
            return 2;
        }
    }
    char **args = calloc((size_t)argc + 1, sizeof *args);
    if (!args) return 1;
    int m = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            while (i < argc) args[m++] = argv[i++];
            break;
        }
        if (!strcmp(argv[i], "--gpus")) i++;
        else if (strncmp(argv[i], "--gpus=", 7)) args[m++] = argv[i];
    }
    int status = sf_ranks_launch(n, args);
    free(args);
    return status;
}

int main(int argc, char **argv)
{
    if (argc > 1 && is_tool(argv[1], sf_find_datadir())) return run_tool(argc, argv, sf_find_datadir());
    const char *device = "auto", *code = NULL, *script = NULL;
    sf_host_opts o = {0};
    o.output_dir = "results";
    o.args = calloc((size_t)argc, sizeof *o.args);
    if (!o.args) return 1;
    int gpus = 1;
    int status = parse_args(argc, argv, &o, &device, &script, &code, &gpus);
    if (status < 0 && gpus > 1) status = launch_ranks(gpus, argc, argv, device);
    if (status < 0) status = run_script(argc, argv, &o, device, script, code);
    free(o.args);
    return status;
}
