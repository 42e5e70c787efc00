/*
 * sg_json: escaping and the gateway's error body.
 */

#include <stdlib.h>

#include "tap.h"
#include "../../ngx_sendgrid_integrations_module/sg_json.h"


static char *
escape(const char *src, size_t len)
{
    char    *out;
    size_t   n;

    n = sg_json_escaped_len((const unsigned char *) src, len);
    out = malloc(n + 1);
    *sg_json_escape((unsigned char *) out, (const unsigned char *) src, len)
        = '\0';

    if (strlen(out) != n) {
        printf("# escaped length %zu, predicted %zu\n", strlen(out), n);
        out[0] = '!';
    }

    return out;
}


static void
test_escape(void)
{
    static const struct {
        const char  *in;
        size_t       len;
        const char  *out;
    } cases[] = {
        { "plain", 5, "plain" },
        { "q\"b\\s", 5, "q\\\"b\\\\s" },
        { "\n\r\t\b", 4, "\\n\\r\\t\\u0008" },
        { "a\0b", 3, "a\\u0000b" },
        { "\x7f", 1, "\\u007f" },
        { "caf\xc3\xa9", 5, "caf\xc3\xa9" },
        { "\xe2\x82\xac\xf0\x9f\x98\x80", 7, "\xe2\x82\xac\xf0\x9f\x98\x80" },
        { "\xff", 1, "\\ufffd" },
        { "\xc3", 1, "\\ufffd" },
        { "\xc0\xaf", 2, "\\ufffd\\ufffd" },
        { "\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd" },
        { "\xf4\x90\x80\x80", 4, "\\ufffd\\ufffd\\ufffd\\ufffd" },
        { "\xe2\x82", 2, "\\ufffd\\ufffd" },
    };

    size_t   i;
    char    *got;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        got = escape(cases[i].in, cases[i].len);
        is_str(got, cases[i].out, "escape case %zu", i);
        free(got);
    }
}


static void
test_error_body(void)
{
    char         buf[256];
    sg_error_t   err;

    err.status = 400;
    err.message = "IDs cannot be an empty string";
    err.message_len = strlen(err.message);
    err.member = "parameter";
    err.name = (const unsigned char *) "ids[1]";
    err.name_len = 6;

    *sg_error_body((unsigned char *) buf, &err) = '\0';
    is_str(buf, "{\"errors\":[{\"message\":\"IDs cannot be an empty string\","
                "\"parameter\":\"ids[1]\"}]}", "parameter error");
    is_int(strlen(buf), sg_error_body_len(&err), "parameter error length");

    err.message = "not \"found\"";
    err.message_len = strlen(err.message);
    err.member = "field";
    err.name = NULL;

    *sg_error_body((unsigned char *) buf, &err) = '\0';
    is_str(buf, "{\"errors\":[{\"message\":\"not \\\"found\\\"\","
                "\"field\":null}]}", "null field");
    is_int(strlen(buf), sg_error_body_len(&err), "null field length");

    is_str(sg_http_reason(413), "Payload Too Large", "reason 413");
    is_str(sg_http_reason(299), "Unknown", "reason unknown");
}


int
main(void)
{
    test_escape();
    test_error_body();

    return done_testing();
}
