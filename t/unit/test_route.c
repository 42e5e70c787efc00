/*
 * sg_route: the route allowlist, its catalogue of refusals, and the error
 * bodies they produce.
 */

#include <stdlib.h>

#include <jansson.h>

#include "tap.h"
#include "../../ngx_sendgrid_integrations_module/sg_route.h"
#include "route_oracle.h"


#define ITEM       COLL "/abc-DEF_123"

#define C16        "abcdefghij_-0123"
#define C64        C16 C16 C16 C16
#define C128       C64 C64
#define C129       C128 "x"


#define ALLOW_C    "GET, POST, DELETE"
#define ALLOW_I    "GET, PATCH"

#define MSG_BAD_ID "IDs must be 1 to 128 characters of A-Z, a-z, 0-9, _ and -"

/* the expectations, in the order of the case fields below */
#define PASS(op)        0, op, NULL, NULL, NULL, NULL
#define NOT_FOUND       404, SG_OP_NONE, "resource not found", "field",      \
                        NULL, NULL
#define NOT_ALLOWED(a)  405, SG_OP_NONE, "method not allowed", "field",      \
                        NULL, a
#define EMPTY_PARAM(op) 400, op, "empty query parameter", "parameter", "",   \
                        NULL
#define UNKNOWN(op, n)  400, op, "unknown query parameter", "parameter", n,  \
                        NULL
#define EMPTY_ID(n)     400, SG_OP_DELETE, "IDs cannot be an empty string",  \
                        "parameter", "ids[" #n "]", NULL
#define BAD_ID(n)       400, SG_OP_DELETE, MSG_BAD_ID, "parameter",          \
                        "ids[" #n "]", NULL

/* a target as a C string, or with its length when it holds a NUL */
#define T(s)            s, 0
#define RAW(s)          s, sizeof(s) - 1


typedef struct {
    const char  *method;
    const char  *target;
    size_t       target_len;
    int          status;
    sg_op_t      op;
    const char  *message;
    const char  *member;
    const char  *name;
    const char  *allow;
} route_case_t;


static const route_case_t  allowed[] = {
    { "GET", T(COLL), PASS(SG_OP_LIST) },
    { "POST", T(COLL), PASS(SG_OP_CREATE) },
    { "DELETE", T(COLL "?ids=abc"), PASS(SG_OP_DELETE) },
    { "GET", T(ITEM), PASS(SG_OP_GET) },
    { "PATCH", T(ITEM), PASS(SG_OP_UPDATE) },

    { "GET", T(COLL "/a"), PASS(SG_OP_GET) },
    { "GET", T(COLL "/_"), PASS(SG_OP_GET) },
    { "PATCH", T(COLL "/-"), PASS(SG_OP_UPDATE) },
    { "GET", T(COLL "/" C128), PASS(SG_OP_GET) },
    { "PATCH", T(COLL "/" C128), PASS(SG_OP_UPDATE) },

    { "DELETE", T(COLL "?ids=1"), PASS(SG_OP_DELETE) },
    { "DELETE", T(COLL "?ids=a,b,c"), PASS(SG_OP_DELETE) },
    { "DELETE", T(COLL "?ids=a%2Cb%2Cc"), PASS(SG_OP_DELETE) },
    { "DELETE", T(COLL "?ids=a%2cb%2cc"), PASS(SG_OP_DELETE) },
    { "DELETE", T(COLL "?ids=a%2Cb,c%2cd"), PASS(SG_OP_DELETE) },
    { "DELETE", T(COLL "?ids=a&ids=b"), PASS(SG_OP_DELETE) },
    { "DELETE", T(COLL "?ids=a&ids=b,c&ids=d%2Ce"), PASS(SG_OP_DELETE) },
    { "DELETE", T(COLL "?ids=" C128), PASS(SG_OP_DELETE) },
    { "DELETE", T(COLL "?ids=" C128 "," C128 "%2C" C128),
      PASS(SG_OP_DELETE) },
    { "DELETE", T(COLL "?ids=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"),
      PASS(SG_OP_DELETE) },
};


