/* The joint vocabulary's layout from explicit range sizes: one contiguous id range
 * per modality, text first. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "motscale/common.h"
#include "motscale/vocab.h"

bool vocab_from_sizes(vocab_t *v, int n_modalities, char names[][CFG_NAME_LEN],
                      const int64_t *sizes, char *err, size_t errlen)
{
    memset(v, 0, sizeof *v);
    if (n_modalities < 1 || n_modalities > MAX_MODALITIES)
        return errorf(err, errlen, "%d modalities; 1 to %d are supported", n_modalities, MAX_MODALITIES);
    int64_t at = 0;
    for (int m = 0; m < n_modalities; m++) {
        if (sizes[m] <= 0)
            return errorf(err, errlen, "vocabulary of '%s' has %lld ids; must be positive", names[m],
                        (long long)sizes[m]);
        if (at + sizes[m] > INT32_MAX)
            return errorf(err, errlen, "joint vocabulary exceeds %d ids", INT32_MAX);
        snprintf(v->names[m], CFG_NAME_LEN, "%s", names[m]);
        v->lo[m] = (int32_t)at;
        at += sizes[m];
        v->hi[m] = (int32_t)at;
    }
    v->n_modalities = n_modalities;
    v->size = (int32_t)at;
    return true;
}
