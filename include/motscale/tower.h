/* The tower transformer (model.kind = dense | mot | towers | moe; DESIGN.md §2): the roles
 * of its tensor table, for the tests and tools that address one tensor of it. The
 * model itself is src/model/tower.c, reached through model.h. */
#ifndef MOTSCALE_TOWER_H
#define MOTSCALE_TOWER_H

#include "motscale/model.h"

/* The numbers seed each tensor's init (model_init_params): keep them. */
enum tower_role {
    ROLE_EMBED, ROLE_HEAD,                            /* shared by all towers */
    ROLE_WQ, ROLE_WK, ROLE_WV, ROLE_WO, ROLE_W1, ROLE_W3, ROLE_W2,
    ROLE_NORM_ATTN, ROLE_NORM_FFN, ROLE_QNORM, ROLE_KNORM,
    ROLE_NORM_FINAL,
    ROLE_ROUTER,                                      /* a mixture-of-experts FFN's W_r */
    ROLE_PATCH_IN, ROLE_TIME_EMBED, ROLE_PATCH_OUT,   /* continuous images, shared */
    ROLE_N
};

/* The tensor of (role, tower, layer) of a tower-transformer model (tower and layer
 * -1 for embed and head, layer -1 for the final norm); NULL if it has none. */
const tensor_info_t *tower_tensor(const model_t *m, int role, int tower, int layer);
/* Of a tower with experts: the router (ROLE_ROUTER, expert ignored) or expert e's
 * ROLE_W1 | ROLE_W3 | ROLE_W2 at (tower, layer); NULL if it has none. */
const tensor_info_t *tower_expert_tensor(const model_t *m, int role, int tower, int layer, int expert);

#endif
