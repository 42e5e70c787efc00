/*
 * sg_body: the request body rules.  Every case goes through the jansson
 * reference and through the single-pass validator (whole, byte by byte,
 * and split in two at every offset for small bodies): all must give the
 * expected verdict and message.
 */

#include <stdint.h>
#include <stdlib.h>

#include "tap.h"
#include "../../ngx_sendgrid_integrations_module/sg_body.h"

#if (defined __SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif


#define POST    SG_BODY_CREATE
#define PATCH   SG_BODY_UPDATE
#define STRICT  SG_BODY_STRICT

#define VALID   NULL

/* a string literal with its length, NUL bytes included */
#define B(s)    s, sizeof(s) - 1

#define SG_NOMEM_TEXT  "(out of memory)"


static char  want_buf[512];


/* "request body is not valid JSON at byte N" */
static const char *
not_json(size_t pos)
{
    snprintf(want_buf, sizeof(want_buf),
             "request body is not valid JSON at byte %zu", pos);
    return want_buf;
}


/* ... where N is the length of prefix, the bytes read when it fails */
static const char *
not_json_after(const char *prefix)
{
    return not_json(strlen(prefix));
}


static const char *
too_many_names(size_t pos)
{
    snprintf(want_buf, sizeof(want_buf), "request body exceeds the limit of "
             "1024 member names open at once at byte %zu", pos);
    return want_buf;
}


static const char *
too_many_name_bytes(size_t pos)
{
    snprintf(want_buf, sizeof(want_buf), "request body exceeds the limit of "
             "16384 bytes of member names open at once at byte %zu", pos);
    return want_buf;
}


static const char *
duplicate(const char *name, size_t pos)
{
    snprintf(want_buf, sizeof(want_buf),
             "request body has duplicate member \"%s\" at byte %zu",
             name, pos);
    return want_buf;
}


/*
 * The validator fed in pieces of piece bytes (first piece: first bytes);
 * returns the message (malloc()ed) or NULL when the body is valid.
 */
static char *
stream(sg_body_schema_t schema, unsigned flags, const char *body,
    size_t len, size_t first, size_t piece)
{
    int          rc;
    char        *out;
    size_t       off, n, mlen;
    sg_body_t   *v;
    const char  *m;

    v = sg_body_create(schema, flags);
    if (v == NULL) {
        return strdup(SG_NOMEM_TEXT);
    }

    rc = SG_BODY_OK;
    off = 0;
    n = first;

    while (off < len && rc == SG_BODY_OK) {
        if (n > len - off) {
            n = len - off;
        }

        rc = sg_body_feed(v, (const unsigned char *) body + off, n);
        off += n;
        n = piece;
    }

    if (rc == SG_BODY_OK) {
        rc = sg_body_finish(v);
    }

    if (rc == SG_BODY_NOMEM) {
        out = strdup(SG_NOMEM_TEXT);

    } else if (rc == SG_BODY_INVALID) {
        m = sg_body_message(v, &mlen);
        out = malloc(mlen + 1);
        memcpy(out, m, mlen);
        out[mlen] = '\0';

        if (strlen(out) != mlen) {
            out[0] = '!';
        }

    } else {
        out = NULL;
    }

    sg_body_destroy(v);

    return out;
}


static int
same(const char *a, const char *b)
{
    return (a == NULL && b == NULL)
           || (a != NULL && b != NULL && strcmp(a, b) == 0);
}


static void
check_body(const char *name, sg_body_schema_t schema, unsigned flags,
    const char *body, size_t len, const char *want)
{
    int     rc, all;
    char   *ref, *got;
    size_t  i;

    rc = sg_body_reference_validate(schema, flags,
                                    (const unsigned char *) body, len, &ref);

    is_int(rc, want ? SG_BODY_INVALID : SG_BODY_OK, "%s: reference verdict",
           name);
    is_str(ref, want, "%s: reference message", name);

    got = stream(schema, flags, body, len, len, len);
    is_str(got, want, "%s: whole", name);
    free(got);

    got = stream(schema, flags, body, len, 1, 1);
    is_str(got, want, "%s: byte by byte", name);
    free(got);

    if (len <= 300) {
        all = 1;

        for (i = 1; i < len && all; i++) {
            got = stream(schema, flags, body, len, i, len);
            all = same(got, ref);

            if (!all) {
                printf("# split at %zu: %s\n", i, got ? got : "(valid)");
            }

            free(got);
        }

        ok(all, "%s: split in two anywhere", name);

    } else {
        got = stream(schema, flags, body, len, 7, 4093);
        is_str(got, want, "%s: uneven pieces", name);
        free(got);
    }

    free(ref);
}


/* a body with NUL bytes: a string literal */
#define check_nul(name, schema, flags, body, want)                            \
    check_body(name, schema, flags, B(body), want)


/* the common case: a NUL-terminated body */
static void
check(const char *name, sg_body_schema_t schema, unsigned flags,
    const char *body, const char *want)
{
    check_body(name, schema, flags, body, strlen(body), want);
}


/*
 * A POST body from its parts; NULL leaves a member out, extra (members
 * with their leading comma) goes last.
 */
static char *
post(const char *dest, const char *events, const char *key,
    const char *region, const char *extra)
{
    static char  buf[4096];
    char        *p;

    p = buf;
    p += sprintf(p, "{");

    if (dest) {
        p += sprintf(p, "\"destination\":%s,", dest);
    }

    p += sprintf(p, "\"filters\":{");

    if (events) {
        p += sprintf(p, "\"email_events\":%s", events);
    }

    p += sprintf(p, "},\"properties\":{");

    if (key) {
        p += sprintf(p, "\"write_key\":%s%s", key, region ? "," : "");
    }

    if (region) {
        p += sprintf(p, "\"destination_region\":%s", region);
    }

    sprintf(p, "}%s}", extra ? extra : "");

    return buf;
}


#define GOOD_DEST    "\"Segment\""
#define GOOD_EVENTS  "[\"open\"]"
#define GOOD_KEY     "\"abcdef\""
#define GOOD_REGION  "\"EU\""


static void
test_valid(void)
{
    check("minimal POST", POST, 0,
          post(GOOD_DEST, GOOD_EVENTS, GOOD_KEY, GOOD_REGION, NULL), VALID);

    check("full POST, strict", POST, STRICT,
          " {\n\t\"destination\" : \"Segment\" ,\r\n \"filters\":{"
          "\"email_events\":[]},\"properties\":{\"destination_region\":"
          "\"US\",\"write_key\":\"0123456789\"},\"label\":\"My \\\"one\\\"\"}"
          " \n", VALID);

    check("PATCH {}", PATCH, 0, "{}", VALID);
    check("PATCH {} strict", PATCH, STRICT, "{ }", VALID);
    check("PATCH label only", PATCH, 0, "{\"label\":\"x\"}", VALID);
    check("PATCH empty filters and properties", PATCH, STRICT,
          "{\"filters\":{},\"properties\":{}}", VALID);
    check("PATCH region only", PATCH, 0,
          "{\"properties\":{\"destination_region\":\"US\"}}", VALID);

    check("unknown members pass unless strict", POST, 0,
          post(GOOD_DEST, GOOD_EVENTS, GOOD_KEY, GOOD_REGION,
               ",\"x\":{\"y\":[1,2,{\"z\":null}]},\"id\":\"1\""), VALID);

    check("escaped Segment", POST, 0,
          post("\"S\\u0065gment\"", GOOD_EVENTS, GOOD_KEY, "\"\\u0045U\"",
               NULL), VALID);

    check("same name in different objects", PATCH, 0,
          "{\"a\":{\"a\":{\"a\":1}},\"b\":[{\"a\":1},{\"a\":2}],"
          "\"c\":{\"a\":1,\"b\":2}}", VALID);

    check("every JSON value kind", PATCH, 0,
          "{\"x\":[0,-0,1,-1,0.5,-0.5e-3,1E+2,1e2,true,false,null,\"\","
          "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\",{},[],"
          "[[]],{\"\":{}}]}", VALID);

    check("UTF-8 of every length", PATCH, 0,
          "{\"label\":\"\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf "
          "\xee\x80\x80 \xef\xbf\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf\"}",
          VALID);

    check("UTF-8 member names", PATCH, 0,
          "{\"caf\xc3\xa9\":1,\"cafe\xcc\x81\":2,\"\xf0\x9f\x98\x80\":3}",
          VALID);
}


static void
test_empty_and_top(void)
{
    check_body("empty body", POST, 0, "", 0, "request body is empty");
    check_body("empty body, PATCH", PATCH, STRICT, "", 0,
               "request body is empty");

    check("whitespace only", POST, 0, " \t\r\n", not_json(4));
    check("top-level array", POST, 0, "[]",
          "request body must be a JSON object");
    check("top-level array of objects", PATCH, STRICT,
          "[{\"destination\":1,\"x\":2}]",
          "request body must be a JSON object");
    check("top-level string", POST, 0, "\"abc\"", not_json(5));
    check("top-level number", POST, 0, "123 ", not_json(3));
    check("top-level null", POST, 0, "null", not_json(4));
    check("top-level true, then more", POST, 0, "true{}", not_json(4));
}


static void
test_required(void)
{
    check("destination missing", POST, 0,
          post(NULL, GOOD_EVENTS, GOOD_KEY, GOOD_REGION, NULL),
          "destination is required");
    check("filters missing", POST, 0,
          "{\"destination\":\"Segment\",\"properties\":{\"write_key\":"
          "\"abcdef\",\"destination_region\":\"EU\"}}",
          "filters is required");
    check("email_events missing", POST, 0,
          post(GOOD_DEST, NULL, GOOD_KEY, GOOD_REGION, NULL),
          "filters.email_events is required");
    check("properties missing", POST, 0,
          "{\"destination\":\"Segment\",\"filters\":{\"email_events\":[]}}",
          "properties is required");
    check("write_key missing", POST, 0,
          post(GOOD_DEST, GOOD_EVENTS, NULL, GOOD_REGION, NULL),
          "properties.write_key is required");
    check("destination_region missing", POST, 0,
          post(GOOD_DEST, GOOD_EVENTS, GOOD_KEY, NULL, NULL),
          "properties.destination_region is required");
    check("everything missing", POST, 0, "{}",
          "destination is required, filters is required, "
          "properties is required");
    check("everything inside missing", POST, 0,
          post(NULL, NULL, NULL, NULL, NULL),
          "destination is required, filters.email_events is required, "
          "properties.write_key is required, "
          "properties.destination_region is required");
    check("PATCH requires nothing inside", PATCH, 0,
          post(NULL, NULL, NULL, NULL, NULL), VALID);
    check("required names are case-sensitive", POST, 0,
          "{\"Destination\":\"Segment\",\"filters\":{\"Email_events\":[]},"
          "\"properties\":{\"write_key\":\"abcdef\","
          "\"destination_Region\":\"EU\"}}",
          "destination is required, filters.email_events is required, "
          "properties.destination_region is required, "
          "Destination differs from destination only in letter case, "
          "filters.Email_events differs from filters.email_events only in "
          "letter case, "
          "properties.destination_Region differs from "
          "properties.destination_region only in letter case");
}