static const route_case_t  refused[] = {

    /* dot segments, raw and encoded */
    { "GET", T(COLL "/.."), NOT_FOUND },
    { "GET", T(COLL "/."), NOT_FOUND },
    { "GET", T(COLL "/../integrations"), NOT_FOUND },
    { "GET", T(COLL "/./abc"), NOT_FOUND },
    { "GET", T("/v3/marketing/./integrations"), NOT_FOUND },
    { "GET", T("/v3/marketing/../marketing/integrations"), NOT_FOUND },
    { "GET", T("/v3/./marketing/integrations"), NOT_FOUND },
    { "GET", T(COLL "/%2e%2e"), NOT_FOUND },
    { "GET", T(COLL "/%2E%2E"), NOT_FOUND },
    { "GET", T(COLL "/%2E"), NOT_FOUND },
    { "GET", T("/v3/marketing/%2e/integrations"), NOT_FOUND },
    { "DELETE", T("/v3/marketing/integrations/..?ids=a"), NOT_FOUND },

    /* encoded and doubled slashes, trailing slash */
    { "GET", T("/v3/marketing%2Fintegrations"), NOT_FOUND },
    { "GET", T("/v3/marketing%2fintegrations"), NOT_FOUND },
    { "GET", T(COLL "%2Fabc"), NOT_FOUND },
    { "GET", T(COLL "/abc%2Fdef"), NOT_FOUND },
    { "GET", T("//v3/marketing/integrations"), NOT_FOUND },
    { "GET", T("/v3//marketing/integrations"), NOT_FOUND },
    { "GET", T(COLL "//abc"), NOT_FOUND },
    { "GET", T(COLL "/"), NOT_FOUND },
    { "POST", T(COLL "/"), NOT_FOUND },
    { "GET", T(ITEM "/"), NOT_FOUND },
    { "DELETE", T(COLL "/?ids=a"), NOT_FOUND },
    { "GET", T(COLL "/abc/def"), NOT_FOUND },

    /* matrix parameters, encoded bytes, backslashes */
    { "GET", T(COLL ";jsessionid=1"), NOT_FOUND },
    { "GET", T(ITEM ";x=1"), NOT_FOUND },
    { "GET", T(ITEM "%00"), NOT_FOUND },
    { "GET", T(ITEM "%0d%0aX-Injected:%201"), NOT_FOUND },
    { "GET", T(COLL "%3Fids=a"), NOT_FOUND },
    { "DELETE", T(COLL "%3fids=a"), NOT_FOUND },
    { "GET", T(COLL "\\abc"), NOT_FOUND },
    { "GET", T("\\v3\\marketing\\integrations"), NOT_FOUND },
    { "GET", T(COLL "/%41bc"), NOT_FOUND },
    { "GET", T(COLL "%20"), NOT_FOUND },

    /* ids in the path that are not ids */
    { "GET", T(COLL "/" C129), NOT_FOUND },
    { "PATCH", T(COLL "/" C129), NOT_FOUND },
    { "GET", T(COLL "/abc.def"), NOT_FOUND },
    { "GET", T(COLL "/abc~1"), NOT_FOUND },
    { "GET", T(COLL "/abc+def"), NOT_FOUND },
    { "GET", T(COLL "/a b"), NOT_FOUND },
    { "GET", T(COLL "/caf\xc3\xa9"), NOT_FOUND },
    { "GET", RAW(COLL "/abc\0def"), NOT_FOUND },
    { "GET", RAW(COLL "\0"), NOT_FOUND },
    { "GET", T(COLL "/abc\r\n"), NOT_FOUND },

    /* fragments, anywhere */
    { "GET", T(COLL "#frag"), NOT_FOUND },
    { "GET", T(ITEM "#frag"), NOT_FOUND },
    { "DELETE", T(COLL "?ids=a#b"), NOT_FOUND },
    { "GET", T(COLL "?#"), NOT_FOUND },
    { "GET", T("#"), NOT_FOUND },

    /* prefixes, case, other forms of target */
    { "GET", T(COLL "X"), NOT_FOUND },
    { "GET", T(COLL "-foo"), NOT_FOUND },
    { "POST", T(COLL "-foo"), NOT_FOUND },
    { "DELETE", T(COLL "_x?ids=a"), NOT_FOUND },
    { "GET", T("/V3/marketing/integrations"), NOT_FOUND },
    { "GET", T("/v3/Marketing/Integrations"), NOT_FOUND },
    { "GET", T("/v3/marketing/integration"), NOT_FOUND },
    { "GET", T("/v3/marketing"), NOT_FOUND },
    { "GET", T("/v3/marketing/integrations"
               "/abc/../../integrations"), NOT_FOUND },
    { "GET", T("/"), NOT_FOUND },
    { "GET", T(""), NOT_FOUND },
    { "OPTIONS", T("*"), NOT_FOUND },
    { "GET", T("v3/marketing/integrations"), NOT_FOUND },
    { "GET", T("http://api.sendgrid.com/v3/marketing/integrations"),
      NOT_FOUND },
    { "GET", T("?ids=a"), NOT_FOUND },
    { "TRACE", T(COLL "/.."), NOT_FOUND },
    { "PUT", T(COLL "X?foo"), NOT_FOUND },

    /* other methods on the collection */
    { "TRACE", T(COLL), NOT_ALLOWED(ALLOW_C) },
    { "PUT", T(COLL), NOT_ALLOWED(ALLOW_C) },
    { "HEAD", T(COLL), NOT_ALLOWED(ALLOW_C) },
    { "OPTIONS", T(COLL), NOT_ALLOWED(ALLOW_C) },
    { "CONNECT", T(COLL), NOT_ALLOWED(ALLOW_C) },
    { "PATCH", T(COLL), NOT_ALLOWED(ALLOW_C) },
    { "get", T(COLL), NOT_ALLOWED(ALLOW_C) },
    { "Post", T(COLL), NOT_ALLOWED(ALLOW_C) },
    { "delete", T(COLL "?ids=a"), NOT_ALLOWED(ALLOW_C) },
    { "GET ", T(COLL), NOT_ALLOWED(ALLOW_C) },
    { "GETS", T(COLL), NOT_ALLOWED(ALLOW_C) },
    { "GE", T(COLL), NOT_ALLOWED(ALLOW_C) },
    { "", T(COLL), NOT_ALLOWED(ALLOW_C) },
    { "PUT", T(COLL "?foo=1"), NOT_ALLOWED(ALLOW_C) },
    { "HEAD", T(COLL "?"), NOT_ALLOWED(ALLOW_C) },

    /* other methods on an item */
    { "TRACE", T(ITEM), NOT_ALLOWED(ALLOW_I) },
    { "PUT", T(ITEM), NOT_ALLOWED(ALLOW_I) },
    { "HEAD", T(ITEM), NOT_ALLOWED(ALLOW_I) },
    { "OPTIONS", T(ITEM), NOT_ALLOWED(ALLOW_I) },
    { "CONNECT", T(ITEM), NOT_ALLOWED(ALLOW_I) },
    { "POST", T(ITEM), NOT_ALLOWED(ALLOW_I) },
    { "DELETE", T(ITEM), NOT_ALLOWED(ALLOW_I) },
    { "DELETE", T(ITEM "?ids=abc"), NOT_ALLOWED(ALLOW_I) },
    { "get", T(ITEM), NOT_ALLOWED(ALLOW_I) },
    { "patch", T(ITEM), NOT_ALLOWED(ALLOW_I) },

    /* empty query components */
    { "GET", T(COLL "?"), EMPTY_PARAM(SG_OP_LIST) },
    { "POST", T(COLL "?"), EMPTY_PARAM(SG_OP_CREATE) },
    { "GET", T(ITEM "?"), EMPTY_PARAM(SG_OP_GET) },
    { "PATCH", T(ITEM "?"), EMPTY_PARAM(SG_OP_UPDATE) },
    { "DELETE", T(COLL "?"), EMPTY_PARAM(SG_OP_DELETE) },
    { "GET", T(COLL "?&"), EMPTY_PARAM(SG_OP_LIST) },
    { "GET", T(COLL "?a=1&&"), EMPTY_PARAM(SG_OP_LIST) },
    { "DELETE", T(COLL "?ids=a&"), EMPTY_PARAM(SG_OP_DELETE) },
    { "DELETE", T(COLL "?&ids=a"), EMPTY_PARAM(SG_OP_DELETE) },
    { "DELETE", T(COLL "?ids=a&&ids=b"), EMPTY_PARAM(SG_OP_DELETE) },
    { "DELETE", T(COLL "?ids=bad!&"), EMPTY_PARAM(SG_OP_DELETE) },
    { "DELETE", T(COLL "?foo&"), EMPTY_PARAM(SG_OP_DELETE) },
    { "GET", T(COLL "??"), UNKNOWN(SG_OP_LIST, "?") },

    /* extra parameters on every operation */
    { "GET", T(COLL "?foo=1"), UNKNOWN(SG_OP_LIST, "foo") },
    { "GET", T(COLL "?ids=a"), UNKNOWN(SG_OP_LIST, "ids") },
    { "GET", T(COLL "?a=1&b=2"), UNKNOWN(SG_OP_LIST, "a") },
    { "POST", T(COLL "?x"), UNKNOWN(SG_OP_CREATE, "x") },
    { "POST", T(COLL "?on_behalf_of=acme"),
      UNKNOWN(SG_OP_CREATE, "on_behalf_of") },
    { "GET", T(ITEM "?ids=1"), UNKNOWN(SG_OP_GET, "ids") },
    { "GET", T(ITEM "?=x"), UNKNOWN(SG_OP_GET, "") },
    { "PATCH", T(ITEM "?a=b"), UNKNOWN(SG_OP_UPDATE, "a") },
    { "PATCH", T(ITEM "?_method=DELETE"), UNKNOWN(SG_OP_UPDATE, "_method") },
    { "DELETE", T(COLL "?ids=a&foo=1"), UNKNOWN(SG_OP_DELETE, "foo") },
    { "DELETE", T(COLL "?foo=1&ids=a"), UNKNOWN(SG_OP_DELETE, "foo") },
    { "DELETE", T(COLL "?IDS=a"), UNKNOWN(SG_OP_DELETE, "IDS") },
    { "DELETE", T(COLL "?ids[]=a"), UNKNOWN(SG_OP_DELETE, "ids[]") },
    { "DELETE", T(COLL "?ids%5B%5D=a"), UNKNOWN(SG_OP_DELETE, "ids%5B%5D") },
    { "DELETE", T(COLL "?%69ds=a"), UNKNOWN(SG_OP_DELETE, "%69ds") },
    { "DELETE", T(COLL "?ids%3Da"), UNKNOWN(SG_OP_DELETE, "ids%3Da") },
    { "DELETE", T(COLL "?idsx=a"), UNKNOWN(SG_OP_DELETE, "idsx") },
    { "DELETE", T(COLL "?id=a"), UNKNOWN(SG_OP_DELETE, "id") },
    { "DELETE", T(COLL "?ids=a&ids=b&x"), UNKNOWN(SG_OP_DELETE, "x") },
    { "DELETE", T(COLL "?ids=bad!&foo"), UNKNOWN(SG_OP_DELETE, "foo") },
    { "DELETE", T(COLL "?=a"), UNKNOWN(SG_OP_DELETE, "") },
    { "GET", T(COLL "?" C64 "tail=1"), UNKNOWN(SG_OP_LIST, C64) },
    { "GET", T(COLL "?" C64), UNKNOWN(SG_OP_LIST, C64) },
    { "GET", T(COLL "?abc%0d%0a"), UNKNOWN(SG_OP_LIST, "abc%0d%0a") },
    { "GET", T(COLL "?a\"b\\c=1"), UNKNOWN(SG_OP_LIST, "a\"b\\c") },
    { "GET", T(COLL "?a\tb"), UNKNOWN(SG_OP_LIST, "a\tb") },

    /* bad ids */
    { "DELETE", T(COLL), 400, SG_OP_DELETE, "ids is required", "parameter",
      "ids", NULL },
    { "DELETE", T(COLL "?ids="), EMPTY_ID(0) },
    { "DELETE", T(COLL "?ids"), EMPTY_ID(0) },
    { "DELETE", T(COLL "?ids=,"), EMPTY_ID(0) },
    { "DELETE", T(COLL "?ids=,a"), EMPTY_ID(0) },
    { "DELETE", T(COLL "?ids=a,"), EMPTY_ID(1) },
    { "DELETE", T(COLL "?ids=a,,b"), EMPTY_ID(1) },
    { "DELETE", T(COLL "?ids=a%2C%2Cb"), EMPTY_ID(1) },
    { "DELETE", T(COLL "?ids=a%2C"), EMPTY_ID(1) },
    { "DELETE", T(COLL "?ids=%2c"), EMPTY_ID(0) },
    { "DELETE", T(COLL "?ids=a&ids="), EMPTY_ID(1) },
    { "DELETE", T(COLL "?ids=a,b&ids"), EMPTY_ID(2) },
    { "DELETE", T(COLL "?ids=a,,bad!"), EMPTY_ID(1) },
    { "DELETE", T(COLL "?ids=0,1,2,3,4,5,6,7,8,9,10,11,"), EMPTY_ID(12) },
    { "DELETE", T(COLL "?ids=a.b"), BAD_ID(0) },
    { "DELETE", T(COLL "?ids=a,b~c"), BAD_ID(1) },
    { "DELETE", T(COLL "?ids=a,%41"), BAD_ID(1) },
    { "DELETE", T(COLL "?ids=a%2"), BAD_ID(0) },
    { "DELETE", T(COLL "?ids=a%2"), BAD_ID(0) },
    { "DELETE", T(COLL "?ids=a%2Db"), BAD_ID(0) },
    { "DELETE", T(COLL "?ids=a%252Cb"), BAD_ID(0) },
    { "DELETE", T(COLL "?ids=%20a"), BAD_ID(0) },
    { "DELETE", T(COLL "?ids=" C129), BAD_ID(0) },
    { "DELETE", T(COLL "?ids=a," C129), BAD_ID(1) },
    { "DELETE", T(COLL "?ids=a&ids=b%2C" C129), BAD_ID(2) },
    { "DELETE", T(COLL "?ids=a b"), BAD_ID(0) },
    { "DELETE", T(COLL "?ids=a=b"), BAD_ID(0) },
    { "DELETE", T(COLL "?ids=a+b"), BAD_ID(0) },
    { "DELETE", T(COLL "?ids=a;b"), BAD_ID(0) },
    { "DELETE", T(COLL "?ids=../a"), BAD_ID(0) },
    { "DELETE", T(COLL "?ids=bad!,"), BAD_ID(0) },
    { "DELETE", T(COLL "?ids=caf\xc3\xa9"), BAD_ID(0) },
    { "DELETE", RAW(COLL "?ids=a\0b"), BAD_ID(0) },
    { "DELETE", T(COLL "?ids=a?b"), BAD_ID(0) },
    { "DELETE", T(COLL "?ids=0,1,2,3,4,5,6,7,8,9,10,11,1.2"), BAD_ID(12) },
};


