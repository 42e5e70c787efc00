/*
 * The route allowlist: one pass over the raw target, no allocation.
 */

#include <string.h>

#include "sg_route.h"


#define SG_COLLECTION        "/v3/marketing/integrations"
#define SG_COLLECTION_LEN    (sizeof(SG_COLLECTION) - 1)

#define SG_ALLOW_COLLECTION  "GET, POST, DELETE"
#define SG_ALLOW_ITEM        "GET, PATCH"

#define SG_MSG_NOT_FOUND     "resource not found"
#define SG_MSG_NOT_ALLOWED   "method not allowed"
#define SG_MSG_EMPTY_PARAM   "empty query parameter"
#define SG_MSG_UNKNOWN_PARAM "unknown query parameter"
#define SG_MSG_EMPTY_ID      "IDs cannot be an empty string"
#define SG_MSG_BAD_ID                                                         \
    "IDs must be 1 to 128 characters of A-Z, a-z, 0-9, _ and -"
#define SG_MSG_IDS_REQUIRED  "ids is required"


static void sg_route_fail(sg_route_t *rt, int status, const char *message,
    size_t message_len, const char *member, const unsigned char *name,
    size_t name_len);
static int sg_route_is_id(const unsigned char *p, size_t len);
static int sg_route_is_method(const unsigned char *method, size_t len,
    const char *want, size_t want_len);
static void sg_route_path(sg_route_t *rt, const unsigned char *method,
    size_t method_len, const unsigned char *path, size_t len);
static void sg_route_query(sg_route_t *rt, const unsigned char *query,
    size_t len);
static void sg_route_ids(sg_route_t *rt, const unsigned char *query,
    size_t len);
static size_t sg_route_id_separator(const unsigned char *p, size_t len);
static void sg_route_bad_id(sg_route_t *rt, const char *message,
    size_t message_len, size_t index);


#define sg_route_fail_str(rt, status, msg, member, name, name_len)            \
    sg_route_fail(rt, status, msg, sizeof(msg) - 1, member, name, name_len)

#define sg_route_method_is(method, len, want)                                 \
    sg_route_is_method(method, len, want, sizeof(want) - 1)


void
sg_route_match(sg_route_t *rt, const unsigned char *method,
    size_t method_len, const unsigned char *target, size_t target_len)
{
    size_t                path_len;
    const unsigned char  *query;

    memset(rt, 0, sizeof(sg_route_t));

    /* memchr() must not see a NULL pointer, even with a zero length */
    if (target_len == 0 || memchr(target, '#', target_len) != NULL) {
        sg_route_fail_str(rt, 404, SG_MSG_NOT_FOUND, "field", NULL, 0);
        return;
    }

    query = memchr(target, '?', target_len);
    path_len = query ? (size_t) (query - target) : target_len;

    sg_route_path(rt, method, method_len, target, path_len);

    if (rt->err.status) {
        return;
    }

    if (query == NULL) {
        if (rt->op == SG_OP_DELETE) {
            sg_route_fail_str(rt, 400, SG_MSG_IDS_REQUIRED, "parameter",
                              (const unsigned char *) "ids", 3);
        }

        return;
    }

    query++;

    sg_route_query(rt, query, (size_t) (target + target_len - query));
}


const char *
sg_op_name(sg_op_t op)
{
    switch (op) {
    case SG_OP_LIST:   return "list";
    case SG_OP_CREATE: return "create";
    case SG_OP_DELETE: return "delete";
    case SG_OP_GET:    return "get";
    case SG_OP_UPDATE: return "update";
    default:           return "";
    }
}


static void
sg_route_fail(sg_route_t *rt, int status, const char *message,
    size_t message_len, const char *member, const unsigned char *name,
    size_t name_len)
{
    rt->err.status = status;
    rt->err.message = message;
    rt->err.message_len = message_len;
    rt->err.member = member;
    rt->err.name = name;
    rt->err.name_len = name_len;
}


static int
sg_route_is_id(const unsigned char *p, size_t len)
{
    size_t         i;
    unsigned char  c;

    if (len == 0 || len > SG_ID_MAX_LEN) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = p[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '_' || c == '-')
        {
            continue;
        }

        return 0;
    }

    return 1;
}


static int
sg_route_is_method(const unsigned char *method, size_t len,
    const char *want, size_t want_len)
{
    return len == want_len && memcmp(method, want, len) == 0;
}


/*
 * The path must be the collection or the collection, one '/' and an id,
 * byte for byte: nothing is decoded or normalized, so a dot segment, a
 * doubled or trailing slash, a ';' or any percent-encoding is a 404.
 */
