/*
 * palloc.h — allocation helpers for fixed, small allocations.
 *
 * STYLE.md: fixed small allocations may abort on out-of-memory; allocations
 * whose size comes from input are capped by the caller before they get here.
 */
#ifndef PP_PALLOC_H
#define PP_PALLOC_H

#include <stddef.h>

void *pp_xmalloc(size_t size);
void *pp_xcalloc(size_t n, size_t size);
void *pp_xrealloc(void *ptr, size_t size);
char *pp_xstrdup(const char *s);

/* A large table read at random (hash sets and maps): zeroed, and from
 * 4 MiB on aligned to 2 MiB and marked for transparent huge pages where the
 * system has them, so that a probe costs a cache miss and not also a TLB
 * miss. Free with free(). */
void *pp_xcalloc_table(size_t n, size_t size);

#endif
