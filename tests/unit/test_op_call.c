/* Unit tests of the op call path (src/ops.c) and of what it shares with sf.graph (sf_begin_op and
 * sf_end_op, src/error.c): the op named in CUDA and cuBLAS errors (sf_current_op) is the one
 * running, and no op once it has returned, raised or ended its naming early. That a failed capture
 * names no op after is checked on the GPU (tests/gpu/test_gpu_graph.lua); here sf.graph fails
 * before it names itself. */
#include "config.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <lauxlib.h>
#include "sfbench.h"
#include "host.h"

/* named_op(raise): a C function naming an op as sf.graph does, which returns or raises; notes
 * the op named while it runs */
static const char *named_while_running;

static int named_op(lua_State *L)
{
    sf_begin_op(L, "named");
    named_while_running = sf_current_op;
    if (lua_toboolean(L, 1)) return luaL_error(L, "named: failed");
    return 0;
}

/* ended_op(k): k values on its stack, then an op named and its naming ended (sf_end_op) before it
 * returns, as sf.graph does before the captured function runs; notes the top and the op named
 * right after */
static int top_after_end;
static const char *named_after_end;

static int ended_op(lua_State *L)
{
    const int k = (int)luaL_checkinteger(L, 1);
    lua_settop(L, 0);
    luaL_checkstack(L, k + 4, NULL); /* k values, and sf_begin_op's (up to 3 while it makes it) */
    for (int i = 0; i < k; i++) lua_pushinteger(L, i);
    sf_begin_op(L, "ended");
    sf_end_op(L, k + 1);
    top_after_end = lua_gettop(L);
    named_after_end = sf_current_op;
    return 0;
}

static int setup_lua(void **state)
{
    lua_State *L = luaL_newstate();
    if (!L) return -1;
    lua_newtable(L);
    sf_register_tensor(L);
    sf_register_ops(L);
    sf_register_graph(L);
    lua_setglobal(L, "sf");
    lua_pushcfunction(L, named_op);
    lua_setglobal(L, "named_op");
    *state = L;
    return 0;
}

static int teardown_lua(void **state)
{
    lua_close((lua_State *)*state);
    return 0;
}

/* runs code; returns its error message, or NULL when it ran */
static const char *run(lua_State *L, const char *code)
{
    lua_settop(L, 0);
    assert_int_equal(luaL_loadstring(L, code), LUA_OK);
    return lua_pcall(L, 0, 0, 0) == LUA_OK ? NULL : lua_tostring(L, -1);
}

/* runs code, which must raise an error that mentions msg; after it no op is named */
static void raises(lua_State *L, const char *code, const char *msg)
{
    const char *err = run(L, code);
    assert_non_null(err);
    assert_non_null(strstr(err, msg));
    assert_string_equal(sf_current_op, "sfbench");
}

static void test_op_that_returns(void **state)
{
    lua_State *L = *state;
    assert_null(run(L, "sf.ops.gemm{a = sf.zeros({2, 3}), b = sf.zeros({3, 5}), c = sf.zeros({2, 5})}"));
    assert_string_equal(sf_current_op, "sfbench");
}

/* the op raises from inside its run (the shapes are checked there, not by the registry) */
static void test_op_that_raises(void **state)
{
    raises(*state, "sf.ops.gemm{a = sf.zeros({2, 3}), b = sf.zeros({4, 5}), c = sf.zeros({2, 5})}",
           "gemm: inner dimensions differ");
}

/* the same op called by name */
static void test_op_by_name_that_raises(void **state)
{
    raises(*state, "sf.op('gemm', {a = sf.zeros({2, 3}), b = sf.zeros({4, 5}), c = sf.zeros({2, 5})})",
           "gemm: inner dimensions differ");
}

/* an error in the arguments, raised before the op runs */
static void test_op_with_bad_arguments(void **state)
{
    raises(*state, "sf.ops.rmsnorm{x = 1}", "rmsnorm: argument 'x' must be a tensor");
}

