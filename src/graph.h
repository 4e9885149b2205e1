/* CUDA graph capture. sf.graph(fn, calls [, stream]) records `calls` calls of fn into a graph that
 * g:launch([stream]) replays. While a capture runs, ops, kernel launches and events given no
 * stream use the capturing one, as work on PyTorch's current stream does under torch.cuda.graph. */
#ifndef SF_GRAPH_H
#define SF_GRAPH_H
#include <lua.h>

void *sf_default_stream(void);   /* the stream of work given none: NULL (the default stream), or the capturing one */
int sf_capturing(void);          /* a capture is in progress */
/* After an op returned during a capture: raises, naming the op, when the capture has been
 * invalidated (by a call the op made whose failure it did not report); a no-op otherwise. */
void sf_capture_check(lua_State *L, const char *op);
/* fn(p) now, or once the capture in progress has ended: what a finalizer or a free releases
 * (cudaFree, cudaEventDestroy, ...) waits while a stream captures, since such a call during a
 * capture breaks it or waits on it, and a finalizer runs at whatever allocation the collector
 * chooses, captured functions' included. */
void sf_release_after_capture(void (*fn)(void *), void *p);
#endif
