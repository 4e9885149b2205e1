/* The Lua state: what `require "sfbench"` gives a script, where Lua modules are found, the
 * protected call (with a traceback under --traceback, as lua.c's docall), and Ctrl-C turned into a Lua error so a
 * sweep can save what it measured. */
#include "config.h"
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>
#include <lualib.h>
#include <lfs.h>
#include <lua-cjson.h>
#include "host.h"
#include "sfbench.h"
#include "backend.h"
#include "dist.h"
#ifdef SF_HAVE_CUDA
#include "gemm.h"
#endif

static const sf_host_opts *host_opts;
static volatile sig_atomic_t interrupted;
static lua_State *signal_state;

int sf_host_interrupted(void) { return interrupted; }

/* The build tree's binary reads the source tree's Lua files (so `make check` tests them);
 * an installed one reads pkgdatadir; SFBENCH_DATADIR overrides both. */
const char *sf_find_datadir(void)
{
    static char exe[PATH_MAX];
    const char *env = getenv("SFBENCH_DATADIR");
    if (env && *env) return env;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char built[PATH_MAX];
        if (realpath(SF_BUILD_DIR "/src/sfbench", built) && strcmp(built, exe) == 0) return SF_SOURCE_DIR;
    }
    return SF_PKGDATADIR;
}

static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted");
}

/* First Ctrl-C: raise "interrupted" in Lua at the next instruction (the sweep saves its points);
 * a second one ends the process as usual. */