static void
test_types(void)
{
    static const char  *wrong[] = {
        "null", "1", "-2.5e3", "true", "false", "[]", "{}", "[\"Segment\"]",
        "{\"a\":\"Segment\"}"
    };

    char    name[64], body[512];
    size_t  i;

    for (i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        snprintf(name, sizeof(name), "destination %s", wrong[i]);
        check(name, POST, 0,
              post(wrong[i], GOOD_EVENTS, GOOD_KEY, GOOD_REGION, NULL),
              "destination must be Segment");

        snprintf(name, sizeof(name), "email_events %s", wrong[i]);
        check(name, POST, 0,
              post(GOOD_DEST, i == 5 || i == 7 ? "{}" : wrong[i], GOOD_KEY,
                   GOOD_REGION, NULL),
              "filters.email_events must be an array");

        if (i != 6 && i != 8) {
            snprintf(name, sizeof(name), "filters %s", wrong[i]);
            snprintf(body, sizeof(body), "{\"destination\":\"Segment\","
                     "\"filters\":%s,\"properties\":{\"write_key\":"
                     "\"abcdef\",\"destination_region\":\"US\"}}", wrong[i]);
            check(name, POST, 0, body, "filters must be an object");

            snprintf(name, sizeof(name), "properties %s", wrong[i]);
            snprintf(body, sizeof(body), "{\"destination\":\"Segment\","
                     "\"filters\":{\"email_events\":[]},\"properties\":%s}",
                     wrong[i]);
            check(name, POST, 0, body, "properties must be an object");
        }

        snprintf(name, sizeof(name), "write_key %s", wrong[i]);
        check(name, POST, 0,
              post(GOOD_DEST, GOOD_EVENTS, wrong[i], GOOD_REGION, NULL),
              "properties.write_key must be a string");

        snprintf(name, sizeof(name), "destination_region %s", wrong[i]);
        check(name, POST, 0,
              post(GOOD_DEST, GOOD_EVENTS, GOOD_KEY, wrong[i], NULL),
              "properties.destination_region must be EU or US");

        snprintf(name, sizeof(name), "label %s", wrong[i]);
        snprintf(body, sizeof(body), "{\"label\":%s}", wrong[i]);
        check(name, PATCH, 0, body, "label must be a string");
    }

    check("destination wrong strings", PATCH, 0,
          "{\"destination\":\"segment\"}", "destination must be Segment");
    check("destination with a space", PATCH, 0,
          "{\"destination\":\"Segment \"}", "destination must be Segment");
    check("destination empty", PATCH, 0, "{\"destination\":\"\"}",
          "destination must be Segment");
    check("destination long", PATCH, 0,
          "{\"destination\":\"SegmentSegmentSegmentSegmentSegmentSegment\"}",
          "destination must be Segment");
    check("destination with a NUL", PATCH, 0,
          "{\"destination\":\"Segment\\u0000\"}",
          not_json_after("{\"destination\":\"Segment\\u0000\""));

    check("region lower case", PATCH, 0,
          "{\"properties\":{\"destination_region\":\"eu\"}}",
          "properties.destination_region must be EU or US");
    check("region other", PATCH, 0,
          "{\"properties\":{\"destination_region\":\"global\"}}",
          "properties.destination_region must be EU or US");
    check("region empty", PATCH, 0,
          "{\"properties\":{\"destination_region\":\"\"}}",
          "properties.destination_region must be EU or US");
    check("region escaped", PATCH, 0,
          "{\"properties\":{\"destination_region\":\"\\u0055S\"}}", VALID);

    check("label empty string", PATCH, 0, "{\"label\":\"\"}", VALID);
    check("all wrong, in order", POST, 0,
          "{\"label\":[],\"properties\":{\"destination_region\":1,"
          "\"write_key\":2},\"filters\":{\"email_events\":{}},"
          "\"destination\":null}",
          "destination must be Segment, "
          "filters.email_events must be an array, "
          "properties.write_key must be a string, "
          "properties.destination_region must be EU or US, "
          "label must be a string");
    check("wrong containers hide what is inside", POST, 0,
          "{\"filters\":[{\"email_events\":1}],\"properties\":"
          "[{\"write_key\":1}]}",
          "destination is required, filters must be an object, "
          "properties must be an object");
}


static void
test_events(void)
{
    static const char  *events[] = {
        "drop", "processed", "deferred", "group_unsubscribe", "bounce",
        "delivered", "click", "unsubscribe", "open", "group_resubscribe",
        "spamreport", "machine_opened"
    };

    char    name[64], list[64];
    size_t  i;

    for (i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        snprintf(name, sizeof(name), "event %s", events[i]);
        snprintf(list, sizeof(list), "[\"%s\"]", events[i]);
        check(name, POST, 0,
              post(GOOD_DEST, list, GOOD_KEY, GOOD_REGION, NULL), VALID);
    }

    check("all events, repeated", POST, STRICT,
          post(GOOD_DEST, "[\"drop\",\"processed\",\"deferred\","
               "\"group_unsubscribe\",\"bounce\",\"delivered\",\"click\","
               "\"unsubscribe\",\"open\",\"group_resubscribe\","
               "\"spamreport\",\"machine_opened\",\"open\",\"open\"]",
               GOOD_KEY, GOOD_REGION, NULL), VALID);

    check("event escaped", POST, 0,
          post(GOOD_DEST, "[\"dr\\u006fp\",\"\\u006fpen\"]", GOOD_KEY,
               GOOD_REGION, NULL), VALID);

    check("events with white space around the commas", PATCH, 0,
          "{\"filters\":{\"email_events\":[ \"open\" , \"click\",\n\t\"drop\""
          ",\r\n\"bounce\" ]}}", VALID);

    check("a run of events broken by a wrong one", PATCH, 0,
          "{\"filters\":{\"email_events\":[\"open\",\"click\",\"opened\","
          "\"open\",\"drop\\u0020\",\"drop\",\"dro\"]}}",
          "filters.email_events[2] is not a valid email event, "
          "filters.email_events[4] is not a valid email event, "
          "filters.email_events[6] is not a valid email event");

    check("events without a comma", PATCH, 0,
          "{\"filters\":{\"email_events\":[\"open\",\"click\" \"drop\"]}}",
          not_json_after("{\"filters\":{\"email_events\":[\"open\","
                         "\"click\" \"drop\""));

    check("an event after a comma that ends the array", PATCH, 0,
          "{\"filters\":{\"email_events\":[\"open\",\"click\",]}}",
          not_json_after("{\"filters\":{\"email_events\":[\"open\","
                         "\"click\",]"));

    check("an event as a name inside email_events", PATCH, 0,
          "{\"filters\":{\"email_events\":[{\"open\":\"open\"},\"open\"]}}",
          "filters.email_events[0] is not a valid email event");

    check("\\u0000 in an event", PATCH, 0,
          "{\"filters\":{\"email_events\":[\"open\",\"open\\u0000\"]}}",
          not_json_after("{\"filters\":{\"email_events\":[\"open\","
                         "\"open\\u0000\""));

    check("wrong events listed in order", POST, 0,
          post(GOOD_DEST, "[\"open\",\"Open\",\"opened\",\"\",\"drop \","
               "null,1,true,[\"open\"],{\"open\":1},\"machine_opened\","
               "\"machine-opened\"]", GOOD_KEY, GOOD_REGION, NULL),
          "filters.email_events[1] is not a valid email event, "
          "filters.email_events[2] is not a valid email event, "
          "filters.email_events[3] is not a valid email event, "
          "filters.email_events[4] is not a valid email event, "
          "filters.email_events[5] is not a valid email event, "
          "filters.email_events[6] is not a valid email event, "
          "filters.email_events[7] is not a valid email event, "
          "filters.email_events[8] is not a valid email event, "
          "filters.email_events[9] is not a valid email event, "
          "filters.email_events[11] is not a valid email event");

    check("events after other failures", POST, 0,
          "{\"destination\":1,\"filters\":{\"email_events\":[\"x\"]}}",
          "destination must be Segment, "
          "filters.email_events[0] is not a valid email event, "
          "properties is required");
}


/* a JSON string of n copies of the UTF-8 (or escaped) text unit */
static char *
repeat(const char *unit, size_t n)
{
    char    *s, *p;
    size_t   i, len;

    len = strlen(unit);
    s = malloc(n * len + 3);
    p = s;
    *p++ = '"';

    for (i = 0; i < n; i++) {
        memcpy(p, unit, len);
        p += len;
    }

    *p++ = '"';
    *p = '\0';

    return s;
}