/* widen(name): the global tensor `name`, [R, 2C] contiguous, becomes a view [R, C] of every other
 * element of its rows (last stride 2), which no Lua call makes */
static int widen(lua_State *L)
{
    sf_tensor *t = sf_check_tensor(L, 1);
    t->shape[t->ndim - 1] /= 2;
    t->stride[t->ndim - 1] = 2;
    t->numel /= 2;
    return 0;
}

/* every op that needs its rows dense refuses a last dimension with a stride, naming the tensor,
 * through the one check they share */
static void test_strided_last_dimension(void **state)
{
    lua_State *L = *state;
    lua_pushcfunction(L, widen);
    lua_setglobal(L, "widen");
    static const struct {
        const char *code, *msg;
    } cases[] = {
        {"local x = sf.zeros({2, 8}); widen(x); sf.ops.gemm{a = x, b = sf.zeros({4, 3}), c = sf.zeros({2, 3})}",
         "gemm: 'a' must be contiguous in its last dimension (stride 2)"},
        {"local x = sf.zeros({2, 8}); widen(x); sf.ops.rmsnorm{x = x, weight = sf.zeros({4}), out = sf.zeros({2, 4})}",
         "rmsnorm: 'x' must be contiguous in its last dimension (stride 2)"},
        {"local x = sf.zeros({2, 8}); widen(x); sf.ops.quantize{x = x, out = sf.zeros({2, 4}, 'e4m3'), scale = sf.zeros({1})}",
         "quantize: 'x' must be contiguous in its last dimension (stride 2)"},
        {"local t = sf.zeros({5, 8}); widen(t); sf.ops.embedding{table = t, tokens = sf.zeros({2}, 'i32'), out = sf.zeros({2, 4})}",
         "embedding: 'table' must be contiguous in its last dimension (stride 2)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) raises(L, cases[i].code, cases[i].msg);
}

static void test_named_op_that_returns(void **state)
{
    lua_State *L = *state;
    named_while_running = NULL;
    assert_null(run(L, "named_op(false)"));
    assert_string_equal(named_while_running, "named");
    assert_string_equal(sf_current_op, "sfbench");
}

static void test_named_op_that_raises(void **state)
{
    named_while_running = NULL;
    raises(*state, "named_op(true)", "named: failed");
    assert_string_equal(named_while_running, "named");
}

/* Ending the naming leaves the stack as it was below the op's value, however little room the
 * stack has left: each call runs on a new thread (a stack of a known small size) with one more
 * value on it, so that in some the __close call must grow the stack, which moves it. */
static void test_op_ended_early(void **state)
{
    lua_State *L = *state;
    lua_settop(L, 0);
    for (int k = 0; k < 64; k++) {
        lua_State *co = lua_newthread(L);
        lua_pushcfunction(co, ended_op);
        lua_pushinteger(co, k);
        top_after_end = -1;
        named_after_end = NULL;
        assert_int_equal(lua_pcall(co, 1, 0, 0), LUA_OK);
        assert_int_equal(top_after_end, k);
        assert_string_equal(named_after_end, "sfbench");
        lua_pop(L, 1);
    }
}

/* on the CPU backend sf.graph is an error naming the backend (the CUDA build's and the other);
 * it raises before it names itself, so what op is named after says nothing of sf.graph */
static void test_graph_on_cpu(void **state)
{
    const char *err = run(*state, "sf.graph(function() end, 1)");
    assert_non_null(err);
    assert_non_null(strstr(err, "graph: CUDA graphs need the CUDA backend (running on cpu)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_that_returns),
        cmocka_unit_test(test_op_that_raises),
        cmocka_unit_test(test_op_by_name_that_raises),
        cmocka_unit_test(test_op_with_bad_arguments),
        cmocka_unit_test(test_strided_last_dimension),
        cmocka_unit_test(test_named_op_that_returns),
        cmocka_unit_test(test_named_op_that_raises),
        cmocka_unit_test(test_op_ended_early),
        cmocka_unit_test(test_graph_on_cpu),
    };
    return cmocka_run_group_tests(tests, setup_lua, teardown_lua);
}
