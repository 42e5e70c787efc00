/*
 * The route allowlist of SPEC section 4: decides from the request method
 * and the raw request target whether a request is one of the five
 * Integrations operations in canonical form.  No nginx headers.
 */

#ifndef SG_ROUTE_H
#define SG_ROUTE_H

#include <stddef.h>

#include "sg_json.h"


typedef enum {
    SG_OP_NONE = 0,
    SG_OP_LIST,
    SG_OP_CREATE,
    SG_OP_DELETE,
    SG_OP_GET,
    SG_OP_UPDATE
} sg_op_t;


#define SG_ID_MAX_LEN  128


typedef struct {
    /* the operation; SG_OP_NONE when the target is not one of the five */
    sg_op_t               op;

    /*
     * err.status is 0 when the request may be forwarded; otherwise 404,
     * 405 or 400 with the SendGrid-shaped error to answer.  err.name may
     * point into the target or into name_buf.
     */
    sg_error_t            err;

    /* the Allow header of a 405: "GET, POST, DELETE" or "GET, PATCH" */
    const char           *allow;

    char                  name_buf[32];
} sg_route_t;


/*
 * Matches method (e.g. "GET") and the raw target as the client sent it
 * (path and query, no fragment handling beyond refusing it) against the
 * allowlist.  Checks in the order of SPEC 8: path and method, then query.
 */
void sg_route_match(sg_route_t *rt, const unsigned char *method,
    size_t method_len, const unsigned char *target, size_t target_len);

/* "list", "create", "delete", "get", "update", or "" for SG_OP_NONE. */
const char *sg_op_name(sg_op_t op);

#endif /* SG_ROUTE_H */