static void
test_write_key(void)
{
    static const struct {
        const char  *unit;
        size_t       n;
        int          valid;
    } cases[] = {
        { "a", 5, 0 },
        { "a", 6, 1 },
        { "a", 51, 1 },
        { "a", 52, 0 },
        { "a", 0, 0 },
        { "\xc3\xa9", 5, 0 },                   /* 10 bytes */
        { "\xc3\xa9", 6, 1 },                   /* 12 bytes */
        { "\xe2\x82\xac", 51, 1 },
        { "\xf0\x9f\x98\x80", 51, 1 },          /* 204 bytes */
        { "\xf0\x9f\x98\x80", 52, 0 },
        { "a\xf0\x9f\x98\x80", 25, 1 },        /* 50, across words */
        { "a\xf0\x9f\x98\x80", 26, 0 },        /* 52 */
        { "ab\xc3\xa9\xe2\x82\xac", 12, 1 },   /* 48 in 84 bytes */
        { "ab\xc3\xa9\xe2\x82\xac", 13, 0 },   /* 52 in 91 bytes */
        { "\\u00e9", 6, 1 },
        { "\\u00e9", 5, 0 },
        { "\\u20ac", 6, 1 },                    /* 3 bytes decoded */
        { "\\u20AC", 52, 0 },
        { "\\ud83d\\ude00", 51, 1 },            /* pairs count as one */
        { "\\ud83d\\ude00", 52, 0 },
        { "\\ud83d\\ude00", 3, 0 },
        { "\\\"", 6, 1 },
        { "\\n", 51, 1 },
        { "\\/", 52, 0 },
    };

    char                 *key, *p, name[64];
    size_t                i, n, len, off, piece;
    sg_body_t            *v;
    const unsigned char  *wk;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        key = repeat(cases[i].unit, cases[i].n);
        snprintf(name, sizeof(name), "write_key %zu x %s", cases[i].n,
                 cases[i].unit);
        check(name, POST, 0,
              post(GOOD_DEST, GOOD_EVENTS, key, GOOD_REGION, NULL),
              cases[i].valid ? VALID
                  : "properties.write_key must be between 6 and 51 "
                    "characters");
        free(key);
    }

    /* the decoded value, for redaction */

    v = sg_body_create(POST, 0);
    sg_body_feed(v, (const unsigned char *)
                 B("{\"properties\":{\"write_key\":\"ab\\u00e9\\ud83d\\ude00"
                   "\\n\\\"x\xe2\x82\xac\"}}"));
    is_int(sg_body_finish(v), SG_BODY_INVALID, "write_key decoded: verdict");
    wk = sg_body_write_key(v, &len);
    ok(wk != NULL && len == 14
       && memcmp(wk, "ab\xc3\xa9\xf0\x9f\x98\x80\n\"x\xe2\x82\xac", 14) == 0,
       "write_key decoded: value");
    sg_body_destroy(v);

    v = sg_body_create(PATCH, 0);
    sg_body_feed(v, (const unsigned char *)
                 B("{\"properties\":{\"write_key\":\"abc\"},\"x\":1 2}"));
    is_int(sg_body_finish(v), SG_BODY_INVALID,
           "write_key of an invalid body: verdict");
    wk = sg_body_write_key(v, &len);
    ok(wk != NULL && len == 3 && memcmp(wk, "abc", 3) == 0,
       "write_key of an invalid body: kept");
    sg_body_destroy(v);

    v = sg_body_create(PATCH, 0);
    sg_body_feed(v, (const unsigned char *)
                 B("{\"properties\":{\"write_key\":7},"
                   "\"x\":{\"write_key\":\"abcdef\"}}"));
    sg_body_finish(v);
    ok(sg_body_write_key(v, &len) == NULL, "write_key not a string: NULL");
    sg_body_destroy(v);

    v = sg_body_create(PATCH, 0);
    sg_body_feed(v, (const unsigned char *)
                 B("{\"x\":{\"properties\":{\"write_key\":\"abcdef\"}}}"));
    is_int(sg_body_finish(v), SG_BODY_OK, "nested write_key: valid");
    ok(sg_body_write_key(v, &len) == NULL, "nested write_key: not ours");
    sg_body_destroy(v);

    v = sg_body_create(PATCH, 0);
    sg_body_feed(v, (const unsigned char *)
                 B("{\"properties\":{\"write_key\":\"\"}}"));
    is_int(sg_body_finish(v), SG_BODY_INVALID, "empty write_key: verdict");
    wk = sg_body_write_key(v, &len);
    ok(wk != NULL && len == 0, "empty write_key: an empty value");
    sg_body_destroy(v);

    /* a long one: its first SG_BODY_WRITE_KEY_KEPT bytes, whole characters */
    for (i = 0; i < 4; i++) {
        key = malloc(3000);
        p = key + sprintf(key, "{\"properties\":{\"write_key\":\"");
        memset(p, 'k', 1023 - i % 2);
        p += 1023 - i % 2;
        p += sprintf(p, i < 2 ? "\xe2\x82\xac" : "\\u20ac");
        memset(p, 'k', 900);
        strcpy(p + 900, "\"}}");

        /* whole, or in pieces of 7 bytes */
        v = sg_body_create(PATCH, 0);
        n = strlen(key);

        for (off = 0; off < n; off += piece) {
            piece = (i % 2 && n - off > 7) ? 7 : n - off;
            sg_body_feed(v, (const unsigned char *) key + off, piece);
        }

        is_int(sg_body_finish(v), SG_BODY_INVALID, "long write_key %zu: "
               "verdict", i);
        wk = sg_body_write_key(v, &len);
        is_int(len, 1023 - i % 2, "long write_key %zu: cut before the "
               "character across byte %d", i, SG_BODY_WRITE_KEY_KEPT);
        ok(wk != NULL && memchr(wk, 0xe2, len) == NULL,
           "long write_key %zu: its first bytes", i);
        sg_body_destroy(v);
        free(key);
    }
}


static void
test_strict(void)
{
    char    name[200], body[400], want[400];
    size_t  i;

    check("strict: unknown at every level, in document order", POST, STRICT,
          "{\"x\":1,\"filters\":{\"email_events\":[],\"y\":{\"deep\":1}},"
          "\"z\":null,\"destination\":\"Segment\",\"properties\":{"
          "\"write_key\":\"abcdef\",\"q\":[],\"destination_region\":\"EU\"},"
          "\"label\":\"l\"}",
          "x is not allowed, filters.y is not allowed, z is not allowed, "
          "properties.q is not allowed");

    check("not strict: the same passes", POST, 0,
          "{\"x\":1,\"filters\":{\"email_events\":[],\"y\":{\"deep\":1}},"
          "\"z\":null,\"destination\":\"Segment\",\"properties\":{"
          "\"write_key\":\"abcdef\",\"q\":[],\"destination_region\":\"EU\"},"
          "\"label\":\"l\"}", VALID);

    check("strict: after the schema failures", POST, STRICT,
          "{\"a\":1,\"destination\":\"x\",\"b\":2}",
          "destination must be Segment, filters is required, "
          "properties is required, a is not allowed, b is not allowed");

    check("strict: not inside non-objects", PATCH, STRICT,
          "{\"filters\":[{\"x\":1}],\"properties\":\"p\",\"y\":{\"z\":1}}",
          "filters must be an object, properties must be an object, "
          "y is not allowed");

    check("strict: names decoded, odd bytes kept", PATCH, STRICT,
          "{\"\\u0061\\n\\\"b.c[0]\":1,\"\":2,\"caf\xc3\xa9\":3}",
          "a\n\"b.c[0] is not allowed,  is not allowed, "
          "caf\xc3\xa9 is not allowed");

    check("strict: names of known members in the wrong place", PATCH,
          STRICT,
          "{\"email_events\":[],\"write_key\":\"abcdef\","
          "\"filters\":{\"label\":\"x\",\"destination\":\"Segment\"},"
          "\"properties\":{\"filters\":{}}}",
          "email_events is not allowed, write_key is not allowed, "
          "filters.label is not allowed, filters.destination is not allowed, "
          "properties.filters is not allowed");

    /* names are cut after SG_BODY_NAME_MAX bytes */

    for (i = 63; i <= 66; i++) {
        snprintf(name, sizeof(name), "strict: name of %zu bytes", i);
        memset(body, 0, sizeof(body));
        body[0] = '{';
        body[1] = '"';
        memset(body + 2, 'n', i);
        strcpy(body + 2 + i, "\":1}");

        memset(want, 0, sizeof(want));
        memset(want, 'n', i > 64 ? 64 : i);
        strcat(want, i > 64 ? "... is not allowed" : " is not allowed");

        check(name, PATCH, STRICT, body, want);
    }

    /* a character across the cut is left out whole */

    memset(body, 0, sizeof(body));
    strcpy(body, "{\"filters\":{\"");
    memset(body + strlen(body), 'n', 62);
    strcat(body, "\xe2\x82\xac\xe2\x82\xac\":1}}");

    memset(want, 0, sizeof(want));
    strcpy(want, "filters.");
    memset(want + strlen(want), 'n', 62);
    strcat(want, "... is not allowed");

    check("strict: cut before a character", PATCH, STRICT, body, want);

    memset(body, 0, sizeof(body));
    strcpy(body, "{\"");
    memset(body + 2, 'n', 60);
    strcat(body, "\\ud83d\\ude00\\ud83d\\ude00\":1}");

    memset(want, 0, sizeof(want));
    memset(want, 'n', 60);
    strcat(want, "\xf0\x9f\x98\x80... is not allowed");

    check("strict: cut after an escaped pair", PATCH, STRICT, body, want);
}


/* appends one failure to a message, after ", " unless it is the first */
static void
part(char *msg, const char *text)
{
    if (msg[0] != '\0') {
        strcat(msg, ", ");
    }

    strcat(msg, text);
}


/* the failures of email_events elements first to last - 1 */
static void
bad_events(char *msg, size_t first, size_t last)
{
    char    text[80];
    size_t  i;

    for (i = first; i < last; i++) {
        snprintf(text, sizeof(text),
                 "filters.email_events[%zu] is not a valid email event", i);
        part(msg, text);
    }
}


/*
 * A body: before, then n items separated by commas, then after;
 * malloc()ed.  An item is printed from the format, which may use its
 * index (%zu).
 */
static char *
items(const char *before, const char *format, size_t n, const char *after)
{
    char    *body, *p;
    size_t   i;

    body = malloc(strlen(before) + n * (strlen(format) + 24) + strlen(after)
                  + 1);
    p = body + sprintf(body, "%s", before);

    for (i = 0; i < n; i++) {
        p += sprintf(p, i ? "," : "");
        p += sprintf(p, format, i);
    }

    strcpy(p, after);

    return body;
}


static void
test_listed(void)
{
    char    *body, *got, want[4096];
    size_t   len;

    ok(SG_BODY_LISTED_MAX == 20, "at most 20 failures listed");

    body = items("{\"filters\":{\"email_events\":[", "1", 20, "]}}");
    want[0] = '\0';
    bad_events(want, 0, 20);
    check("20 failures: all listed", PATCH, 0, body, want);
    free(body);

    body = items("{\"filters\":{\"email_events\":[", "1", 21, "]}}");
    want[0] = '\0';
    bad_events(want, 0, 20);
    part(want, "and 1 more failure");
    check("21 failures: one counted", PATCH, 0, body, want);
    free(body);

    body = items("{\"filters\":{\"email_events\":[", "1", 22, "]}}");
    want[0] = '\0';
    bad_events(want, 0, 20);
    part(want, "and 2 more failures");
    check("22 failures: two counted", PATCH, 0, body, want);
    free(body);

    /* about 1 MB: the message stays short */
    body = items("{\"filters\":{\"email_events\":[", "1", 500000,
                 "]}}");
    want[0] = '\0';
    bad_events(want, 0, 20);
    part(want, "and 499980 more failures");
    check("500000 failures", PATCH, 0, body, want);
    got = stream(PATCH, 0, body, strlen(body), strlen(body), 0);
    len = got ? strlen(got) : 0;
    ok(len > 0 && len < 1200, "500000 failures: a message of %zu bytes",
       len);
    free(got);
    free(body);

    body = items("{\"filters\":{\"email_events\":[", "1", 19,
                 "]},\"z\":1}");
    want[0] = '\0';
    bad_events(want, 0, 19);
    part(want, "z is not allowed");
    check("strict: 19 events and an unknown member: all listed", PATCH,
          STRICT, body, want);
    free(body);

    body = items("{\"filters\":{\"email_events\":[", "1", 19,
                 "]},\"y\":1,\"z\":1}");
    want[0] = '\0';
    bad_events(want, 0, 19);
    part(want, "y is not allowed");
    part(want, "and 1 more failure");
    check("strict: 19 events and two unknown members", PATCH, STRICT, body,
          want);
    free(body);

    body = items("{", "\"m%zu\":1", 25, "}");
    want[0] = '\0';
    part(want, "m0 is not allowed, m1 is not allowed, m2 is not allowed, "
         "m3 is not allowed, m4 is not allowed, m5 is not allowed, "
         "m6 is not allowed, m7 is not allowed, m8 is not allowed, "
         "m9 is not allowed, m10 is not allowed, m11 is not allowed, "
         "m12 is not allowed, m13 is not allowed, m14 is not allowed, "
         "m15 is not allowed, m16 is not allowed, m17 is not allowed, "
         "m18 is not allowed, m19 is not allowed, and 5 more failures");
    check("strict: 25 unknown members", PATCH, STRICT, body, want);
    free(body);

    body = items("{\"filters\":{", "\"m%zu\":1", 1000, "}}");
    want[0] = '\0';
    part(want, "filters.m0 is not allowed, filters.m1 is not allowed, "
         "filters.m2 is not allowed, filters.m3 is not allowed, "
         "filters.m4 is not allowed, filters.m5 is not allowed, "
         "filters.m6 is not allowed, filters.m7 is not allowed, "
         "filters.m8 is not allowed, filters.m9 is not allowed, "
         "filters.m10 is not allowed, filters.m11 is not allowed, "
         "filters.m12 is not allowed, filters.m13 is not allowed, "
         "filters.m14 is not allowed, filters.m15 is not allowed, "
         "filters.m16 is not allowed, filters.m17 is not allowed, "
         "filters.m18 is not allowed, filters.m19 is not allowed, "
         "and 980 more failures");
    check("strict: 1000 unknown members", PATCH, STRICT, body, want);
    free(body);

    /* every kind counts towards the same limit, in the usual order */
    body = items("{\"destination\":1,\"a\":1,\"filters\":{"
                 "\"email_events\":[", "1", 18,
                 "],\"b\":2},\"properties\":{\"write_key\":1,\"c\":3},"
                 "\"label\":1,\"d\":4}");
    strcpy(want, "destination must be Segment");
    bad_events(want, 0, 18);
    part(want, "properties.write_key must be a string");
    part(want, "and 6 more failures");
    check("strict: failures of every kind past the limit", POST, STRICT,
          body, want);

    strcpy(want, "destination must be Segment");
    bad_events(want, 0, 18);
    part(want, "properties.write_key must be a string");
    part(want, "and 2 more failures");
    check("the same, not strict", POST, 0, body, want);
    free(body);
}


