/* The Lua host: one state with the sfbench module, the standard libraries, lfs and cjson
 * preloaded, running scripts under a traceback handler. */
#ifndef SF_HOST_H
#define SF_HOST_H
#include <lua.h>
#include <lauxlib.h>

typedef struct sf_host_opts {
    const char *datadir;          /* where lua/ and scenarios/ are */
    const char *output_dir;
    int quiet;
    const char *format;           /* --format: how scenarios print their tables (md, csv, json) */
    int traceback;                /* print a script error's stack traceback after its message */
    int profile;                  /* --profile: sf.profile, one profiled call of each measured case */
    int nargs;                    /* key=value overrides */
    char **args;
    const char *command_line;
    int ntool_args;               /* `sfbench TOOL ARGS...`: ARGS, as sfbench.argv */
    char **tool_args;
} sf_host_opts;

const char *sf_find_datadir(void);
lua_State *sf_host_new(const sf_host_opts *o);
/* runs a chunk (file when is_file, else code); 0 on success (or the integer the chunk returns),
 * else prints the error (one line, plus the stack traceback with opts.traceback) and returns the
 * exit status (1, 2 for an error raised as {usage = "..."}, or 130 after Ctrl-C) */
int sf_host_run(lua_State *L, const char *chunk, int is_file, const char *script_name);
void sf_host_close(lua_State *L);
int sf_host_interrupted(void);

/* What `require "sfbench"` holds, built by these: each adds its file's functions (and the
 * metatables of its userdata) to the table on top of the stack. */
void sf_register_tensor(lua_State *L);   /* tensor.c: sf.tensor, sf.randn, sf.zeros, ... */
void sf_register_device(lua_State *L);   /* device.c: sf.device, sf.memory, sf.clocks, ... */
void sf_register_stream(lua_State *L);   /* stream.c: sf.stream, sf.event, sf.elapsed, sf.now */
void sf_register_timing(lua_State *L);   /* timing.c: sf.flush_l2, sf.hold, sf.release (timing.h: their C side) */
void sf_timing_release(void);            /* timing.c: frees the flush buffer and the hold flag */
void sf_register_ops(lua_State *L);      /* ops.c: sf.ops.NAME{...}, sf.op(name, {...}), sf.op_list() */
void sf_register_compare(lua_State *L);  /* compare.c: sf.compare, sf.compare_rows */
void sf_register_launch(lua_State *L);   /* launch.c: sf.compile */
void sf_register_graph(lua_State *L);    /* graph.c: sf.graph */
void sf_register_profile(lua_State *L);  /* profile.c: sf.nvtx_push/pop, sf.profiler_start/stop */
/* The metatable of a userdata type (luaL_newmetatable: its __name is name): the metamethods in
 * meta (__gc, __close, __tostring, ...) and the methods as __index; leaves the stack as it was. */
void sf_define_type(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods);
#endif
