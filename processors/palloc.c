/*
 * palloc.c — aborting allocators for fixed, small allocations (palloc.h).
 */
#include "palloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t size)
{
    fprintf(stderr, "level=fatal msg=\"out of memory\" bytes=%zu\n", size);
    abort();
}

void *pp_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL) {
        oom(size);
    }
    return p;
}

void *pp_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) {
        oom(n * size);
    }
    return p;
}

void *pp_xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL) {
        oom(size);
    }
    return p;
}

char *pp_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = pp_xmalloc(n);
    memcpy(p, s, n);
    return p;
}