/*
 * Names that differ from a schema member's only in letter case, as Go's
 * encoding/json folds them: failures with or without strict mode.
 */
static void
test_shadowed(void)
{
    static const struct {
        const char  *name;          /* as written in the body */
        const char  *where;         /* top, filters or properties */
        const char  *shadows;       /* NULL: no failure */
        const char  *shown;         /* the name in the message */
    } cases[] = {
        { "Destination", "", "destination", NULL },
        { "DESTINATION", "", "destination", NULL },
        { "dEsTiNaTiOn", "", "destination", NULL },
        { "FILTERS", "", "filters", NULL },
        { "Properties", "", "properties", NULL },
        { "LABEL", "", "label", NULL },
        { "Label", "", "label", NULL },
        { "EMAIL_EVENTS", "filters", "email_events", NULL },
        { "Email_Events", "filters", "email_events", NULL },
        { "Write_Key", "properties", "write_key", NULL },
        { "WRITE_KEY", "properties", "write_key", NULL },
        { "Destination_Region", "properties", "destination_region", NULL },

        /* U+017F LATIN SMALL LETTER LONG S folds onto s, U+212A KELVIN
         * SIGN onto k: as UTF-8 and as escapes */
        { "de\xc5\xbftination", "", "destination", NULL },
        { "de\\u017ftination", "", "destination", "de\xc5\xbftination" },
        { "DE\\u017FTINATION", "", "destination", "DE\xc5\xbfTINATION" },
        { "filter\xc5\xbf", "", "filters", NULL },
        { "propertie\\u017f", "", "properties", "propertie\xc5\xbf" },
        { "email_event\xc5\xbf", "filters", "email_events", NULL },
        { "write_\xe2\x84\xaa" "ey", "properties", "write_key", NULL },
        { "write_\\u212aey", "properties", "write_key",
          "write_\xe2\x84\xaa" "ey" },
        { "WRITE_\\u212AEY", "properties", "write_key",
          "WRITE_\xe2\x84\xaa" "EY" },
        { "de\\u017ftination_region", "properties", "destination_region",
          "de\xc5\xbftination_region" },
        { "L\\u0061bel", "", "label", "Label" },

        /* not folded onto a schema name */
        { "destination", "", NULL, NULL },
        { "write-key", "properties", NULL, NULL },
        { "writekey", "properties", NULL, NULL },
        { "Write Key", "properties", NULL, NULL },
        { "Destination ", "", NULL, NULL },
        { "Destinatio", "", NULL, NULL },
        { "Destinations", "", NULL, NULL },
        /* dotless i, capital I with a dot and fullwidth D: Unicode's
         * simple folding does not take them to ASCII, nor does Go's */
        { "destinat\\u0131on", "", NULL, "destinat\xc4\xb1on" },
        { "destinat\\u0130on", "", NULL, "destinat\xc4\xb0on" },
        { "\\uff24estination", "", NULL, "\xef\xbc\xa4" "estination" },
        { "de\\u017Ftination", "properties", NULL, "de\xc5\xbftination" },
        { "Email_Events", "", NULL, NULL },
        { "Write_Key", "", NULL, NULL },
        { "Label", "filters", NULL, NULL },
        { "Destination", "properties", NULL, NULL },
        { "\\u212aey", "properties", NULL, "\xe2\x84\xaa" "ey" },
        { "write_\\u212a", "properties", NULL, "write_\xe2\x84\xaa" },
        { "write_\\u212aeyy", "properties", NULL,
          "write_\xe2\x84\xaa" "eyy" },
        { "s", "", NULL, NULL },
        { "\xc5\xbf", "", NULL, NULL },
        { "", "", NULL, NULL },
    };

    char         body[512], want[512], name[160], strict[512];
    char         pfx[16];
    size_t       i;
    const char  *shown;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].where[0] == '\0') {
            snprintf(body, sizeof(body), "{\"%s\":1}", cases[i].name);
            pfx[0] = '\0';

        } else {
            snprintf(body, sizeof(body), "{\"%s\":{\"%s\":1}}",
                     cases[i].where, cases[i].name);
            snprintf(pfx, sizeof(pfx), "%s.", cases[i].where);
        }

        shown = cases[i].shown ? cases[i].shown : cases[i].name;

        if (cases[i].shadows) {
            snprintf(want, sizeof(want), "%s%s differs from %s%s only in "
                     "letter case", pfx, shown, pfx, cases[i].shadows);
            strcpy(strict, want);

        } else {
            snprintf(strict, sizeof(strict), "%s%s is not allowed", pfx,
                     shown);
        }

        if (strcmp(cases[i].name, "destination") == 0) {
            strcpy(strict, "destination must be Segment");
        }

        snprintf(name, sizeof(name), "shadowing: %s in %s", cases[i].name,
                 cases[i].where[0] ? cases[i].where : "the top level");

        check(name, PATCH,  0, body,
              cases[i].shadows ? want
              : strcmp(cases[i].name, "destination") == 0 ? strict : VALID);

        snprintf(name, sizeof(name), "shadowing, strict: %s in %s",
                 cases[i].name,
                 cases[i].where[0] ? cases[i].where : "the top level");

        check(name, PATCH, STRICT, body, strict);
    }

    check("shadowing: beside the member itself", POST, 0,
          post(GOOD_DEST, GOOD_EVENTS, GOOD_KEY, GOOD_REGION,
               ",\"Destination\":\"Elsewhere\""),
          "Destination differs from destination only in letter case");

    check("shadowing: before the member itself, in properties", POST, 0,
          "{\"destination\":\"Segment\",\"filters\":{\"email_events\":[]},"
          "\"properties\":{\"Write_Key\":\"other-key\",\"write_key\":"
          "\"abcdef\",\"destination_region\":\"EU\"}}",
          "properties.Write_Key differs from properties.write_key only in "
          "letter case");

    check("shadowing: after the schema failures, in document order", POST,
          0,
          "{\"PROPERTIES\":{},\"filters\":{\"EMAIL_EVENTS\":[\"x\"],"
          "\"email_events\":[\"y\"]},\"Label\":1,\"destination\":1}",
          "destination must be Segment, "
          "filters.email_events[0] is not a valid email event, "
          "properties is required, "
          "PROPERTIES differs from properties only in letter case, "
          "filters.EMAIL_EVENTS differs from filters.email_events only in "
          "letter case, "
          "Label differs from label only in letter case");

    check("shadowing, strict: among unknown members, in document order",
          PATCH, STRICT,
          "{\"a\":1,\"Filters\":{\"x\":1},\"properties\":{\"b\":2,"
          "\"Destination_region\":\"EU\"},\"c\":3,\"LABEL\":4}",
          "a is not allowed, Filters differs from filters only in letter "
          "case, properties.b is not allowed, "
          "properties.Destination_region differs from "
          "properties.destination_region only in letter case, "
          "c is not allowed, LABEL differs from label only in letter case");

    check("shadowing: only the three objects are looked at", PATCH, 0,
          "{\"x\":{\"Destination\":1,\"Properties\":{\"Write_Key\":1}},"
          "\"filters\":{\"email_events\":[],\"y\":{\"Label\":2}},"
          "\"properties\":{\"z\":{\"Write_Key\":3}}}", VALID);

    check("shadowing: nothing inside a shadowing member is looked at", PATCH,
          0, "{\"Filters\":{\"EMAIL_EVENTS\":1},\"PROPERTIES\":[{\"x\":1}]}",
          "Filters differs from filters only in letter case, "
          "PROPERTIES differs from properties only in letter case");

    check("shadowing: inside filters and properties that are not objects",
          PATCH, 0, "{\"filters\":[{\"EMAIL_EVENTS\":1}],"
          "\"properties\":[{\"Write_Key\":1}]}",
          "filters must be an object, properties must be an object");

    check("shadowing: a duplicate of the shadowing name is a duplicate",
          PATCH, 0, "{\"Label\":1,\"Label\":2}",
          duplicate("Label", strlen("{\"Label\":1,\"Label\"")));

    check("shadowing: a syntax error after it wins", PATCH, 0,
          "{\"Label\":1,\"x\":tru}", not_json_after("{\"Label\":1,\"x\":tru"));

    check("shadowing: the value is not looked at", POST, 0,
          post(GOOD_DEST, GOOD_EVENTS, GOOD_KEY, GOOD_REGION,
               ",\"LABEL\":\"a label\""),
          "LABEL differs from label only in letter case");
}


static void
test_shadowed_listed(void)
{
    char    *body, want[4096], text[128], variant[16];
    size_t   i, j;

    /* 25 spellings of label: 20 listed, 5 counted */
    body = malloc(25 * 16 + 4);
    strcpy(body, "{");
    want[0] = '\0';

    for (i = 1; i <= 25; i++) {
        for (j = 0; j < 5; j++) {
            variant[j] = "label"[j] - ((i >> j) & 1 ? 0x20 : 0);
        }

        variant[5] = '\0';
        sprintf(body + strlen(body), "%s\"%s\":%zu", i > 1 ? "," : "",
                variant, i);

        if (i <= 20) {
            snprintf(text, sizeof(text), "%s differs from label only in "
                     "letter case", variant);
            part(want, text);
        }
    }

    strcat(body, "}");
    part(want, "and 5 more failures");

    check("shadowing: 25 spellings of label", PATCH, 0, body, want);
    free(body);
}


