/* The host clock. */
#ifndef SF_TIMING_H
#define SF_TIMING_H
double sf_now(void);
#endif
