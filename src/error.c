/* What error messages share: the op they name, and luaL_error with the whole printf format. */
#include "config.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <lauxlib.h>
#include "sfbench.h"

const char *sf_current_op = "sfbench";

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
