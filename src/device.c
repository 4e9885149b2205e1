/* The default device (CUDA when a GPU is present, else the CPU backend), what sf.device() tells
 * about it, memory accounting as Lua sees it, and SM clocks through NVML when the driver has it. */
#include "config.h"
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>
#include "sfbench.h"
#include "backend.h"
#include "host.h"
#ifdef SF_HAVE_CUDA
#include "cuda_check.h"
#include "tensor_ops.h"
#endif

sf_device_state sf_dev;

int sf_device_select(const char *spec, char *err, size_t errlen)
{
    int want_cuda = 0, index = 0;
    if (strcmp(spec, "cpu") == 0) {
        sf_dev.kind = SF_DEV_CPU;
        return 0;
    }
    if (strcmp(spec, "auto") == 0) want_cuda = -1;
    else if (strcmp(spec, "cuda") == 0) want_cuda = 1;
    else if (sscanf(spec, "cuda:%d", &index) == 1 && index >= 0) want_cuda = 1;
    else {
        snprintf(err, errlen, "unknown device '%s' (expected cpu, cuda or cuda:N)", spec);
        return -1;
    }
#ifdef SF_HAVE_CUDA
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) cudaGetLastError();
    if (e == cudaSuccess && index < count && cudaSetDevice(index) == cudaSuccess) {
        sf_dev.kind = SF_DEV_CUDA;
        sf_dev.cuda_index = index;
        sf_dev.cuda_available = 1;
        return 0;
    }
    if (want_cuda < 0) {
        sf_dev.kind = SF_DEV_CPU;
        return 0;
    }
    if (e != cudaSuccess) snprintf(err, errlen, "no CUDA device: %s", cudaGetErrorString(e));
    else snprintf(err, errlen, "no CUDA device %d (%d found)", index, count);
#else
    if (want_cuda < 0) {
        sf_dev.kind = SF_DEV_CPU;
        return 0;
    }
    snprintf(err, errlen, "this sfbench was built without CUDA (configure --with-cuda)");
#endif
    return -1;
}

int sf_cuda_device_count(void)
{
#ifdef SF_HAVE_CUDA
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return count;
#else
    return 0;
#endif
}

int sf_cuda_cc(void)
{
#ifdef SF_HAVE_CUDA
    static int known_index = -1, cc;
    if (!sf_dev.cuda_available) return 0;
    if (known_index != sf_dev.cuda_index) {
        int major = 0, minor = 0;
        if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, sf_dev.cuda_index) != cudaSuccess ||
            cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, sf_dev.cuda_index) != cudaSuccess)
            return 0;
        cc = 10 * major + minor;
        known_index = sf_dev.cuda_index;
    }
    return cc;
#else
    return 0;
#endif
}

int sf_hopper_kernels(void)
{
#ifdef SF_HAVE_HOPPER
    return sf_cuda_cc() == 90;
#else
    return 0;
#endif
}

sf_device_kind sf_check_device_name(lua_State *L, int idx, sf_device_kind dflt)
{
    if (lua_isnoneornil(L, idx)) return dflt;
    const char *s = luaL_checkstring(L, idx);
    int index;
    if (strcmp(s, "cpu") == 0) return SF_DEV_CPU;
    if (strcmp(s, "cuda") == 0 || (sscanf(s, "cuda:%d", &index) == 1 && index == sf_dev.cuda_index)) {
        if (!sf_dev.cuda_available) luaL_argerror(L, idx, "no CUDA device in use (running on the CPU backend)");
        return SF_DEV_CUDA;
    }
    luaL_argerror(L, idx, lua_pushfstring(L, "unknown device '%s' (expected cpu or cuda)", s));
    return dflt;
}

/* ---- NVML, loaded at run time so that sfbench starts on machines without a driver ---- */

typedef int (*nvml_init_fn)(void);
typedef int (*nvml_by_bus_fn)(const char *, void **);
typedef int (*nvml_clock_fn)(void *, int, unsigned *);
static struct { int tried; void *dev; nvml_clock_fn clock, max_clock; } nvml;

enum { NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2 };

static int nvml_open(void)
{
#ifdef SF_HAVE_CUDA
    if (nvml.tried) return nvml.dev != NULL;
    nvml.tried = 1;
    char bus[32];
    if (!sf_dev.cuda_available || cudaDeviceGetPCIBusId(bus, sizeof bus, sf_dev.cuda_index) != cudaSuccess) return 0;
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return 0;
    nvml_init_fn init = (nvml_init_fn)dlsym(lib, "nvmlInit_v2");
    nvml_by_bus_fn by_bus = (nvml_by_bus_fn)dlsym(lib, "nvmlDeviceGetHandleByPciBusId_v2");
    nvml.clock = (nvml_clock_fn)dlsym(lib, "nvmlDeviceGetClockInfo");
    nvml.max_clock = (nvml_clock_fn)dlsym(lib, "nvmlDeviceGetMaxClockInfo");
    if (!init || !by_bus || !nvml.clock || !nvml.max_clock || init() != 0 || by_bus(bus, &nvml.dev) != 0)
        nvml.dev = NULL;
    return nvml.dev != NULL;
#else
    return 0;
#endif
}

