/*
 * palloc.c — aborting allocators for fixed, small allocations, and for the
 * large tables hash sets and maps probe at random (palloc.h).
 */
#include "palloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

void *pp_xcalloc_table(size_t n, size_t size)
{
    size_t bytes = n * size;
    if (size != 0 && bytes / size != n) {
        oom(SIZE_MAX);
    }
#ifdef MADV_HUGEPAGE
    const size_t huge = (size_t)2 << 20;
    if (bytes >= 2 * huge) {
        void *p = NULL;
        if (posix_memalign(&p, huge, bytes) != 0) {
            oom(bytes);
        }
        (void)madvise(p, bytes, MADV_HUGEPAGE); /* advice only: fine if refused */
        memset(p, 0, bytes);
        return p;
    }
#endif
    return pp_xcalloc(n, size);
}

char *pp_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = pp_xmalloc(n);
    memcpy(p, s, n);
    return p;
}
