/*
 * The route allowlist: decides from the request method and the raw
 * request target whether a request is one of the five Integrations
 * operations in canonical form.  No nginx headers.
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


/* an id, in the path or in ids=: 1 to 128 bytes of [A-Za-z0-9_-] */
#define SG_ID_MAX_LEN          128

/* an unknown query parameter is named by at most this many raw bytes */
#define SG_QUERY_NAME_MAX_LEN  64


typedef struct {
    /* the operation; SG_OP_NONE when the target is not one of the five */
    sg_op_t               op;

    /*
     * err.status is 0 when the request may be forwarded; otherwise 404,
     * 405 or 400 with the SendGrid-shaped error to answer.  err.name may
     * point into the target or into name_buf, so it lives as long as the
     * target and this structure do.
     */
    sg_error_t            err;

    /* the Allow header of a 405: "GET, POST, DELETE" or "GET, PATCH" */
    const char           *allow;

    /* "ids[N]" of a refused id */
    char                  name_buf[32];
} sg_route_t;


/*
 * Matches method (e.g. "GET", case-sensitive) and the raw target as the
 * client sent it in origin form (path and query, e.g. r->unparsed_uri)
 * against the allowlist.  Works on any bytes of any length, allocates
 * nothing and reads only method[0..method_len) and target[0..target_len);
 * either may be NULL when its length is 0.
 *
 * Checks in this order, the first failure answers:
 *
 *   1. path and method: a '#' anywhere, or a path (the target up to the
 *      first '?') other than exactly /v3/marketing/integrations or
 *      /v3/marketing/integrations/ID is a 404; a known path with another
 *      method is a 405 with allow set.  op is SG_OP_NONE on both.
 *
 *   2. query (after the first '?'), split on '&', each component a name up
 *      to its first '=': an empty component anywhere is a 400 first; then
 *      the first name that is not allowed (any name but for DELETE, any
 *      name other than "ids" for DELETE) is a 400 naming it; then, for
 *      DELETE, the ids of every ids= component in order, each value split
 *      on ',' and %2C/%2c, the first empty or malformed one a 400 naming
 *      ids[N]; a DELETE without a query is a 400 naming ids.  op is set
 *      on these 400s.
 *
 * Otherwise err.status is 0 and op is the operation to forward.
 */
void sg_route_match(sg_route_t *rt, const unsigned char *method,
    size_t method_len, const unsigned char *target, size_t target_len);

/* "list", "create", "delete", "get", "update", or "" for SG_OP_NONE. */
const char *sg_op_name(sg_op_t op);

#endif /* SG_ROUTE_H */