static void on_sigint(int sig)
{
    signal(sig, SIG_DFL);
    interrupted = 1;
    if (signal_state) lua_sethook(signal_state, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

static int l_interrupted(lua_State *L)
{
    lua_pushboolean(L, interrupted);
    return 1;
}

static char *git_revision(const char *dir)
{
    static char rev[64];
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "%s/.git", dir);
    if (access(cmd, F_OK) != 0) return NULL;
    snprintf(cmd, sizeof cmd, "git -C '%s' describe --always --dirty 2>/dev/null", dir);
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    char *ok = fgets(rev, sizeof rev, p);
    pclose(p);
    if (!ok) return NULL;
    rev[strcspn(rev, "\n")] = 0;
    return rev[0] ? rev : NULL;
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (!v) return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

void sf_define_type(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

static int luaopen_sfbench(lua_State *L)
{
    const sf_host_opts *o = host_opts;
    lua_newtable(L);
    sf_register_tensor(L);
    sf_register_device(L);
    sf_register_stream(L);
    sf_register_timing(L);
    sf_register_ops(L);
    sf_register_compare(L);
    sf_register_launch(L);
    sf_register_graph(L);
    sf_register_profile(L);
    sf_register_dist(L);
    lua_pushcfunction(L, l_isatty);
    lua_setfield(L, -2, "isatty");
    lua_pushcfunction(L, l_interrupted);
    lua_setfield(L, -2, "interrupted");
    set_str(L, "version", PACKAGE_VERSION);
    set_str(L, "datadir", o->datadir);
    set_str(L, "output_dir", o->output_dir);
    set_str(L, "command_line", o->command_line);
    set_str(L, "format", o->format);
    set_str(L, "git_revision", git_revision(o->datadir));
#ifdef SF_HAVE_CUDA
    set_str(L, "cublas_version", sf_cublas_version());
#endif
    lua_pushboolean(L, o->quiet);
    lua_setfield(L, -2, "quiet");
    lua_pushboolean(L, o->profile);
    lua_setfield(L, -2, "profile");
    lua_newtable(L);
    for (int i = 0; i < o->nargs; i++) {
        const char *eq = strchr(o->args[i], '=');
        lua_pushlstring(L, o->args[i], (size_t)(eq - o->args[i]));
        lua_pushstring(L, eq + 1);
        lua_settable(L, -3);
    }
    lua_setfield(L, -2, "args");
    lua_createtable(L, o->ntool_args, 0);
    for (int i = 0; i < o->ntool_args; i++) {
        lua_pushstring(L, o->tool_args[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "argv");
    lua_newtable(L);
    lua_setfield(L, -2, "used_args");
    return 1;
}

lua_State *sf_host_new(const sf_host_opts *o)
{
    host_opts = o;
    lua_State *L = luaL_newstate();
    if (!L) return NULL;
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_sfbench);
    lua_setfield(L, -2, "sfbench");
    lua_pushcfunction(L, luaopen_lfs);
    lua_setfield(L, -2, "lfs");
    lua_pushcfunction(L, luaopen_cjson);
    lua_setfield(L, -2, "cjson");
    lua_pop(L, 1);
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;", o->datadir, o->datadir);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    signal_state = L;
    signal(SIGINT, on_sigint);
    return L;
}

/* a table {usage = "..."} is a command-line mistake (sfbench.params): no traceback */
static const char *usage_message(lua_State *L, int idx)
{
    if (!lua_istable(L, idx)) return NULL;
    lua_getfield(L, idx, "usage");
    const char *msg = lua_tostring(L, -1);
    lua_pop(L, 1);                        /* the string stays referenced by the table */
    return msg;
}

static int msghandler(lua_State *L)
{
    if (usage_message(L, 1)) return 1;
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    if (host_opts->traceback) luaL_traceback(L, L, msg, 1); /* --traceback: the stack after the message */
    return 1;
}

/* keys given on the command line that the script never read are an error: a typo must not
 * silently run the defaults */
static int check_unused_args(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE) != LUA_TTABLE) return 0;
    if (lua_getfield(L, -1, "sfbench") != LUA_TTABLE) {
        lua_pop(L, 2);
        return host_opts->nargs ? (fprintf(stderr, "sfbench: unknown parameter '%.*s' (the script reads no parameters)\n",
                                           (int)strcspn(host_opts->args[0], "="), host_opts->args[0]), 2) : 0;
    }
    lua_getfield(L, -1, "used_args");
    int status = 0;
    for (int i = 0; i < host_opts->nargs && !status; i++) {
        int len = (int)strcspn(host_opts->args[i], "=");
        lua_pushlstring(L, host_opts->args[i], (size_t)len);
        if (!lua_istable(L, -2) || lua_gettable(L, -2) == LUA_TNIL) {
            fprintf(stderr, "sfbench: unknown parameter '%.*s' (the script never read it)\n", len, host_opts->args[i]);
            status = 2;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 3);
    return status;
}

int sf_host_run(lua_State *L, const char *chunk, int is_file, const char *script_name)
{
    lua_pushcfunction(L, msghandler);
    int base = lua_gettop(L);
    int status = is_file ? luaL_loadfile(L, chunk) : luaL_loadbuffer(L, chunk, strlen(chunk), "=(command line)");
    if (status == LUA_OK) {
        /* the script's name, before it runs, so `require "sfbench"` inside sees it */
        lua_getglobal(L, "require");
        lua_pushliteral(L, "sfbench");
        lua_call(L, 1, 1);
        lua_pushstring(L, script_name);
        lua_setfield(L, -2, "script_name");
        lua_pop(L, 1);
        status = lua_pcall(L, 0, 1, base);
    }
    if (status != LUA_OK) {
        const char *usage = usage_message(L, -1);
        if (usage) {
            fprintf(stderr, "sfbench: %s%s\n", sf_dist_prefix(), usage);
            lua_settop(L, base - 1);
            return 2;
        }
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "sfbench: %s%s\n", sf_dist_prefix(), msg ? msg : "(error object is not a string)");
        lua_settop(L, base - 1);
        return interrupted ? 130 : 1;
    }
    int returned = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
    lua_settop(L, base - 1);
    int unused = check_unused_args(L);
    return unused ? unused : returned;
}

void sf_host_close(lua_State *L)
{
    signal_state = NULL;
    lua_close(L);                     /* collects every tensor before the device goes away */
    sf_scratch_release_all();
    sf_timing_release();
#ifdef SF_HAVE_CUDA
    sf_blas_release();
#endif
}