static void
sg_route_path(sg_route_t *rt, const unsigned char *method,
    size_t method_len, const unsigned char *path, size_t len)
{
    if (len < SG_COLLECTION_LEN
        || memcmp(path, SG_COLLECTION, SG_COLLECTION_LEN) != 0)
    {
        goto not_found;
    }

    if (len == SG_COLLECTION_LEN) {

        if (sg_route_method_is(method, method_len, "GET")) {
            rt->op = SG_OP_LIST;

        } else if (sg_route_method_is(method, method_len, "POST")) {
            rt->op = SG_OP_CREATE;

        } else if (sg_route_method_is(method, method_len, "DELETE")) {
            rt->op = SG_OP_DELETE;

        } else {
            rt->allow = SG_ALLOW_COLLECTION;
            goto not_allowed;
        }

        return;
    }

    if (path[SG_COLLECTION_LEN] != '/'
        || !sg_route_is_id(path + SG_COLLECTION_LEN + 1,
                           len - SG_COLLECTION_LEN - 1))
    {
        goto not_found;
    }

    if (sg_route_method_is(method, method_len, "GET")) {
        rt->op = SG_OP_GET;

    } else if (sg_route_method_is(method, method_len, "PATCH")) {
        rt->op = SG_OP_UPDATE;

    } else {
        rt->allow = SG_ALLOW_ITEM;
        goto not_allowed;
    }

    return;

not_found:

    sg_route_fail_str(rt, 404, SG_MSG_NOT_FOUND, "field", NULL, 0);
    return;

not_allowed:

    sg_route_fail_str(rt, 405, SG_MSG_NOT_ALLOWED, "field", NULL, 0);
}


/*
 * The query is judged in three sweeps so that the answer does not depend
 * on where the fault sits: the shape (no empty component) first, then the
 * names, then the values of ids.
 */
static void
sg_route_query(sg_route_t *rt, const unsigned char *query, size_t len)
{
    size_t                n;
    const unsigned char  *p, *end, *amp, *eq;

    end = query + len;

    for (p = query; /* void */; p = amp + 1) {
        amp = memchr(p, '&', (size_t) (end - p));

        if (amp == NULL) {
            amp = end;
        }

        if (amp == p) {
            sg_route_fail_str(rt, 400, SG_MSG_EMPTY_PARAM, "parameter",
                              (const unsigned char *) "", 0);
            return;
        }

        if (amp == end) {
            break;
        }
    }

    for (p = query; /* void */; p = amp + 1) {
        amp = memchr(p, '&', (size_t) (end - p));

        if (amp == NULL) {
            amp = end;
        }

        eq = memchr(p, '=', (size_t) (amp - p));
        n = (size_t) ((eq ? eq : amp) - p);

        if (rt->op != SG_OP_DELETE || n != 3 || memcmp(p, "ids", 3) != 0) {
            sg_route_fail_str(rt, 400, SG_MSG_UNKNOWN_PARAM, "parameter", p,
                              n < SG_QUERY_NAME_MAX_LEN
                              ? n : SG_QUERY_NAME_MAX_LEN);
            return;
        }

        if (amp == end) {
            break;
        }
    }

    sg_route_ids(rt, query, len);
}


/*
 * Every component is "ids" or "ids=..." here.  The ids are the values in
 * order, each split on ',' and %2C; "ids" alone stands for one empty id.
 */
static void
sg_route_ids(sg_route_t *rt, const unsigned char *query, size_t len)
{
    int                   last;
    size_t                index, sep;
    const unsigned char  *p, *end, *id;

    index = 0;
    end = query + len;
    p = query + 3;

    for ( ;; ) {

        /* p is just after the name "ids" of a component */

        if (p < end && *p == '=') {
            p++;
        }

        id = p;

        for ( ;; ) {
            last = (p == end || *p == '&');
            sep = last ? 0 : sg_route_id_separator(p, (size_t) (end - p));

            if (!last && sep == 0) {
                p++;
                continue;
            }

            /* [id, p) is one id, ended by a separator or the component */

            if (p == id) {
                sg_route_bad_id(rt, SG_MSG_EMPTY_ID,
                                sizeof(SG_MSG_EMPTY_ID) - 1, index);
                return;
            }

            if (!sg_route_is_id(id, (size_t) (p - id))) {
                sg_route_bad_id(rt, SG_MSG_BAD_ID,
                                sizeof(SG_MSG_BAD_ID) - 1, index);
                return;
            }

            index++;

            if (last) {
                break;
            }

            p += sep;
            id = p;
        }

        if (p == end) {
            return;
        }

        p += sizeof("&ids") - 1;
    }
}


/* Length of the id separator (',' or %2C) at p, or 0 when there is none. */
static size_t
sg_route_id_separator(const unsigned char *p, size_t len)
{
    if (*p == ',') {
        return 1;
    }

    if (*p == '%' && len >= 3 && p[1] == '2' && (p[2] == 'C' || p[2] == 'c'))
    {
        return 3;
    }

    return 0;
}


static void
sg_route_bad_id(sg_route_t *rt, const char *message, size_t message_len,
    size_t index)
{
    char    digits[sizeof(size_t) * 3];
    char   *p;
    size_t  n;

    n = 0;

    do {
        digits[n++] = (char) ('0' + index % 10);
        index /= 10;
    } while (index);

    p = rt->name_buf;
    memcpy(p, "ids[", 4);
    p += 4;

    while (n) {
        *p++ = digits[--n];
    }

    *p++ = ']';
    *p = '\0';

    sg_route_fail(rt, 400, message, message_len, "parameter",
                  (const unsigned char *) rt->name_buf,
                  (size_t) (p - rt->name_buf));
}
