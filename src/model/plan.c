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