/* Diagnostics of a case, printed after its result line. */
static char  diag_buf[4096];

static void
diag(const char *fmt, ...)
{
    size_t   n;
    va_list  ap;

    n = strlen(diag_buf);

    va_start(ap, fmt);
    vsnprintf(diag_buf + n, sizeof(diag_buf) - n, fmt, ap);
    va_end(ap);
}


/*
 * The error body of rt, made with sg_error_body() in a buffer of exactly
 * the predicted size, or NULL when it does not fill the buffer exactly.
 */
static char *
error_body(const sg_route_t *rt)
{
    char           *body;
    size_t          len;
    unsigned char  *end;

    len = sg_error_body_len(&rt->err);
    body = malloc(len + 1);

    if (body == NULL) {
        return NULL;
    }

    end = sg_error_body((unsigned char *) body, &rt->err);

    if ((size_t) (end - (unsigned char *) body) != len) {
        diag("#   body length %zu, predicted %zu\n",
               (size_t) (end - (unsigned char *) body), len);
        free(body);
        return NULL;
    }

    body[len] = '\0';

    return body;
}


/*
 * Matches c with the target in a heap buffer of exactly its length, so
 * that the sanitizer catches any read past it.
 */
static void
match(sg_route_t *rt, const route_case_t *c, unsigned char **copy,
    size_t *len)
{
    *len = c->target_len ? c->target_len : strlen(c->target);
    *copy = malloc(*len ? *len : 1);
    memcpy(*copy, c->target, *len);

    sg_route_match(rt, (const unsigned char *) c->method, strlen(c->method),
                   *copy, *len);
}