/* sf.clocks() -> {sm=, sm_max=, mem=} in MHz, or nil when unknown */
static int l_clocks(lua_State *L)
{
    unsigned sm, sm_max, mem;
    if (!nvml_open() || nvml.clock(nvml.dev, NVML_CLOCK_SM, &sm) || nvml.max_clock(nvml.dev, NVML_CLOCK_SM, &sm_max) ||
        nvml.clock(nvml.dev, NVML_CLOCK_MEM, &mem)) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, sm); lua_setfield(L, -2, "sm");
    lua_pushinteger(L, sm_max); lua_setfield(L, -2, "sm_max");
    lua_pushinteger(L, mem); lua_setfield(L, -2, "mem");
    return 1;
}

static void set_int(lua_State *L, const char *k, long long v) { lua_pushinteger(L, v); lua_setfield(L, -2, k); }
static void set_str(lua_State *L, const char *k, const char *v) { lua_pushstring(L, v); lua_setfield(L, -2, k); }

static void cpu_model(char *buf, size_t n)
{
    snprintf(buf, n, "CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *v = strchr(line, ':');
            if (v) {
                snprintf(buf, n, "%s", v + 2);
                buf[strcspn(buf, "\n")] = 0;
            }
            break;
        }
    fclose(f);
}

/* sf.device([name]) -> a table describing the default device (or the one named) */
static int l_device(lua_State *L)
{
    sf_device_kind kind = sf_check_device_name(L, 1, sf_dev.kind);
    size_t free_b, total_b;
    sf_backend_of(kind)->mem_info(&free_b, &total_b);
    lua_newtable(L);
    set_str(L, "backend", sf_backend_of(kind)->name);
    set_int(L, "mem_total", (long long)total_b);
    set_int(L, "mem_free", (long long)free_b);
    if (kind == SF_DEV_CPU) {
        char name[128];
        cpu_model(name, sizeof name);
        set_str(L, "name", name);
        set_int(L, "cores", sysconf(_SC_NPROCESSORS_ONLN));
        return 1;
    }
#ifdef SF_HAVE_CUDA
    struct cudaDeviceProp p;
    int d = sf_dev.cuda_index, v, clock_khz = 0, mem_khz = 0;
    SF_CUDA(L, cudaGetDeviceProperties(&p, d));
    set_str(L, "name", p.name);
    set_int(L, "index", d);
    lua_pushfstring(L, "%d.%d", p.major, p.minor);
    lua_setfield(L, -2, "cc");
    lua_pushboolean(L, sf_hopper_kernels());
    lua_setfield(L, -2, "hopper_kernels");
    lua_pushboolean(L, sf_pdl_enabled());
    lua_setfield(L, -2, "pdl");
    set_int(L, "sm_count", p.multiProcessorCount);
    set_int(L, "l2_bytes", p.l2CacheSize);
    set_int(L, "smem_per_block_optin", (long long)p.sharedMemPerBlockOptin);
    set_int(L, "smem_per_sm", (long long)p.sharedMemPerMultiprocessor);
    set_int(L, "regs_per_sm", p.regsPerMultiprocessor);
    set_int(L, "mem_bus_width", p.memoryBusWidth);
    cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, d);
    cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, d);
    set_int(L, "sm_clock_max_mhz", clock_khz / 1000);
    set_int(L, "mem_clock_max_mhz", mem_khz / 1000);
    cudaDriverGetVersion(&v);
    lua_pushfstring(L, "%d.%d", v / 1000, (v % 1000) / 10);
    lua_setfield(L, -2, "driver_version");
    cudaRuntimeGetVersion(&v);
    lua_pushfstring(L, "%d.%d", v / 1000, (v % 1000) / 10);
    lua_setfield(L, -2, "runtime_version");
    char bus[32];
    if (cudaDeviceGetPCIBusId(bus, sizeof bus, d) == cudaSuccess) set_str(L, "pci_bus_id", bus);
#endif
    return 1;
}

static int l_sync(lua_State *L)
{
    sf_backend_of(sf_dev.kind)->sync(L);
    return 0;
}

/* sf.memory([device]) -> {in_use, peak, scratch, scratch_peak, free, total} in bytes */
static int l_memory(lua_State *L)
{
    sf_device_kind kind = sf_check_device_name(L, 1, sf_dev.kind);
    size_t free_b, total_b;
    sf_backend_of(kind)->mem_info(&free_b, &total_b);
    lua_createtable(L, 0, 6);
    set_int(L, "in_use", (long long)sf_mem[kind].in_use);
    set_int(L, "peak", (long long)sf_mem[kind].peak);
    set_int(L, "scratch", (long long)sf_mem[kind].scratch_capacity);
    set_int(L, "scratch_peak", (long long)sf_mem[kind].scratch_peak);
    set_int(L, "free", (long long)free_b);
    set_int(L, "total", (long long)total_b);
    return 1;
}

/* sf.reset_peak([device]): start a new high-water mark for tensors and for op scratch */
static int l_reset_peak(lua_State *L)
{
    sf_device_kind kind = sf_check_device_name(L, 1, sf_dev.kind);
    sf_mem[kind].peak = sf_mem[kind].in_use;
    sf_mem[kind].scratch_peak = 0;
    return 0;
}

void sf_register_device(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"device", l_device}, {"sync", l_sync}, {"clocks", l_clocks}, {"memory", l_memory},
        {"reset_peak", l_reset_peak}, {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}
