/*
 * sg_body_rules(): which rules a refused body broke.  Each body is fed
 * whole and one byte at a time; both must give the same verdict and the
 * same rules, and a valid body none.
 */

#include <stdlib.h>

#include "tap.h"
#include "../../ngx_sendgrid_integrations_module/sg_body.h"


#define POST    SG_BODY_CREATE
#define PATCH   SG_BODY_UPDATE
#define STRICT  SG_BODY_STRICT

#define VALID_CREATE                                                          \
    "{\"destination\":\"Segment\",\"filters\":{\"email_events\":"            \
    "[\"open\"]},\"properties\":{\"write_key\":\"a123456\","                 \
    "\"destination_region\":\"US\"}}"


/* the rules of body fed in pieces of piece bytes (0: whole); -1 on NOMEM */
static long
rules_of(sg_body_schema_t schema, unsigned flags, const char *body,
    size_t piece, int *verdict)
{
    int         rc;
    size_t      len, off, n;
    unsigned    rules;
    sg_body_t  *v;

    v = sg_body_create(schema, flags);
    if (v == NULL) {
        return -1;
    }

    len = strlen(body);
    rc = SG_BODY_OK;

    for (off = 0; off < len && rc == SG_BODY_OK; off += n) {
        n = (piece == 0 || len - off < piece) ? len - off : piece;
        rc = sg_body_feed(v, (const unsigned char *) body + off, n);
    }

    if (rc == SG_BODY_OK) {
        rc = sg_body_finish(v);
    }

    rules = sg_body_rules(v);
    sg_body_destroy(v);

    *verdict = rc;

    return (rc == SG_BODY_NOMEM) ? -1 : (long) rules;
}


static void
check(const char *name, sg_body_schema_t schema, unsigned flags,
    const char *body, unsigned want)
{
    int   whole_rc, bytes_rc;
    long  whole, bytes;

    whole = rules_of(schema, flags, body, 0, &whole_rc);
    bytes = rules_of(schema, flags, body, 1, &bytes_rc);

    is_int(whole, want, "%s: rules", name);
    is_int(bytes, want, "%s: rules, fed byte by byte", name);
    is_int(whole_rc, want ? SG_BODY_INVALID : SG_BODY_OK, "%s: verdict", name);
    is_int(bytes_rc, whole_rc, "%s: verdict, fed byte by byte", name);
}


static void
test_json(void)
{
    check("valid create", POST, 0, VALID_CREATE, 0);
    check("valid update", PATCH, 0, "{}", 0);
    check("empty", POST, 0, "", SG_BODY_RULE_EMPTY);
    check("not JSON", POST, 0, "{\"destination\":", SG_BODY_RULE_SYNTAX);
    check("a scalar", POST, 0, "\"Segment\"", SG_BODY_RULE_SYNTAX);
    check("trailing bytes", POST, 0, VALID_CREATE "x", SG_BODY_RULE_SYNTAX);
    check("bad UTF-8", PATCH, 0, "{\"label\":\"\xc3\x28\"}",
          SG_BODY_RULE_SYNTAX);
    check("duplicate", PATCH, 0, "{\"label\":\"a\",\"label\":\"b\"}",
          SG_BODY_RULE_DUPLICATE);

    /* what was seen of the schema before the JSON failed is not told */
    check("schema failures, then a syntax error", POST, STRICT,
          "{\"destination\":1,\"filters\":[],\"x\":1,\"label\":2,",
          SG_BODY_RULE_SYNTAX);
    check("schema failures, then a duplicate", POST, STRICT,
          "{\"destination\":1,\"x\":1,\"destination\":2}",
          SG_BODY_RULE_DUPLICATE);

    check("top-level array", POST, 0, "[]", SG_BODY_RULE_OBJECT);
}


static void
test_schema(void)
{
    check("everything missing", POST, 0, "{}",
          SG_BODY_RULE_DESTINATION_REQUIRED | SG_BODY_RULE_FILTERS_REQUIRED
          | SG_BODY_RULE_PROPERTIES_REQUIRED);

    check("nested members missing", POST, 0,
          "{\"destination\":\"Segment\",\"filters\":{},\"properties\":{}}",
          SG_BODY_RULE_EVENTS_REQUIRED | SG_BODY_RULE_WRITE_KEY_REQUIRED
          | SG_BODY_RULE_REGION_REQUIRED);

    check("nothing required on PATCH", PATCH, 0,
          "{\"filters\":{},\"properties\":{}}", 0);

    check("wrong values", PATCH, 0,
          "{\"destination\":\"segment\",\"filters\":{\"email_events\":"
          "[\"open\",\"opened\",1]},\"properties\":{\"write_key\":\"short\","
          "\"destination_region\":\"ZZ\"},\"label\":null}",
          SG_BODY_RULE_DESTINATION_VALUE | SG_BODY_RULE_EVENT_VALUE
          | SG_BODY_RULE_WRITE_KEY_LENGTH | SG_BODY_RULE_REGION_VALUE
          | SG_BODY_RULE_LABEL_TYPE);

    check("wrong types", PATCH, 0,
          "{\"filters\":[],\"properties\":\"x\"}",
          SG_BODY_RULE_FILTERS_TYPE | SG_BODY_RULE_PROPERTIES_TYPE);

    check("wrong nested types", PATCH, 0,
          "{\"filters\":{\"email_events\":{}},"
          "\"properties\":{\"write_key\":123456}}",
          SG_BODY_RULE_EVENTS_TYPE | SG_BODY_RULE_WRITE_KEY_TYPE);

    check("unknown members pass without strict", PATCH, 0,
          "{\"x\":1,\"filters\":{\"y\":2}}", 0);

    check("unknown members with strict", PATCH, STRICT,
          "{\"x\":1,\"filters\":{\"y\":2}}", SG_BODY_RULE_UNKNOWN_MEMBER);

    check("unknown and known failures", PATCH, STRICT,
          "{\"x\":1,\"label\":[]}",
          SG_BODY_RULE_UNKNOWN_MEMBER | SG_BODY_RULE_LABEL_TYPE);
}


/* failures past the ones the message lists still name their rule */
static void
test_unlisted(void)
{
    char    *body, *p;
    size_t   i;

    body = malloc(64 + 30 * 8);
    if (body == NULL) {
        ok(0, "out of memory");
        return;
    }

    p = body;
    p += sprintf(p, "{\"filters\":{\"email_events\":[");

    for (i = 0; i < 30; i++) {
        p += sprintf(p, "%s\"x\"", i ? "," : "");
    }

    sprintf(p, "]},\"label\":1}");

    check("30 bad events, then a bad label", PATCH, 0, body,
          SG_BODY_RULE_EVENT_VALUE | SG_BODY_RULE_LABEL_TYPE);

    free(body);
}


int
main(void)
{
    if (sg_body_init() != 0) {
        printf("Bail out! no random bytes for the validator's hash key\n");
        return 1;
    }

    test_json();
    test_schema();
    test_unlisted();

    return done_testing();
}