static int
same_name(const sg_route_t *rt, const char *want)
{
    if (want == NULL || rt->err.name == NULL) {
        return want == NULL && rt->err.name == NULL;
    }

    return rt->err.name_len == strlen(want)
           && memcmp(rt->err.name, want, rt->err.name_len) == 0;
}


static int
same_str(const char *got, const char *want)
{
    if (got == NULL || want == NULL) {
        return got == want;
    }

    return strcmp(got, want) == 0;
}


/* The body, read back with jansson, says what the case expects. */
static int
body_says(const char *body, const route_case_t *c)
{
    int          pass;
    json_t      *root, *errors, *e, *name;
    json_error_t  jerr;

    root = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);

    if (root == NULL) {
        diag("#   body is not JSON: %s\n", jerr.text);
        return 0;
    }

    errors = json_object_get(root, "errors");
    e = json_array_get(errors, 0);
    name = json_object_get(e, c->member);

    pass = json_object_size(root) == 1
           && json_array_size(errors) == 1
           && json_object_size(e) == 2
           && json_is_string(json_object_get(e, "message"))
           && strcmp(json_string_value(json_object_get(e, "message")),
                     c->message) == 0
           && (c->name == NULL
               ? json_is_null(name)
               : json_is_string(name)
                 && strcmp(json_string_value(name), c->name) == 0);

    json_decref(root);

    return pass;
}


