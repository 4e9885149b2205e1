/* What timing.c's sf.flush_l2, sf.hold and sf.release do, for C callers that time GPU work (the
 * autotuner). */
#ifndef SF_TIMING_H
#define SF_TIMING_H
#include <lua.h>

/* writes a buffer the size of the device's last-level cache on `stream` (allocated on first use:
 * call it once before any hold), evicting what earlier work left there */
void sf_flush_l2(lua_State *L, void *stream);
/* holds `stream` (the device's, when it is a GPU) with a kernel that spins until sf_release or a
 * guard of about a second: work queued meanwhile then runs back to back, however slowly the host
 * queued it. Returns 1 when it took the hold; 0 when it did nothing (the CPU backend, or a hold
 * already taken, which stays the holder's to release). */
int sf_hold(lua_State *L, void *stream);
/* ends the hold, if any; 0 when the guard had ended it first, else 1 */
int sf_release(void);
/* whether a hold is taken (and not yet released) */
int sf_held(void);
#endif