static void
test_duplicates(void)
{
    char    *body, *p;
    size_t   i;

    check("duplicate at the top", POST, 0, "{\"a\":1,\"a\":2}",
          duplicate("a", 10));
    check("duplicate escaped", PATCH, 0,
          "{\"label\":\"a\",\"l\\u0061bel\":\"b\"}",
          duplicate("label",
                    strlen("{\"label\":\"a\",\"l\\u0061bel\"")));
    check("duplicate escaped first", PATCH, 0,
          "{\"\\u006c\\u0061\\u0062\\u0065\\u006c\":1, \"label\" :2}",
          duplicate("label",
                    strlen("{\"\\u006c\\u0061\\u0062\\u0065\\u006c\":1, "
                           "\"label\"")));
    check("duplicate known member", POST, 0,
          "{\"destination\":\"Segment\",\"destination\":\"Segment\"}",
          duplicate("destination",
                    strlen("{\"destination\":\"Segment\",\"destination\"")));
    check("duplicate in filters", POST, 0,
          "{\"filters\":{\"email_events\":[],\"email_events\":[]}}",
          duplicate("email_events",
                    strlen("{\"filters\":{\"email_events\":[],"
                           "\"email_events\"")));
    check("duplicate nested in an unknown member", PATCH, 0,
          "{\"x\":[{\"y\":{\"q\":1,\"r\":{},\"q\":2}}]}",
          duplicate("q", strlen("{\"x\":[{\"y\":{\"q\":1,\"r\":{},\"q\"")));
    check("duplicate after a closed object of the same names", PATCH, 0,
          "{\"a\":{\"a\":1,\"b\":2},\"b\":{},\"a\":0}",
          duplicate("a", strlen("{\"a\":{\"a\":1,\"b\":2},\"b\":{},\"a\"")));
    check("duplicate wins over a later syntax error", PATCH, 0,
          "{\"a\":1,\"a\":2 x",
          duplicate("a", 10));
    check("duplicate empty name", PATCH, 0, "{\"\":1,\"\":2}",
          duplicate("", 8));
    check("duplicate with a syntax error first", PATCH, 0,
          "{\"a\":1 ,, \"a\":2}", not_json(9));
    check("duplicate: UTF-8 and escapes equal", PATCH, 0,
          "{\"caf\xc3\xa9\":1,\"caf\\u00e9\":2}",
          duplicate("caf\xc3\xa9", strlen("{\"caf\xc3\xa9\":1,"
                                          "\"caf\\u00e9\"")));
    body = malloc(100000);

    p = body + sprintf(body, "{\"");
    memset(p, 'a', 66);
    p += sprintf(p + 66, "\":1,\"") + 66;
    memset(p, 'a', 66);
    strcpy(p + 66, "\":2}");
    check("duplicate: the name is cut", PATCH, 0, body,
          duplicate("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                    "aaaaaaaa...", strlen(body) - 3));

    check("duplicate: a quote and backslashes in the name", PATCH, 0,
          "{\"a\\\\\\\"\\\\\":1,\"a\\\\\\u0022\\\\\":2}",
          duplicate("a\\\"\\", strlen("{\"a\\\\\\\"\\\\\":1,"
                                      "\"a\\\\\\u0022\\\\\"")));
    check_nul("duplicate after a NUL jansson drops", PATCH, 0,
          "{\"n\":1\0,\"t\":true\0,\"n\":2}",
          duplicate("n", strlen("{\"n\":1,\"t\":true,\"n\"")));

    /* many names: the hash table */

    p = body + sprintf(body, "{\"o\":{");

    for (i = 0; i < 1000; i++) {
        p += sprintf(p, "\"k%zu\":{\"k%zu\":%zu},", i, i, i);
    }

    sprintf(p, "\"k0\":1}}");
    check("duplicate among 1000 names", PATCH, 0, body,
          duplicate("k0", strlen(body) - 4));

    sprintf(p, "\"k1000\":1},\"k0\":{}}");
    check("1000 names and their children, no duplicate", PATCH, 0, body,
          VALID);

    p = body + sprintf(body, "{");

    for (i = 0; i < 40; i++) {
        p += sprintf(p, "\"k%zu\":{", i);
    }

    for (i = 0; i < 40; i++) {
        p += sprintf(p, "%s\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,"
                        "\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10,\"k\":11,"
                        "\"l\":12,\"m\":13,\"n\":14,\"o\":15,\"p\":16,"
                        "\"q\":17,\"r\":18}", i ? "," : "");
    }

    sprintf(p, "}");
    check("nested objects of many names", PATCH, 0, body, VALID);

    sprintf(p - 1, ",\"r\":1}}");
    check("nested objects of many names, a duplicate last", PATCH, 0, body,
          duplicate("r", strlen(body) - 4));

    free(body);
}


static void
test_syntax(void)
{
    check("trailing name", PATCH, 0, "{} x", not_json(4));
    check("trailing word", PATCH, 0, "{} xyz ", not_json(6));
    check("trailing object", PATCH, 0, "{}{}", not_json(3));
    check("trailing comma", PATCH, 0, "{},", not_json(3));
    check("trailing string", PATCH, 0, "{} \"abc\"", not_json(8));
    check("trailing unterminated string", PATCH, 0, "{} \"abc", not_json(7));
    check("trailing number", PATCH, 0, "{}  12345 ", not_json(9));
    check_nul("trailing NUL", PATCH, 0, "{}\0", not_json(3));
    check("trailing white space is fine", PATCH, 0, "{} \r\n\t ", VALID);

    check("BOM", PATCH, 0, "\xef\xbb\xbf{}", not_json(3));

    check("missing colon", PATCH, 0, "{\"label\" \"x\"}",
          not_json_after("{\"label\" \"x\""));
    check("missing value", PATCH, 0, "{\"label\":}",
          not_json_after("{\"label\":}"));
    check("trailing comma in an object", PATCH, 0, "{\"a\":1,}",
          not_json_after("{\"a\":1,}"));
    check("trailing comma in an array", PATCH, 0, "{\"a\":[1,]}",
          not_json_after("{\"a\":[1,]"));
    check("leading comma", PATCH, 0, "{,}", not_json(2));
    check("colon after a value", PATCH, 0, "{\"a\":1:2}",
          not_json_after("{\"a\":1:"));
    check("colon in an array", PATCH, 0, "{\"a\":[:]}",
          not_json_after("{\"a\":[:"));
    check("two colons", PATCH, 0, "{\"a\"::1}", not_json_after("{\"a\"::"));
    check("name not a string", PATCH, 0, "{label:1}", not_json(6));
    check("name a number", PATCH, 0, "{12:1}", not_json(3));
    check("single quotes", PATCH, 0, "{'a':1}", not_json(2));
    check("missing comma", PATCH, 0, "{\"a\":1 \"b\":2}",
          not_json_after("{\"a\":1 \"b\""));
    check("mismatched bracket", PATCH, 0, "{\"a\":[1}",
          not_json_after("{\"a\":[1}"));
    check("unclosed object", PATCH, 0, "{\"a\":1", not_json(6));
    check("unclosed array", PATCH, 0, "{\"a\":[1, 2 ", not_json(11));
    check("unclosed string", PATCH, 0, "{\"label\":\"abc", not_json(13));
    check("unclosed escape", PATCH, 0, "{\"label\":\"abc\\", not_json(14));
    check("unclosed \\u", PATCH, 0, "{\"label\":\"\\u12", not_json(14));
    check("bad literal", PATCH, 0, "{\"a\":tru}",
          not_json_after("{\"a\":tru"));
    check("literal too long", PATCH, 0, "{\"a\":truex}",
          not_json_after("{\"a\":truex"));
    check("capital literal", PATCH, 0, "{\"a\":True}",
          not_json_after("{\"a\":True"));
    check("literal cut by the end", PATCH, 0, "{\"a\":nul", not_json(8));
    check("NaN", PATCH, 0, "{\"a\":NaN}", not_json_after("{\"a\":NaN"));
    check("control byte in a string", PATCH, 0, "{\"label\":\"a\tb\"}",
          not_json_after("{\"label\":\"a"));
    check("newline in a string", PATCH, 0, "{\"label\":\"a\nb\"}",
          not_json_after("{\"label\":\"a"));
    check("DEL in a string is fine", PATCH, 0, "{\"label\":\"a\x7f\"}",
          VALID);
    check("bad escape", PATCH, 0, "{\"label\":\"\\x\"}",
          not_json_after("{\"label\":\"\\x"));
    check("bad \\u digit", PATCH, 0, "{\"label\":\"\\u12g4\"}",
          not_json_after("{\"label\":\"\\u12g"));
    check("upper-case \\U", PATCH, 0, "{\"label\":\"\\U0041\"}",
          not_json_after("{\"label\":\"\\U"));
    check("escape is a character", PATCH, 0, "{\"label\":\"\\\xc3\xa9\"}",
          not_json(strlen("{\"label\":\"\\") + 1));
    check("\\u digit is a character", PATCH, 0,
          "{\"label\":\"\\u0\xe2\x82\xac\"}",
          not_json(strlen("{\"label\":\"\\u0") + 1));
    check("stray character", PATCH, 0, "{\"a\":1,\xc3\xa9}",
          not_json_after("{\"a\":1,\xc3\xa9"));
    check("stray character after a number", PATCH, 0, "{\"a\":1\xe2\x82\xac}",
          not_json_after("{\"a\":1\xe2\x82\xac"));
    check("stray character after a literal's start", PATCH, 0,
          "{\"a\":tr\xc3\xa9}", not_json_after("{\"a\":tr"));
    check("stray byte", PATCH, 0, "{\"a\":#}", not_json_after("{\"a\":#"));
    check("form feed is not white space", PATCH, 0, "{\f}", not_json(2));
    check("comment", PATCH, 0, "{/* */}", not_json(2));
}


static const char  dbl_limit[] =
    "179769313486231580793728971405303415079934132710037826936173778980"
    "444968292764750946649017977587207096330286416692887910946555547851"
    "940402630657488671505820681908902000708383676273854845817711531764"
    "475730270069855571366959622842914819860834936475292719074168444365"
    "510704342711559699508093042880177904174497792";


static void
test_numbers(void)
{
    char    body[1024], *p;
    size_t  pos;

    check("largest integer", PATCH, 0,
          "{\"a\":9223372036854775807,\"b\":-9223372036854775808}", VALID);
    check("integer too big", PATCH, 0, "{\"a\":9223372036854775808}",
          not_json_after("{\"a\":9223372036854775808"));
    check("integer too small", PATCH, 0, "{\"a\":-9223372036854775809}",
          not_json_after("{\"a\":-9223372036854775809"));
    check("integer far too big", PATCH, 0,
          "{\"a\":123456789012345678901234567890 }",
          not_json_after("{\"a\":123456789012345678901234567890"));
    check("big integer as a real", PATCH, 0,
          "{\"a\":123456789012345678901234567890.0,"
          "\"b\":9223372036854775808e0}", VALID);
    check("real overflow", PATCH, 0, "{\"a\":1e309}",
          not_json_after("{\"a\":1e309"));
    check("negative real overflow", PATCH, 0, "{\"a\":-1.8e308}",
          not_json_after("{\"a\":-1.8e308"));
    check("largest double", PATCH, 0,
          "{\"a\":1.7976931348623157e308,\"b\":-1.7976931348623157E+308}",
          VALID);
    /* 2^1024 - 2^970, written out: strtod() overflows from there on */
    p = body + sprintf(body, "{\"a\":%c.%s", dbl_limit[0], dbl_limit + 1);
    p[-1]--;
    strcpy(p, "9999e308}");
    check("just below the overflow", PATCH, 0, body, VALID);

    sprintf(body, "{\"a\":-0.000%se312", dbl_limit);
    pos = strlen(body);
    strcat(body, "}");
    check("exactly the overflow", PATCH, 0, body, not_json(pos));

    sprintf(body, "{\"a\":%s.0}", dbl_limit);
    check("exactly the overflow, as digits", PATCH, 0, body,
          not_json(strlen(body) - 1));

    sprintf(body, "{\"a\":%s0e-1}", dbl_limit);
    check("exactly the overflow, and a zero", PATCH, 0, body,
          not_json(strlen(body) - 1));

    sprintf(body, "{\"a\":%s0000001e-7}", dbl_limit);
    check("just above the overflow", PATCH, 0, body,
          not_json(strlen(body) - 1));

    check("underflow is fine", PATCH, 0,
          "{\"a\":1e-400,\"b\":-0.0000e-99999999999999999999}", VALID);
    check("huge exponent", PATCH, 0, "{\"a\":0.1e99999999999999999999}",
          not_json_after("{\"a\":0.1e99999999999999999999"));
    check("huge exponent of zero", PATCH, 0,
          "{\"a\":0.000e99999999999999999999}", VALID);
    check("leading zero", PATCH, 0, "{\"a\":01}", not_json(6));
    check("negative leading zero", PATCH, 0, "{\"a\":-01}", not_json(7));
    check("lone minus", PATCH, 0, "{\"a\":-}", not_json(6));
    check("minus letter", PATCH, 0, "{\"a\":-a}", not_json(6));
    check("plus sign", PATCH, 0, "{\"a\":+1}", not_json(6));
    check("dot without digits", PATCH, 0, "{\"a\":1.}", not_json(7));
    check("dot then exponent", PATCH, 0, "{\"a\":1.e5}", not_json(7));
    check("leading dot", PATCH, 0, "{\"a\":.5}", not_json(6));
    check("exponent without digits", PATCH, 0, "{\"a\":1e}", not_json(7));
    check("exponent sign without digits", PATCH, 0, "{\"a\":1e+}",
          not_json(8));
    check("hex", PATCH, 0, "{\"a\":0x1}", not_json(7));
    check("number cut by the end", PATCH, 0, "{\"a\":12", not_json(7));
    check("number as a name", PATCH, 0, "{1:2}", not_json(2));
}


static void
test_nul(void)
{
    check("\\u0000 in a value", PATCH, 0, "{\"label\":\"a\\u0000b\"}",
          not_json_after("{\"label\":\"a\\u0000b\""));
    check("\\u0000 in a name", PATCH, 0, "{\"a\\u0000\":1}",
          not_json_after("{\"a\\u0000\""));
    check("\\u0000 in an ignored value", PATCH, 0,
          "{\"x\":[\"\\u0000\"]}", not_json_after("{\"x\":[\"\\u0000\""));
    check_nul("NUL byte in a string", PATCH, 0, "{\"label\":\"a\0\"}",
          not_json_after("{\"label\":\"a"));
    check_nul("NUL byte for a value", PATCH, 0, "{\"a\":\0}", not_json(6));
    check_nul("NUL byte in white space", PATCH, 0, "{ \0}", not_json(3));

    /* jansson puts a NUL after a number or literal back, then loses it */
    check_nul("NUL after a number", PATCH, 0, "{\"a\":[1\0,2.5\0,-3e1\0]}",
          VALID);
    check_nul("NUL after literals", PATCH, 0,
          "{\"a\":true\0,\"b\":false\0,\"c\":null\0}", VALID);
    check_nul("NUL after a number, then an error", PATCH, 0,
          "{\"a\":1\0 x}", not_json(strlen("{\"a\":1 x")));
    check_nul("two NULs after a number", PATCH, 0, "{\"a\":1\0\0}",
          not_json(7));
    check_nul("NUL after a bad literal", PATCH, 0, "{\"a\":nul\0}",
          not_json(strlen("{\"a\":nul")));
    check_nul("NUL after a string", PATCH, 0, "{\"a\":\"x\"\0}",
          not_json(strlen("{\"a\":\"x\"") + 1));
    check_nul("NUL after the object", PATCH, 0, "{\"a\":1}\0",
          not_json(strlen("{\"a\":1}") + 1));
    check_nul("NULs shift every later offset", PATCH, 0,
          "{\"a\":[1\0,2\0,3\0],\"b\":\"\\q\"}",
          not_json(strlen("{\"a\":[1,2,3],\"b\":\"\\q")));
}


static void
test_surrogates(void)
{
    check("lone high surrogate", PATCH, 0, "{\"label\":\"\\ud800\"}",
          not_json_after("{\"label\":\"\\ud800\""));
    check("lone high surrogate, then text", PATCH, 0,
          "{\"label\":\"\\udbffabc\"}",
          not_json_after("{\"label\":\"\\udbffabc\""));
    check("lone low surrogate", PATCH, 0, "{\"label\":\"\\udc00\"}",
          not_json_after("{\"label\":\"\\udc00\""));
    check("high then high", PATCH, 0, "{\"label\":\"\\ud800\\ud800\"}",
          not_json_after("{\"label\":\"\\ud800\\ud800\""));
    check("high then other escape", PATCH, 0,
          "{\"label\":\"\\ud800\\n\"}",
          not_json_after("{\"label\":\"\\ud800\\n\""));
    check("high then escaped backslash and u", PATCH, 0,
          "{\"label\":\"\\ud800\\\\udc00\"}",
          not_json_after("{\"label\":\"\\ud800\\\\udc00\""));
    check("pair reversed", PATCH, 0, "{\"label\":\"\\udc00\\ud800\"}",
          not_json_after("{\"label\":\"\\udc00\\ud800\""));
    check("lone surrogate in a name", PATCH, 0, "{\"\\ud800\":1}",
          not_json_after("{\"\\ud800\""));
    check("lone surrogate, then a bad escape", PATCH, 0,
          "{\"label\":\"\\ud800\\x\"}",
          not_json_after("{\"label\":\"\\ud800\\x"));
    check("pairs and upper case", PATCH, 0,
          "{\"label\":\"\\uD83D\\uDE00\\udbff\\udfff\\uD800\\uDC00\"}", VALID);
    check("UTF-8 surrogate", PATCH, 0, "{\"label\":\"\xed\xa0\x80\"}",
          not_json_after("{\"label\":\""));
}


static void
test_utf8(void)
{
    static const char  *bad[] = {
        "\x80", "\xbf", "\xc0\xaf", "\xc1\xbf", "\xc2", "\xc2\x41",
        "\xe0\x80\xaf", "\xe0\x9f\xbf", "\xe2\x82", "\xe2\x28\xa1",
        "\xed\xbf\xbf", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80",
        "\xf4\x8f\xbf", "\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80", "\xfe",
        "\xff"
    };

    char    name[64], body[64];
    size_t  i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(name, sizeof(name), "invalid UTF-8 %zu in a string", i);
        snprintf(body, sizeof(body), "{\"label\":\"ab%s\"}", bad[i]);
        check(name, PATCH, 0, body, not_json_after("{\"label\":\"ab"));

        snprintf(name, sizeof(name), "invalid UTF-8 %zu in a name", i);
        snprintf(body, sizeof(body), "{\"a%s\":1}", bad[i]);
        check(name, PATCH, 0, body, not_json_after("{\"a"));

        snprintf(name, sizeof(name), "invalid UTF-8 %zu for a token", i);
        snprintf(body, sizeof(body), "{\"a\":%s}", bad[i]);
        check(name, PATCH, 0, body, not_json_after("{\"a\":"));

        snprintf(name, sizeof(name), "invalid UTF-8 %zu after a number", i);
        snprintf(body, sizeof(body), "{\"a\":12%s}", bad[i]);
        check(name, PATCH, 0, body, not_json_after("{\"a\":12"));

        snprintf(name, sizeof(name), "invalid UTF-8 %zu as an escape", i);
        snprintf(body, sizeof(body), "{\"a\":\"\\%s\"}", bad[i]);
        check(name, PATCH, 0, body, not_json_after("{\"a\":\"\\"));

        snprintf(name, sizeof(name), "invalid UTF-8 %zu at the end", i);
        snprintf(body, sizeof(body), "{\"a\":\"%s", bad[i]);
        check(name, PATCH, 0, body, not_json_after("{\"a\":\""));
    }
}


static void
test_depth(void)
{
    char    *body;
    size_t   i, n;

    n = 10000;
    body = malloc(n * 5 + 16);

    memset(body, '[', n);
    memset(body + n, ']', n);
    body[2 * n] = '\0';
    check("10000 arrays deep", PATCH, 0, body, not_json(2049));

    memset(body, '[', 2048);
    memset(body + 2048, ']', 2048);
    body[4096] = '\0';
    check("2048 arrays deep", PATCH, 0, body,
          "request body must be a JSON object");

    memset(body, '[', 2048);
    body[2048] = '7';
    memset(body + 2049, ']', 2048);
    body[4097] = '\0';
    check("a number 2049 deep", PATCH, 0, body, not_json(2049));

    memset(body, '[', 2048);
    memcpy(body + 2048, "\"s\"", 3);
    memset(body + 2051, ']', 2048);
    body[4099] = '\0';
    check("a string 2049 deep", PATCH, 0, body, not_json(2051));

    for (i = 0; i < n; i++) {
        memcpy(body + 5 * i, "{\"a\":", 5);
    }

    body[5 * n] = '\0';
    check("10000 objects deep: the 1025th name open", PATCH, 0, body,
          too_many_names(5 * 1024 + 4));

    /* a name every other level: 1024 names open at 2048 levels */
    for (i = 0; i < 1023; i++) {
        memcpy(body + 6 * i, "{\"a\":[", 6);
    }

    strcpy(body + 6 * 1023, "{\"b\":{}}");

    for (i = 0; i < 1023; i++) {
        strcat(body, "]}");
    }

    check("2048 levels of objects and arrays", PATCH, STRICT, body,
          "a is not allowed");

    free(body);
}


static void
test_large(void)
{
    char    *body, *p;
    size_t   i;

    body = malloc(1000000);

    p = body + sprintf(body, "{\"label\":\"");
    memset(p, 'x', 70000);
    strcpy(p + 70000, "\"}");
    check("70 KB label", PATCH, STRICT, body, VALID);

    p = body + sprintf(body, "{\"label\":\"");

    for (i = 0; i < 20000; i++) {
        p += sprintf(p, "%s", i % 3 ? "\xe2\x82\xac" : "\\u20ac");
    }

    strcpy(p, "\",\"x\":1}");
    check("80 KB label of characters and escapes", PATCH, STRICT, body,
          "x is not allowed");

    p = body + sprintf(body, "{\"destination\":\"Segment\",\"filters\":{"
                       "\"email_events\":[");

    for (i = 0; i < 8000; i++) {
        p += sprintf(p, "\"machine_opened\",");
    }

    sprintf(p, "\"open\"]},\"properties\":{\"write_key\":\"abcdef\","
            "\"destination_region\":\"US\"},\"other\":[");
    p += strlen(p);

    for (i = 0; i < 5000; i++) {
        p += sprintf(p, "{\"n\":%zu,\"r\":-1.25e-3,\"t\":[true,false,null]},",
                     i);
    }

    sprintf(p, "{}]}");
    check("370 KB POST", POST, 0, body, VALID);
    check("370 KB POST, strict", POST, STRICT, body, "other is not allowed");

    p = body + sprintf(body, "{\"filters\":{\"email_events\":[");

    for (i = 0; i < 10000; i++) {
        p += sprintf(p, "\"%s\",", i == 10 || i == 9999 ? "nope" : "drop");
    }

    sprintf(p, "\"click\"]}}");
    check("70 KB events, two wrong", PATCH, 0, body,
          "filters.email_events[10] is not a valid email event, "
          "filters.email_events[9999] is not a valid email event");

    p = body + sprintf(body, "{\"properties\":{\"write_key\":\"");
    memset(p, 'k', 66000);
    strcpy(p + 66000, "\"}}");
    check("64 KB write_key", PATCH, 0, body,
          "properties.write_key must be between 6 and 51 characters");

    p = body + sprintf(body, "{\"x\":{");

    for (i = 0; i < 1000; i++) {
        p += sprintf(p, "\"name-%zu\":\"value\",", i);
    }

    sprintf(p, "\"name-77\":0}}");
    check("1000 names, a duplicate last", PATCH, 0, body,
          duplicate("name-77", strlen(body) - 4));

    free(body);
}


/* Objects with enough names to be hashed, with each kind of hash. */
static void
test_hashed(void)
{
    char         *body, *inner, *outer, name[80];
    size_t        i, j, n;
    unsigned      flags;
    const char   *kind;

    for (i = 0; i < 2; i++) {
        flags = i ? SG_BODY_SIPHASH : 0;
        kind = i ? "SipHash" : "fast hash";

        snprintf(name, sizeof(name), "%s: 100 names", kind);
        body = items("{\"x\":{", "\"n%zu\":0", 100, "}}");
        check(name, PATCH, flags, body, VALID);
        free(body);

        /* the 16th name is the last compared in turn, the 17th the first
         * hashed */
        for (n = 15; n <= 17; n++) {
            snprintf(name, sizeof(name), "%s: name %zu again", kind, n);
            body = items("{\"x\":{", "\"n%zu\":0", 100, "");
            outer = malloc(strlen(body) + 32);
            sprintf(outer, "%s,\"n%zu\":1}}", body, n - 1);
            inner = strdup(outer + strlen(body) + 2);
            *strchr(inner, '"') = '\0';
            check(name, PATCH, flags, outer,
                  duplicate(inner, strlen(outer) - 4));
            free(inner);
            free(outer);
            free(body);
        }

        snprintf(name, sizeof(name), "%s: long names differing at the end",
                 kind);
        body = items("{\"x\":{",
                     "\"a-long-name-of-forty-bytes-and-more-%05zu\":0", 300,
                     ",\"a-long-name-of-forty-bytes-and-more-00299\":0}}");
        check(name, PATCH, flags, body,
              duplicate("a-long-name-of-forty-bytes-and-more-00299",
                        strlen(body) - 4));
        free(body);

        /* an inner object's names are its own, and leave with it */
        inner = items("{", "\"n%zu\":0", 40, ",\"only-inner\":1}");
        body = items("", "\"n%zu\":0", 40, "");
        outer = malloc(2 * strlen(body) + strlen(inner) + 64);

        sprintf(outer, "{%s,\"inner\":%s,\"only-inner\":2}", body, inner);
        snprintf(name, sizeof(name), "%s: nested objects with the same "
                 "names", kind);
        check(name, PATCH, flags, outer, VALID);

        sprintf(outer, "{%s,\"inner\":%s,\"n39\":2}", body, inner);
        snprintf(name, sizeof(name), "%s: an outer name again after the "
                 "inner object", kind);
        check(name, PATCH, flags, outer, duplicate("n39", strlen(outer) - 3));

        sprintf(outer, "[{%s},{%s},%s]", body, body, inner);
        snprintf(name, sizeof(name), "%s: sibling objects with the same "
                 "names", kind);
        check(name, PATCH, flags, outer,
              "request body must be a JSON object");

        free(outer);
        free(body);
        free(inner);

        /* deep: each level hashed, a duplicate at the innermost */
        body = items("", "\"n%zu\":0", 20, "");
        outer = malloc(8 * (strlen(body) + 16) + 64);
        outer[0] = '\0';

        for (n = 0; n < 6; n++) {
            strcat(outer, "{");
            strcat(outer, body);
            strcat(outer, ",\"d\":");
        }

        strcat(outer, "{\"n1\":0,\"n1\":0}");
        n = strlen(outer) - 3;

        for (j = 0; j < 6; j++) {
            strcat(outer, "}");
        }

        snprintf(name, sizeof(name), "%s: six hashed objects deep", kind);
        check(name, PATCH, flags, outer, duplicate("n1", n));

        free(outer);
        free(body);
    }
}


/* the offset just after the last occurrence of needle in body */
static size_t
after_last(const char *body, const char *needle)
{
    const char  *p, *last;

    last = NULL;

    for (p = strstr(body, needle); p; p = strstr(p + 1, needle)) {
        last = p;
    }

    return last ? (size_t) (last - body) + strlen(needle) : 0;
}


/* The limits on the names of the open objects. */
static void
test_limits(void)
{
    char    *body, *inner, *p, name[64];
    size_t   i;

    ok(SG_BODY_NAMES_MAX == 1024 && SG_BODY_NAMES_BYTES == 16384,
       "limits: 1024 names, 16384 bytes of names");

    /* the number of names */

    body = items("{", "\"n%zu\":0", 1024, "}");
    check("limits: 1024 names in one object", PATCH, 0, body, VALID);
    free(body);

    body = items("{", "\"n%zu\":0", 1025, "}");
    check("limits: 1025 names in one object", PATCH, 0, body,
          too_many_names(after_last(body, "\"n1024\"")));
    free(body);

    body = items("{", "\"n%zu\":0", 100000, "}");
    check("limits: 100000 names in one object", PATCH, 0, body,
          too_many_names(after_last(body, "\"n1024\"")));
    free(body);

    inner = items("{", "\"i%zu\":0", 425, "}");
    body = items("{", "\"n%zu\":0", 600, "");
    p = malloc(strlen(body) + strlen(inner) + 64);
    sprintf(p, "%s,\"inner\":%s}", body, inner);
    check("limits: the names of an object and of the one inside it", PATCH,
          0, p, too_many_names(after_last(p, "\"i423\"")));
    free(p);
    free(inner);
    free(body);

    inner = items("{", "\"i%zu\":0", 1000, "}");
    body = malloc(3 * strlen(inner) + 64);
    sprintf(body, "{\"a\":[%s,%s],\"b\":%s}", inner, inner, inner);
    check("limits: an object's names leave when it closes", PATCH, 0, body,
          VALID);
    free(body);
    free(inner);

    body = items("[", "{\"n\":{\"m\":0}}", 5000, "]");
    check("limits: 10000 names in closed objects", PATCH, 0, body,
          "request body must be a JSON object");
    free(body);

    body = items("[{", "\"n%zu\":0", 1025, "}]");
    check("limits: in a top-level array", PATCH, 0, body,
          too_many_names(after_last(body, "\"n1024\"")));
    free(body);

    /* the bytes of names, decoded */

    body = malloc(200000);

    p = body + sprintf(body, "{");

    for (i = 0; i < 16; i++) {
        p += sprintf(p, "%s\"%04zu", i ? "," : "", i);
        memset(p, 'b', 1020);
        p += sprintf(p + 1020, "\":%zu", i) + 1020;
    }

    strcpy(p, "}");
    check("limits: 16384 bytes of names", PATCH, 0, body, VALID);

    strcpy(p, ",\"x\":1}");
    check("limits: 16385 bytes of names", PATCH, 0, body,
          too_many_name_bytes(after_last(body, "\"x\"")));

    strcpy(p, ",\"\\u0078\":1}");
    check("limits: 16385 bytes, the last name escaped", PATCH, 0, body,
          too_many_name_bytes(after_last(body, "\"\\u0078\"")));

    strcpy(p, ",\"x\":1 x}");
    check("limits: a syntax error after the limit", PATCH, 0, body,
          too_many_name_bytes(after_last(body, "\"x\"")));

    strcpy(p, ",\"\\ud800\":1}");
    check("limits: the name past the limit does not decode", PATCH, 0,
          body, not_json(after_last(body, "\"\\ud800\"")));

    strcpy(p, ",\"\xff\":1}");
    check("limits: the name past the limit is not UTF-8", PATCH, 0, body,
          not_json(after_last(body, ",\"")));

    strcpy(p, ",\"0000");
    memset(p + 6, 'b', 1020);
    strcpy(p + 1026, "\":1}");
    check("limits: past the bytes with a duplicate name", PATCH, 0, body,
          too_many_name_bytes(strlen(body) - 3));

    strcpy(p, ",\"x\":1}");
    p = strchr(body, ',');
    *p = '!';
    check("limits: a syntax error before the limit", PATCH, 0, body,
          not_json(p - body + 1));

    /* one long name, whole and in pieces */
    p = body + sprintf(body, "{\"");
    memset(p, 'n', 16384);
    strcpy(p + 16384, "\":1}");
    check("limits: one name of 16384 bytes", PATCH, 0, body, VALID);

    p = body + sprintf(body, "{\"");
    memset(p, 'n', 16385);
    strcpy(p + 16385, "\":1}");
    check("limits: one name of 16385 bytes", PATCH, 0, body,
          too_many_name_bytes(strlen(body) - 3));

    p = body + sprintf(body, "{\"");

    for (i = 0; i < 16385; i++) {
        p += sprintf(p, i % 100 ? "n" : "\\u006e");
    }

    strcpy(p, "\":1}");
    check("limits: one escaped name of 16385 bytes decoded", PATCH, 0,
          body, too_many_name_bytes(strlen(body) - 3));

    p = body + sprintf(body, "{\"");

    for (i = 0; i < 16384; i++) {
        p += sprintf(p, "\\u006e");
    }

    strcpy(p, "\":1}");
    check("limits: 98 KB of escapes, 16384 bytes decoded", PATCH, 0, body,
          VALID);

    p = body + sprintf(body, "{\"");
    memset(p, 'n', 100000);
    strcpy(p + 100000, "\\ud800\":1}");
    check("limits: a long name that does not decode", PATCH, 0, body,
          not_json(strlen(body) - 3));

    free(body);

    /* the count is checked first, and before duplicates */

    body = items("{", "\"n%zu\":0", 1024, "");
    p = malloc(strlen(body) + 20000);
    sprintf(p, "%s,\"", body);
    memset(p + strlen(p), 'x', 17000);
    strcpy(p + strlen(body) + 2 + 17000, "\":0}");
    check("limits: past both at once", PATCH, 0, p,
          too_many_names(strlen(p) - 3));

    sprintf(p, "%s,\"n7\":0}", body);
    check("limits: the 1025th name a duplicate", PATCH, 0, p,
          too_many_names(strlen(p) - 3));

    sprintf(p, "%s}", body);
    memcpy(strstr(p, "\"n1000\""), "\"n10\"  ", 7);
    check("limits: a duplicate before the limit", PATCH, 0, p,
          duplicate("n10", after_last(p, "\"n10\"")));
    free(p);
    free(body);

    /* positions count as jansson's: a NUL after a number is not counted */
    body = items("{", "\"n%zu\":0", 1025, "}");
    p = malloc(strlen(body) + 2);
    i = strstr(body, ",\"n1\"") - body;
    memcpy(p, body, i);
    p[i] = '\0';
    strcpy(p + i + 1, body + i);
    check_body("limits: after a NUL jansson drops", PATCH, 0, p,
               strlen(body) + 1, too_many_names(after_last(body, "\"n1024\"")));
    free(p);
    free(body);

    for (i = 0; i < 2; i++) {
        snprintf(name, sizeof(name), "limits: 1025 names, strict %zu", i);
        body = items("{\"filters\":{", "\"n%zu\":0", 1025, "}}");
        check(name, PATCH, i ? STRICT : 0, body,
              too_many_names(after_last(body, "\"n1023\"")));
        free(body);
    }
}


/*
 * The memory the validator holds: nothing beyond itself for small bodies,
 * at most SG_BODY_MEMORY_MAX for the worst the limits allow.
 */
static void
test_memory(void)
{
    int          rc;
    char        *body, *p;
    size_t       i, n, len, peak;
    sg_body_t   *v;
    const char  *m;

    v = sg_body_create(POST, 0);
    body = post(GOOD_DEST, GOOD_EVENTS, GOOD_KEY, GOOD_REGION, NULL);
    sg_body_feed(v, (const unsigned char *) body, strlen(body));
    is_int(sg_body_finish(v), SG_BODY_OK, "memory: a small body, valid");
    peak = sg_body_memory(v);
    ok(peak <= 1024, "memory: a small body takes the validator alone "
       "(%zu bytes)", peak);
    sg_body_destroy(v);

    /* every member, and the longest write_key, still in the 1 KB */
    v = sg_body_create(POST, 0);
    body = "{\"destination\":\"Segment\",\"label\":\"a real one\","
           "\"filters\":{\"email_events\":[\"processed\",\"bounce\"]},"
           "\"properties\":{\"write_key\":"
           "\"wk_0123456789abcdef0123456789abcdef0123456789abcdef\","
           "\"destination_region\":\"EU\"}}";
    sg_body_feed(v, (const unsigned char *) body, strlen(body));
    is_int(sg_body_finish(v), SG_BODY_OK, "memory: a whole body, valid");
    peak = sg_body_memory(v);
    ok(peak <= 1024, "memory: a whole body takes the validator alone "
       "(%zu bytes)", peak);
    sg_body_destroy(v);

    /*
     * The worst: names near both limits, one object of them hashed,
     * nested near jansson's depth, values kept to the limit, and more
     * failures than are listed; whole, then byte by byte.
     */
    body = malloc(1 << 20);
    p = body + sprintf(body, "{\"destination\":\"");
    memset(p, 'd', 5000);
    p += 5000;
    p += sprintf(p, "\",\"properties\":{\"write_key\":\"");

    for (i = 0; i < 1100; i++) {
        p += sprintf(p, "\\u00e9");
    }

    p += sprintf(p, "\"},\"filters\":{\"email_events\":[");

    for (i = 0; i < 25; i++) {
        p += sprintf(p, "%s\"%0200zu\"", i ? "," : "", i);
    }

    p += sprintf(p, "]");

    for (i = 0; i < 25; i++) {
        p += sprintf(p, ",\"\\u00e9%070zu\":0", i);
    }

    p += sprintf(p, "}");

    for (i = 0; i < 12; i++) {
        p += sprintf(p, ",\"%0999zu\":0", i);
    }

    for (i = 0; i < 600; i++) {
        p += sprintf(p, ",\"s%03zu\":0", i);
    }

    p += sprintf(p, ",\"x\":");

    for (i = 0; i < 400; i++) {
        p += sprintf(p, "{\"%03zu\":[", i);
    }

    memset(p, '[', 1240);
    memset(p + 1240, ']', 1240);
    p += 2480;

    for (i = 0; i < 400; i++) {
        p += sprintf(p, "]}");
    }

    strcpy(p, "}");
    len = strlen(body);

    for (i = 0; i < 2; i++) {
        v = sg_body_create(POST, STRICT);
        rc = SG_BODY_OK;

        for (p = body; rc == SG_BODY_OK && p < body + len; p += n) {
            n = i ? 1 : len;
            rc = sg_body_feed(v, (const unsigned char *) p, n);
        }

        if (rc == SG_BODY_OK) {
            rc = sg_body_finish(v);
        }

        m = sg_body_message(v, &n);

        ok(rc == SG_BODY_INVALID && strstr(m, ", and 646 more failures") != NULL
           && sg_body_memory(v) <= SG_BODY_MEMORY_MAX,
           "memory: the worst body%s: %zu bytes at most",
           i ? ", byte by byte" : "", sg_body_memory(v));

        sg_body_destroy(v);
    }

    free(body);
}


/* feed() answers early only when the message is final */
static void
test_early(void)
{
    int         rc;
    sg_body_t  *v;

    v = sg_body_create(POST, 0);
    rc = sg_body_feed(v, (const unsigned char *) B("{\"destination\":1,"));
    is_int(rc, SG_BODY_OK, "schema failure: feed goes on");
    rc = sg_body_feed(v, (const unsigned char *) B("\"x\":tru "));
    is_int(rc, SG_BODY_INVALID, "syntax error: feed stops");
    rc = sg_body_feed(v, (const unsigned char *) B("e}"));
    is_int(rc, SG_BODY_INVALID, "later feeds: ignored");
    is_int(sg_body_finish(v), SG_BODY_INVALID, "finish: invalid");
    sg_body_destroy(v);

    v = sg_body_create(POST, 0);
    rc = sg_body_feed(v, (const unsigned char *) B("{\"a\":1,\"a\""));
    is_int(rc, SG_BODY_INVALID, "duplicate: feed stops");
    sg_body_destroy(v);

    v = sg_body_create(PATCH, 0);
    rc = sg_body_feed(v, (const unsigned char *) B("{}"));
    is_int(rc, SG_BODY_OK, "complete body: feed goes on");
    is_int(sg_body_finish(v), SG_BODY_OK, "complete body: valid");
    is_int(sg_body_finish(v), SG_BODY_OK, "finish again: the same");
    sg_body_destroy(v);

    sg_body_destroy(NULL);
    ok(1, "destroy(NULL)");
}


/*
 * Destroyed validators are kept for the next ones: a structure reused
 * after any verdict gives the same verdicts as a new one, and a kept one
 * is out of bounds to AddressSanitizer until it is reused.
 */
static void
test_spares(void)
{
    int          same;
    size_t       i, len;
    sg_body_t   *v[100];
    const char  *m, *good, *bad, *dup;

    good = post(GOOD_DEST, GOOD_EVENTS, GOOD_KEY, GOOD_REGION, NULL);
    good = strdup(good);
    bad = "{\"destination\":1,\"filters\":[],\"properties\":{}}";
    dup = "{\"a\":1,\"a\":2}";

    /* more at once than are kept; each left in another state */
    for (i = 0; i < 100; i++) {
        v[i] = sg_body_create(POST, 0);
        sg_body_feed(v[i], (const unsigned char *)
                     (i % 3 == 0 ? good : i % 3 == 1 ? bad : dup),
                     strlen(i % 3 == 0 ? good : i % 3 == 1 ? bad : dup));
        sg_body_finish(v[i]);
    }

    for (i = 0; i < 100; i++) {
        sg_body_destroy(v[i]);
    }

#if (defined __SANITIZE_ADDRESS__)
    ok(__asan_address_is_poisoned(v[99]),
       "spares: a destroyed validator is out of bounds");
#else
    ok(1, "spares: (out of bounds only under AddressSanitizer)");
#endif

    same = 1;

    for (i = 0; i < 100; i++) {
        v[i] = sg_body_create(i % 2 ? POST : PATCH, 0);
        sg_body_feed(v[i], (const unsigned char *) good, strlen(good));
        same &= (sg_body_finish(v[i]) == SG_BODY_OK
                 && sg_body_write_key(v[i], &len) != NULL
                 && sg_body_message(v[i], &len) == NULL);
    }

    ok(same, "spares: 100 validators, reused and new, find a good body "
       "valid");

    for (i = 0; i < 100; i++) {
        sg_body_destroy(v[i]);
    }

    v[0] = sg_body_create(POST, 0);
    sg_body_feed(v[0], (const unsigned char *) bad, strlen(bad));
    is_int(sg_body_finish(v[0]), SG_BODY_INVALID, "spares: a bad body "
           "after a good one");
    m = sg_body_message(v[0], &len);
    ok(m != NULL && strstr(m, "destination") != NULL, "spares: %s", m);
    sg_body_destroy(v[0]);

    /* as a worker does when it exits */
    sg_body_free_spares();
    v[0] = sg_body_create(POST, 0);
    sg_body_feed(v[0], (const unsigned char *) good, strlen(good));
    is_int(sg_body_finish(v[0]), SG_BODY_OK, "spares: freed, then made "
           "anew");
    sg_body_destroy(v[0]);
    sg_body_free_spares();

    free((char *) good);
}


/* no validator before the hash key, one after it */
static void
test_init(void)
{
    sg_body_t  *v;

    v = sg_body_create(POST, 0);
    ok(v == NULL, "init: no validator before sg_body_init()");
    sg_body_destroy(v);

    is_int(sg_body_init(), 0, "init: the hash key from the system");
    is_int(sg_body_init(), 0, "init: a second call succeeds");

    v = sg_body_create(POST, 0);
    ok(v != NULL, "init: then validators");
    sg_body_destroy(v);
}


int
main(void)
{
    test_init();
    test_valid();
    test_empty_and_top();
    test_required();
    test_types();
    test_events();
    test_write_key();
    test_strict();
    test_shadowed();
    test_shadowed_listed();
    test_listed();
    test_duplicates();
    test_syntax();
    test_numbers();
    test_nul();
    test_surrogates();
    test_utf8();
    test_depth();
    test_large();
    test_hashed();
    test_limits();
    test_memory();
    test_early();
    test_spares();

    return done_testing();
}