/* The target for a test description, bytes not printable ASCII as \xNN */
static const char *
printable(const unsigned char *p, size_t len, char *out)
{
    char    *o;
    size_t   i;

    o = out;

    for (i = 0; i < len && i < 500; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
            *o++ = (char) p[i];

        } else {
            o += sprintf(o, "\\x%02x", p[i]);
        }
    }

    *o = '\0';

    return out;
}


static void
check_case(const route_case_t *c)
{
    int             pass;
    char           *body;
    char            shown[4 * 512];
    size_t          len;
    sg_route_t      rt;
    unsigned char  *target;

    match(&rt, c, &target, &len);

    diag_buf[0] = '\0';
    pass = 1;

    if (rt.err.status != c->status) {
        diag("#   status %d, expected %d\n", rt.err.status, c->status);
        pass = 0;
    }

    if (rt.op != c->op) {
        diag("#   op \"%s\", expected \"%s\"\n",
               sg_op_name(rt.op), sg_op_name(c->op));
        pass = 0;
    }

    if (!same_str(rt.allow, c->allow)) {
        diag("#   allow \"%s\", expected \"%s\"\n",
               rt.allow ? rt.allow : "(null)",
               c->allow ? c->allow : "(null)");
        pass = 0;
    }

    if (c->status == 0) {
        goto done;
    }

    if (!same_str(rt.err.message, c->message)
        || rt.err.message_len != strlen(c->message))
    {
        diag("#   message \"%s\", expected \"%s\"\n",
               rt.err.message ? rt.err.message : "(null)", c->message);
        pass = 0;
    }

    if (!same_str(rt.err.member, c->member)) {
        diag("#   member \"%s\", expected \"%s\"\n",
               rt.err.member ? rt.err.member : "(null)", c->member);
        pass = 0;
    }

    if (!same_name(&rt, c->name)) {
        diag("#   name \"%.*s\", expected \"%s\"\n",
               rt.err.name ? (int) rt.err.name_len : 6,
               rt.err.name ? (const char *) rt.err.name : "(null)",
               c->name ? c->name : "(null)");
        pass = 0;
    }

    /* an unknown parameter is named by the bytes of the target itself */
    if (c->status == 400 && c->message[0] == 'u'
        && rt.err.name != NULL
        && (rt.err.name < target
            || rt.err.name + rt.err.name_len > target + len))
    {
        diag("#   name does not point into the target\n");
        pass = 0;
    }

    /* a forwarded request has no error body to make */
    body = rt.err.status ? error_body(&rt) : NULL;

    if (body == NULL || !body_says(body, c)) {
        diag("#   body %s\n", body ? body : "(none)");
        pass = 0;
    }

    free(body);

done:

    ok(pass, "%s %s -> %d %s", c->method, printable(target, len, shown),
       c->status, c->status ? c->message : sg_op_name(c->op));

    printf("%s", diag_buf);

    free(target);
}


