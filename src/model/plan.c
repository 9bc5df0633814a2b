/* The activation plan: one list of buffers, sized in a first pass and carved from
 * one allocation in a second (the kind calls plan_take in the same order both
 * times), so sizes and views cannot disagree. */
#include "layers.h"

real *plan_take(plan_t *p, size_t n, int use)
{
    p->total += n;
    if (use == PLAN_KEPT)
        p->kept += n;
    if (!p->base)
        return NULL;
    real *v = p->cursor;
    p->cursor += n;
    return v;
}

void *plan_take_bytes(plan_t *p, size_t bytes, int use)
{
    size_t unit = sizeof(real), at = p->total * unit, pad = (8 - at % 8) % 8;
    real *v = plan_take(p, (pad + bytes + unit - 1) / unit, use);
    return v ? (char *)v + pad : NULL;
}

void plan_union_begin(plan_t *p)
{
    p->union_at = p->total;
    p->union_max = 0;
}

/* the arm just taken: the union's extent so far; back to its start */
static void union_close_arm(plan_t *p)
{
    size_t arm = p->total - p->union_at;
    p->union_max = arm > p->union_max ? arm : p->union_max;
    p->total = p->union_at;
    if (p->base)
        p->cursor = p->base + p->union_at;
}

void plan_union_arm(plan_t *p) { union_close_arm(p); }

void plan_union_end(plan_t *p)
{
    union_close_arm(p);
    p->total = p->union_at + p->union_max;
    if (p->base)
        p->cursor = p->base + p->total;
}
