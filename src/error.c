/* What error messages share: the op they name, and luaL_error with the whole printf format. */
#include "config.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <lauxlib.h>
#include "sfbench.h"

const char *sf_current_op = "sfbench";

/* The __close of the value sf_begin_op marks to be closed: however the op ends, by returning or
 * by raising, sf_current_op no longer names it, so a CUDA or cuBLAS error raised outside any op
 * later does not blame the last op that failed. */
static int end_op(lua_State *L)
{
    (void)L;
    sf_current_op = "sfbench";
    return 0;
}

static const char end_op_key;   /* the registry holds that value under &end_op_key */

void sf_begin_op(lua_State *L, const char *name)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &end_op_key) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_newuserdatauv(L, 0, 0);
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, end_op);
        lua_setfield(L, -2, "__close");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &end_op_key);
    }
    lua_toclose(L, -1);
    sf_current_op = name;
}

/* Closed by lua_closeslot, not by lua_settop: Lua 5.4.4's lua_settop keeps a pointer into the
 * stack across the __close call, which can move the stack (it grows there when few free slots
 * remain), and then sets the top from the stale pointer. sf.graph closed its slot that way until
 * 2026-12-07 and hung at 100% of a CPU on GPU machines, as the stack's room varied with the
 * caller's depth and with when the collector had shrunk it. With this, tests/gpu/test_gpu_graph.lua
 * passed three runs in a row and the GPU suite passed (an H100, 2026-12-07). */
void sf_end_op(lua_State *L, int idx)
{
    lua_closeslot(L, idx);
    lua_settop(L, idx - 1);
}

void sf_error(lua_State *L, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    luaL_where(L, 1);
    lua_pushstring(L, msg);
    lua_concat(L, 2);
    lua_error(L);
    abort(); /* not reached */
}