static void
check_body(const char *method, const char *target, const char *want)
{
    char                *body;
    size_t               len;
    sg_route_t           rt;
    unsigned char       *copy;
    const route_case_t   c = { method, target, 0, 0, SG_OP_NONE,
                               NULL, NULL, NULL, NULL };

    diag_buf[0] = '\0';
    match(&rt, &c, &copy, &len);

    body = rt.err.status ? error_body(&rt) : NULL;
    is_str(body, want, "body of %s %s", method, target);
    printf("%s", diag_buf);

    free(body);
    free(copy);
}


static void
test_bodies(void)
{
    check_body("GET", COLL "/..",
               "{\"errors\":[{\"message\":\"resource not found\","
               "\"field\":null}]}");
    check_body("PUT", ITEM,
               "{\"errors\":[{\"message\":\"method not allowed\","
               "\"field\":null}]}");
    check_body("GET", COLL "?",
               "{\"errors\":[{\"message\":\"empty query parameter\","
               "\"parameter\":\"\"}]}");
    check_body("POST", COLL "?a\"b\\c=1&d",
               "{\"errors\":[{\"message\":\"unknown query parameter\","
               "\"parameter\":\"a\\\"b\\\\c\"}]}");
    check_body("GET", COLL "?x\x01\xff=1",
               "{\"errors\":[{\"message\":\"unknown query parameter\","
               "\"parameter\":\"x\\u0001\\ufffd\"}]}");
    check_body("DELETE", COLL,
               "{\"errors\":[{\"message\":\"ids is required\","
               "\"parameter\":\"ids\"}]}");
    check_body("DELETE", COLL "?ids=a,,b",
               "{\"errors\":[{\"message\":\"IDs cannot be an empty string\","
               "\"parameter\":\"ids[1]\"}]}");
    check_body("DELETE", COLL "?ids=a&ids=b%2Cc.d",
               "{\"errors\":[{\"message\":\"" MSG_BAD_ID "\","
               "\"parameter\":\"ids[2]\"}]}");
}


