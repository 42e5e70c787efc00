/*
 * sg_route_match() on arbitrary methods and targets.
 *
 * The first byte picks a method from a short list; from 0xf0 up its low
 * nibble is the length of a method taken from the bytes that follow.  The
 * rest is the target.  Besides the sanitizers, it checks that a request is
 * forwarded exactly when an independent, deliberately plain statement of
 * the allowlist says it is canonical, and that every refusal is well formed.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../ngx_sendgrid_integrations_module/sg_route.h"
#include "../t/unit/route_oracle.h"




static const char  *methods[] = {
    "GET", "POST", "DELETE", "PATCH", "PUT", "HEAD", "OPTIONS", "TRACE",
    "CONNECT", "get", "delete", ""
};


static int
within(const void *p, size_t n, const void *start, size_t len)
{
    const unsigned char  *a, *b;

    a = p;
    b = start;

    return a >= b && a <= b + len && n <= (size_t) (b + len - a);
}


/*
 * What each message names: nothing for a 404 or 405, the raw name (at most
 * SG_QUERY_NAME_MAX_LEN bytes of the target) of an unknown parameter,
 * "ids[N]" in name_buf for a refused id.
 */
static int
name_is_sound(const sg_route_t *rt, const unsigned char *target, size_t len)
{
    size_t                n;
    const char           *msg;
    const unsigned char  *name;

    msg = rt->err.message;
    name = rt->err.name;
    n = rt->err.name_len;

    if (rt->err.status != 400) {
        return name == NULL;
    }

    if (name == NULL) {
        return 0;
    }

    if (strcmp(msg, "empty query parameter") == 0) {
        return n == 0;
    }

    if (strcmp(msg, "ids is required") == 0) {
        return n == 3 && memcmp(name, "ids", 3) == 0;
    }

    if (strcmp(msg, "unknown query parameter") == 0) {
        return n <= SG_QUERY_NAME_MAX_LEN && within(name, n, target, len);
    }

    if (strcmp(msg, "IDs cannot be an empty string") == 0
        || strncmp(msg, "IDs must be 1 to 128 characters", 31) == 0)
    {
        return within(name, n, rt->name_buf, sizeof(rt->name_buf))
               && n == strlen(rt->name_buf)
               && n > 5
               && memcmp(name, "ids[", 4) == 0
               && strspn((const char *) name + 4, "0123456789") == n - 5
               && name[n - 1] == ']';
    }

    return 0;
}


static void
check_refusal(const sg_route_t *rt, const unsigned char *target,
    size_t len)
{
    size_t          n;
    json_t         *root, *e;
    json_error_t    jerr;
    unsigned char  *body, *end;

    switch (rt->err.status) {

    case 404:
        if (rt->op != SG_OP_NONE || rt->allow != NULL
            || strcmp(rt->err.message, "resource not found") != 0)
        {
            abort();
        }
        break;

    case 405:
        if (rt->op != SG_OP_NONE || rt->allow == NULL
            || strcmp(rt->err.message, "method not allowed") != 0
            || (strcmp(rt->allow, "GET, POST, DELETE") != 0
                && strcmp(rt->allow, "GET, PATCH") != 0))
        {
            abort();
        }
        break;

    case 400:
        if (rt->op == SG_OP_NONE || rt->allow != NULL
            || strcmp(rt->err.member, "parameter") != 0)
        {
            abort();
        }
        break;

    default:
        abort();
    }

    if (rt->err.message_len != strlen(rt->err.message)
        || (strcmp(rt->err.member, "field") != 0
            && strcmp(rt->err.member, "parameter") != 0))
    {
        abort();
    }

    if (!name_is_sound(rt, target, len)) {
        abort();
    }

    n = sg_error_body_len(&rt->err);
    body = malloc(n);

    if (body == NULL) {
        abort();
    }

    end = sg_error_body(body, &rt->err);

    if ((size_t) (end - body) != n) {
        abort();
    }

    /* a NUL in a name is escaped as \u0000, valid JSON jansson must allow */
    root = json_loadb((const char *) body, n,
                      JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    e = json_array_get(json_object_get(root, "errors"), 0);

    if (root == NULL
        || !json_is_string(json_object_get(e, "message"))
        || strcmp(json_string_value(json_object_get(e, "message")),
                  rt->err.message) != 0
        || json_object_get(e, rt->err.member) == NULL)
    {
        abort();
    }

    json_decref(root);
    free(body);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int             canonical;
    char           *method;
    size_t          method_len, len;
    sg_route_t      rt;
    const uint8_t  *target, *from;
    unsigned char  *bytes;

    if (size == 0) {
        return 0;
    }

    if (data[0] >= 0xf0) {
        method_len = data[0] & 0x0f;

        if (size - 1 < method_len) {
            return 0;
        }

        from = data + 1;
        target = data + 1 + method_len;

    } else {
        from = (const uint8_t *)
                   methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];
        method_len = strlen((const char *) from);
        target = data + 1;
    }

    /* the matcher sees exactly method_len bytes, the oracle a C string */
    bytes = malloc(method_len ? method_len : 1);
    method = malloc(method_len + 1);

    if (bytes == NULL || method == NULL) {
        abort();
    }

    memcpy(bytes, from, method_len);
    memcpy(method, from, method_len);
    method[method_len] = '\0';

    len = data + size - target;

    sg_route_match(&rt, bytes, method_len, target, len);

    canonical = is_canonical(method, method_len, target, len);

    if ((rt.err.status == 0) != canonical) {
        abort();
    }

    if (rt.err.status == 0) {
        if (rt.op == SG_OP_NONE || rt.allow != NULL
            || sg_op_name(rt.op)[0] == '\0')
        {
            abort();
        }

    } else {
        check_refusal(&rt, target, len);
    }

    free(method);
    free(bytes);

    return 0;
}
