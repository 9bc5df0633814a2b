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