static void
test_op_names(void)
{
    is_str(sg_op_name(SG_OP_LIST), "list", "op name list");
    is_str(sg_op_name(SG_OP_CREATE), "create", "op name create");
    is_str(sg_op_name(SG_OP_DELETE), "delete", "op name delete");
    is_str(sg_op_name(SG_OP_GET), "get", "op name get");
    is_str(sg_op_name(SG_OP_UPDATE), "update", "op name update");
    is_str(sg_op_name(SG_OP_NONE), "", "op name none");
}


static void
test_null_inputs(void)
{
    sg_route_t  rt;

    sg_route_match(&rt, NULL, 0, NULL, 0);
    is_int(rt.err.status, 404, "no method and no target: 404");
    is_int(rt.op, SG_OP_NONE, "no method and no target: no operation");

    sg_route_match(&rt, NULL, 0, (const unsigned char *) COLL,
                   sizeof(COLL) - 1);
    is_int(rt.err.status, 405, "no method on the collection: 405");
    is_str(rt.allow, ALLOW_C, "no method on the collection: Allow");
}


/* A result left in a structure does not leak into the next match. */
static void
test_reuse(void)
{
    sg_route_t  rt;

    sg_route_match(&rt, (const unsigned char *) "PUT", 3,
                   (const unsigned char *) COLL, sizeof(COLL) - 1);
    is_int(rt.err.status, 405, "first match refused");

    sg_route_match(&rt, (const unsigned char *) "GET", 3,
                   (const unsigned char *) COLL, sizeof(COLL) - 1);
    is_int(rt.err.status, 0, "second match allowed");
    ok(rt.allow == NULL, "no Allow left from the first match");
    ok(rt.err.name == NULL && rt.err.message == NULL,
       "no error left from the first match");
}


/*
 * Every prefix of some canonical targets, and every one-byte change of
 * them, is forwarded exactly when the independent statement says so.
 */
static void
test_mutations(void)
{
    static const struct {
        const char  *method;
        const char  *target;
    } seeds[] = {
        { "GET", COLL },
        { "POST", COLL },
        { "GET", ITEM },
        { "PATCH", COLL "/" C128 },
        { "DELETE", COLL "?ids=ab,c%2Cd&ids=e%2cf" },
    };

    int             c, pass, forwarded, allowed_n;
    size_t          i, k, len, pos;
    sg_route_t      rt;
    unsigned char  *buf;

    for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        len = strlen(seeds[i].target);
        pass = 1;
        allowed_n = 0;

        for (k = 0; k <= len; k++) {
            buf = malloc(k ? k : 1);
            memcpy(buf, seeds[i].target, k);

            sg_route_match(&rt, (const unsigned char *) seeds[i].method,
                           strlen(seeds[i].method), buf, k);

            forwarded = (rt.err.status == 0);
            allowed_n += forwarded;

            if (forwarded != is_canonical(seeds[i].method, strlen(seeds[i].method), buf, k)) {
                diag("#   prefix %zu: status %d\n", k, rt.err.status);
                pass = 0;
            }

            free(buf);
        }

        ok(pass && allowed_n > 0, "%s: prefixes of %s (%d forwarded)",
           seeds[i].method, seeds[i].target, allowed_n);
        printf("%s", diag_buf);
        diag_buf[0] = '\0';

        pass = 1;
        allowed_n = 0;
        buf = malloc(len);

        for (pos = 0; pos < len; pos++) {
            for (c = 0; c < 256; c++) {
                memcpy(buf, seeds[i].target, len);
                buf[pos] = (unsigned char) c;

                sg_route_match(&rt, (const unsigned char *) seeds[i].method,
                               strlen(seeds[i].method), buf, len);

                forwarded = (rt.err.status == 0);
                allowed_n += forwarded;

                if (forwarded != is_canonical(seeds[i].method, strlen(seeds[i].method), buf, len)) {
                    diag("#   byte %zu as 0x%02x: status %d\n", pos, c,
                           rt.err.status);
                    pass = 0;
                }
            }
        }

        ok(pass && allowed_n > 0, "%s: one-byte changes of %s (%d forwarded)",
           seeds[i].method, seeds[i].target, allowed_n);
        printf("%s", diag_buf);
        diag_buf[0] = '\0';
        free(buf);
    }
}


int
main(void)
{
    size_t  i;

    for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        check_case(&allowed[i]);
    }

    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        check_case(&refused[i]);
    }

    test_bodies();
    test_op_names();
    test_null_inputs();
    test_reuse();
    test_mutations();

    return done_testing();
}
