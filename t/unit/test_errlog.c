/*
 * sg_errlog: the normalized, secret-free error line.
 */

#include <stdlib.h>

#include <jansson.h>
#include <zlib.h>

#include "tap.h"
#include "../../ngx_sendgrid_integrations_module/sg_errlog.h"


#define HEAD                                                                  \
    "{\"source\":\"upstream\",\"status\":400,\"operation\":\"create\","       \
    "\"region\":\"global\",\"subuser\":\"acme\",\"errors\":["

#define ELLIPSIS  "\xe2\x80\xa6"


static char  line[SG_ERRLOG_LINE_MAX + 1];


static sg_errlog_input_t
upstream(int status, const char *body)
{
    sg_errlog_input_t  in;

    memset(&in, 0, sizeof(in));

    in.status = status;
    in.operation = "create";
    in.region = "global";
    in.subuser = (const unsigned char *) "acme";
    in.subuser_len = 4;
    in.body = (const unsigned char *) body;
    in.body_len = body ? strlen(body) : 0;
    in.body_max = 4096;

    return in;
}


/* Parses a line as JSON; NULL when it is not valid. */
static json_t *
parse(const char *text, size_t len)
{
    json_error_t  err;

    /* a message may hold U+0000, which is valid JSON */
    return json_loadb(text, len, JSON_ALLOW_NUL, &err);
}


/*
 * The line for in; every line produced here is also checked to be one
 * valid JSON object no longer than SG_ERRLOG_LINE_MAX.
 */
static const char *
line_of(const sg_errlog_input_t *in)
{
    size_t   len;
    json_t  *json;

    memset(line, 'X', sizeof(line));
    len = sg_errlog_line(in, line);

    json = parse(line, len);

    ok(len > 0 && len == strlen(line) && len <= SG_ERRLOG_LINE_MAX
       && json_is_object(json),
       "line of %zu bytes is a JSON object within the cap", len);

    json_decref(json);

    return line;
}


static const char *
line_for(int status, const char *body)
{
    sg_errlog_input_t  in;

    in = upstream(status, body);

    return line_of(&in);
}


/* Compresses src with zlib's window_bits (gzip, zlib or raw deflate). */
static size_t
compress_with(const char *src, size_t len, int window_bits,
    unsigned char *dst, size_t size)
{
    z_stream  zs;

    memset(&zs, 0, sizeof(zs));

    if (deflateInit2(&zs, 9, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY)
        != Z_OK)
    {
        return 0;
    }

    zs.next_in = (unsigned char *) src;
    zs.avail_in = (uInt) len;
    zs.next_out = dst;
    zs.avail_out = (uInt) size;

    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
        deflateEnd(&zs);
        return 0;
    }

    deflateEnd(&zs);

    return zs.total_out;
}


static void
test_sendgrid_errors(void)
{
    is_str(line_for(400, "{\"errors\":[{\"field\":\"name\","
                         "\"message\":\"is required\","
                         "\"help\":\"https://example.com/help\"}]}"),
           HEAD "{\"field\":\"name\",\"message\":\"is required\"}]}",
           "field, message and help: help dropped");

    is_str(line_for(400, "{\"errors\":[{\"field\":\"name\","
                         "\"message\":\"is required\"}]}"),
           HEAD "{\"field\":\"name\",\"message\":\"is required\"}]}",
           "field and message");

    is_str(line_for(400, "{\"errors\":[{\"message\":\"bad request\"}]}"),
           HEAD "{\"field\":null,\"message\":\"bad request\"}]}",
           "message only: field null");

    is_str(line_for(400, "{\"errors\":[{\"field\":null,\"message\":\"m\","
                         "\"help\":null}]}"),
           HEAD "{\"field\":null,\"message\":\"m\"}]}",
           "field null stays null");

    is_str(line_for(400, "{\"errors\":[{\"field\":7,\"message\":\"m\"}]}"),
           HEAD "{\"field\":null,\"message\":\"m\"}]}",
           "a field that is no string is null");

    is_str(line_for(400, "{\"errors\":[{\"parameter\":\"ids\","
                         "\"message\":\"invalid id\"}]}"),
           HEAD "{\"field\":\"ids\",\"message\":\"invalid id\"}]}",
           "parameter maps to field");

    is_str(line_for(400, "{\"errors\":[{\"field\":null,\"parameter\":\"ids\","
                         "\"message\":\"m\"}]}"),
           HEAD "{\"field\":\"ids\",\"message\":\"m\"}]}",
           "parameter used when field is null");

    is_str(line_for(400, "{\"id\":\"x\",\"errors\":["
                         "{\"field\":\"a\",\"message\":\"one\","
                         "\"error_id\":\"e1\"},"
                         "{\"field\":\"b\",\"message\":\"two\"}]}"),
           HEAD "{\"field\":\"a\",\"message\":\"one\"},"
           "{\"field\":\"b\",\"message\":\"two\"}]}",
           "two errors, other members dropped");

    is_str(line_for(400, "{\"errors\":[\"first\",\"second\"]}"),
           HEAD "{\"field\":null,\"message\":\"first\"},"
           "{\"field\":null,\"message\":\"second\"}]}",
           "errors as strings");

    is_str(line_for(400, "{\"errors\":[\"text\","
                         "{\"field\":\"f\",\"message\":\"m\"}]}"),
           HEAD "{\"field\":null,\"message\":\"text\"},"
           "{\"field\":\"f\",\"message\":\"m\"}]}",
           "strings and objects mixed");

    is_str(line_for(400, "{\"errors\":[{\"field\":\"\",\"message\":\"\"}]}"),
           HEAD "{\"field\":\"\",\"message\":\"\"}]}",
           "empty strings are kept as such");
}


static void
test_other_shapes(void)
{
    is_str(line_for(401, "{\"error\":\"authorization required\"}"),
           "{\"source\":\"upstream\",\"status\":401,\"operation\":\"create\","
           "\"region\":\"global\",\"subuser\":\"acme\",\"errors\":["
           "{\"field\":null,\"message\":\"authorization required\"}]}",
           "error object");

    is_str(line_for(400, "{\"message\":\"Invalid request\"}"),
           HEAD "{\"field\":null,\"message\":\"Invalid request\"}]}",
           "message object");

    is_str(line_for(400, "{\"message\":\"second\",\"error\":\"first\"}"),
           HEAD "{\"field\":null,\"message\":\"first\"}]}",
           "error wins over message");

    is_str(line_for(400, "{\"errors\":[],\"message\":\"m\"}"),
           HEAD "{\"field\":null,\"message\":\"m\"}]}",
           "empty errors array: the next shape");

    is_str(line_for(400, " [1, 2,\n 3] "),
           HEAD "{\"field\":null,\"message\":\"[1, 2, 3]\"}]}",
           "array: excerpt, whitespace folded");

    is_str(line_for(400, "42"),
           HEAD "{\"field\":null,\"message\":\"42\"}]}",
           "number: excerpt");

    is_str(line_for(400, "{\"foo\":\"bar\"}"),
           HEAD "{\"field\":null,\"message\":\"{\\\"foo\\\":\\\"bar\\\"}\"}]}",
           "other object: excerpt of its text");

    is_str(line_for(400, "{\"error\":{\"code\":1}}"),
           HEAD "{\"field\":null,"
           "\"message\":\"{\\\"error\\\":{\\\"code\\\":1}}\"}]}",
           "error that is no string: excerpt");

    is_str(line_for(400, "{\"errors\":[{\"field\":\"a\"}]}"),
           HEAD "{\"field\":null,"
           "\"message\":\"{\\\"errors\\\":[{\\\"field\\\":\\\"a\\\"}]}\"}]}",
           "error without a message: excerpt");

    is_str(line_for(400, "{\"errors\":[\"a\",3]}"),
           HEAD "{\"field\":null,"
           "\"message\":\"{\\\"errors\\\":[\\\"a\\\",3]}\"}]}",
           "errors with a number in it: excerpt");

    is_str(line_for(400, "{\"x\":\"caf\\u00e9 \\ud83d\\ude00\\n\\/\\q"
                         "\\ud800\"}"),
           HEAD "{\"field\":null,\"message\":\"{\\\"x\\\":\\\"caf\xc3\xa9 "
           "\xf0\x9f\x98\x80 /\\\\q\xef\xbf\xbd\\\"}\"}]}",
           "JSON excerpt: escapes decoded, unknown kept, lone surrogate");
}


static void
test_text_bodies(void)
{
    is_str(line_for(502, "<html>\r\n<head><title>502 Bad Gateway</title>"
                         "</head>\r\n<body>\r\n<center><h1>502 Bad Gateway"
                         "</h1></center>\r\n<hr><center>nginx</center>\r\n"
                         "</body>\r\n</html>\r\n"),
           "{\"source\":\"upstream\",\"status\":502,\"operation\":\"create\","
           "\"region\":\"global\",\"subuser\":\"acme\",\"errors\":["
           "{\"field\":null,"
           "\"message\":\"502 Bad Gateway 502 Bad Gateway nginx\"}]}",
           "nginx error page: tags stripped, whitespace folded");

    is_str(line_for(503, "<!DOCTYPE html><HTML><Head>"
                         "<STYLE type=\"text/css\">body { color: red }"
                         "</style><script>var a = \"<b>\";</SCRIPT>"
                         "<!-- <p>hidden</p> --></head><body>"
                         "<p class=\"x\">Service&nbsp;down &amp; "
                         "b<i>ack</i> 1 < 2</p></body></html>"),
           "{\"source\":\"upstream\",\"status\":503,\"operation\":\"create\","
           "\"region\":\"global\",\"subuser\":\"acme\",\"errors\":["
           "{\"field\":null,"
           "\"message\":\"Service&nbsp;down &amp; b ack 1 < 2\"}]}",
           "style, script, comments dropped; entities kept");

    is_str(line_for(502, "<p>unterminated <b"),
           "{\"source\":\"upstream\",\"status\":502,\"operation\":\"create\","
           "\"region\":\"global\",\"subuser\":\"acme\",\"errors\":["
           "{\"field\":null,\"message\":\"unterminated\"}]}",
           "unterminated tag dropped");

    is_str(line_for(400, "  upstream \t connect\r\n\r\nerror  \n"),
           HEAD "{\"field\":null,\"message\":\"upstream connect error\"}]}",
           "plain text folded and trimmed");

    is_str(line_for(400, "bad \\n path"),
           HEAD "{\"field\":null,\"message\":\"bad \\\\n path\"}]}",
           "plain text keeps backslashes");
}


static void
test_empty_bodies(void)
{
    static const struct {
        int          status;
        const char  *reason;
    } cases[] = {
        { 400, "Bad Request" },
        { 404, "Not Found" },
        { 413, "Payload Too Large" },
        { 429, "Too Many Requests" },
        { 500, "Internal Server Error" },
        { 502, "Bad Gateway" },
        { 503, "Service Unavailable" },
        { 504, "Gateway Timeout" },
        { 599, "Unknown" },
    };

    size_t  i;
    char    want[512];

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(want, sizeof(want),
                 "{\"source\":\"upstream\",\"status\":%d,"
                 "\"operation\":\"create\",\"region\":\"global\","
                 "\"subuser\":\"acme\",\"errors\":["
                 "{\"field\":null,\"message\":\"%s\"}]}",
                 cases[i].status, cases[i].reason);

        is_str(line_for(cases[i].status, ""), want,
               "empty body: reason phrase of %d", cases[i].status);
    }

    is_str(line_for(400, NULL),
           HEAD "{\"field\":null,\"message\":\"Bad Request\"}]}",
           "no body at all");

    is_str(line_for(400, " \r\n\t "),
           HEAD "{\"field\":null,\"message\":\"Bad Request\"}]}",
           "whitespace only: reason phrase");

    is_str(line_for(400, "<html><body></body></html>"),
           HEAD "{\"field\":null,\"message\":\"Bad Request\"}]}",
           "tags only: reason phrase");
}


static void
test_compressed(void)
{
    size_t              n, half;
    char                big[3000];
    const char         *body;
    unsigned char       z[4096];
    sg_errlog_input_t   in;

    body = "{\"errors\":[{\"field\":\"label\",\"message\":\"is required\"}]}";

    in = upstream(400, NULL);
    in.body = z;

    in.body_len = compress_with(body, strlen(body), 16 + MAX_WBITS, z,
                                sizeof(z));
    in.encoding = SG_ENCODING_GZIP;
    ok(in.body_len > 0, "gzip body built");
    is_str(line_of(&in),
           HEAD "{\"field\":\"label\",\"message\":\"is required\"}]}",
           "gzip body");

    in.body_len = compress_with(body, strlen(body), MAX_WBITS, z, sizeof(z));
    in.encoding = SG_ENCODING_DEFLATE;
    is_str(line_of(&in),
           HEAD "{\"field\":\"label\",\"message\":\"is required\"}]}",
           "deflate body, zlib-wrapped");

    in.body_len = compress_with(body, strlen(body), -MAX_WBITS, z, sizeof(z));
    is_str(line_of(&in),
           HEAD "{\"field\":\"label\",\"message\":\"is required\"}]}",
           "deflate body, raw");

    in.body_len = compress_with(body, strlen(body), MAX_WBITS, z, sizeof(z));
    in.encoding = SG_ENCODING_GZIP;
    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"undecodable gzip body\"}]}",
           "zlib data announced as gzip");

    in.body = (const unsigned char *) "{\"errors\":[\"plain\"]}";
    in.body_len = strlen((const char *) in.body);
    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"undecodable gzip body\"}]}",
           "plain body announced as gzip");

    in.encoding = SG_ENCODING_DEFLATE;
    in.body = (const unsigned char *) "\xff\xff\xff\xff";
    in.body_len = 4;
    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"undecodable deflate body\"}]}",
           "garbage announced as deflate");

    /* a gzip body whose CRC was damaged */
    in.body = z;
    in.body_len = compress_with(body, strlen(body), 16 + MAX_WBITS, z,
                                sizeof(z));
    in.encoding = SG_ENCODING_GZIP;
    z[in.body_len - 6] ^= 0x55;
    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"undecodable gzip body\"}]}",
           "gzip body with a bad CRC");

    /* a stream that stops before any text */
    in.body = (const unsigned char *) "\x1f\x8b\x08\x00\x00\x00";
    in.body_len = 6;
    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"undecodable gzip body\"}]}",
           "gzip header cut short by the upstream");

    in.body_cut = 1;
    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"Bad Request\"}],"
           "\"truncated\":true}",
           "gzip header cut short here: reason phrase, truncated");
    in.body_cut = 0;
    in.body = z;

    /* the upstream sent more than was inspected: the stream stops short */
    memset(big, 'a', sizeof(big));
    memcpy(big, "upstream says: ", 15);
    big[sizeof(big) - 1] = '\0';
    n = compress_with(big, strlen(big), 16 + MAX_WBITS, z, sizeof(z));
    half = n / 2;
    in.body_len = half;
    in.body_cut = 1;
    ok(strstr(line_of(&in), "\"message\":\"upstream says: aaa") != NULL
       && strstr(line, "}],\"truncated\":true}") != NULL,
       "gzip body cut: the text so far, truncated");

    in.body_cut = 0;
    ok(strstr(line_of(&in), "\"message\":\"upstream says: aaa") != NULL
       && strstr(line, "}],\"truncated\":true}") != NULL,
       "gzip stream that stops short is marked truncated too");

    in.body_len = n;
    in.body_max = 20;
    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"upstream says: aaaaa\"}],"
           "\"truncated\":true}",
           "decompressed text capped at body_max");

    in.body_max = 0;
    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"Bad Request\"}],"
           "\"truncated\":true}",
           "body_max 0 keeps no text");

    in.body_max = 4096;
    in.body_len = 0;
    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"Bad Request\"}]}",
           "empty gzip body: reason phrase");

    /* the cap at the exact length of the text, and one byte under it */
    in.body_len = compress_with(body, strlen(body), 16 + MAX_WBITS, z,
                                sizeof(z));
    in.body_max = strlen(body);
    is_str(line_of(&in),
           HEAD "{\"field\":\"label\",\"message\":\"is required\"}]}",
           "decompressed text exactly body_max long is whole");

    in.body_max = strlen(body) - 1;
    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"{\\\"errors\\\":[{"
           "\\\"field\\\":\\\"label\\\",\\\"message\\\":"
           "\\\"is required\\\"}]\"}],\"truncated\":true}",
           "one byte over body_max: cut, excerpt");
}


static void
test_cut_bodies(void)
{
    sg_errlog_input_t  in;

    static const sg_secret_t  cut_secret = {
        (const unsigned char *) "other-key-0123456789", 20
    };

    in = upstream(400, "{\"errors\":[{\"field\":\"name\",\"message\":\"is re");
    in.body_cut = 1;

    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"{\\\"errors\\\":[{\\\"field"
           "\\\":\\\"name\\\",\\\"message\\\":\\\"is re\"}],"
           "\"truncated\":true}",
           "JSON cut at the limit: excerpt, truncated");

    in = upstream(502, "<p>bad key other-key-01234");
    in.body_cut = 1;
    in.secrets = &cut_secret;
    in.nsecrets = 1;

    is_str(line_of(&in),
           "{\"source\":\"upstream\",\"status\":502,\"operation\":\"create\","
           "\"region\":\"global\",\"subuser\":\"acme\",\"errors\":["
           "{\"field\":null,\"message\":\"bad key\"}],\"truncated\":true}",
           "a body cut inside a secret shows none of it");

    in = upstream(502, "<p>bad key other-key-01234");
    in.secrets = &cut_secret;
    in.nsecrets = 1;

    ok(strstr(line_of(&in), "other-key-01234") != NULL,
       "a whole body keeps a text that merely starts like a secret");

    in = upstream(400, "{\"errors\":[\"whole\"]}");
    in.body_cut = 1;

    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"whole\"}],\"truncated\":true}",
           "a cut body that still parses is marked truncated");
}


static void
test_bytes(void)
{
    sg_errlog_input_t  in;

    is_str(line_for(400, "bad \xff\xfe byte \xc3"),
           HEAD "{\"field\":null,"
           "\"message\":\"bad \\ufffd\\ufffd byte \\ufffd\"}]}",
           "invalid UTF-8 in a text body");

    is_str(line_for(400, "{\"message\":\"caf\xc3\xa9\xff\"}"),
           HEAD "{\"field\":null,"
           "\"message\":\"{\\\"message\\\":\\\"caf\xc3\xa9\\ufffd\\\"}\"}]}",
           "invalid UTF-8 in JSON: excerpt");

    is_str(line_for(400, "{\"errors\":[{\"field\":\"f\\u0001\","
                         "\"message\":\"a\\u0000b\\u001f\\t\\\"q\\\\\\u007f\"}"
                         "]}"),
           HEAD "{\"field\":\"f\\u0001\","
           "\"message\":\"a\\u0000b\\u001f\\t\\\"q\\\\\\u007f\"}]}",
           "control bytes, NUL, quotes and backslashes escaped");

    is_str(line_for(400, "ctl\x01\x1b[31m red\x7f"),
           HEAD "{\"field\":null,"
           "\"message\":\"ctl\\u0001\\u001b[31m red\\u007f\"}]}",
           "control bytes in a text body escaped");

    in = upstream(400, "{\"message\":\"a\\u0000b\"}");
    in.body_len = strlen("{\"message\":\"a\\u0000b\"}");
    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"a\\u0000b\"}]}",
           "NUL inside a JSON string accepted and escaped");
}


/* Whether line holds no prefix of secret of 4 bytes or more. */
static int
no_prefix_of(const char *text, const char *secret)
{
    char    prefix[256];
    size_t  len;

    for (len = strlen(secret); len >= 4; len--) {
        memcpy(prefix, secret, len);
        prefix[len] = '\0';

        if (strstr(text, prefix) != NULL) {
            printf("# found \"%s\"\n", prefix);
            return 0;
        }
    }

    return 1;
}


static void
test_redaction(void)
{
    char               body[1024], subuser[64];
    sg_secret_t        secrets[3];
    sg_errlog_input_t  in;

    static const char  key[] = "SG.Abc123_-x.Yz9";
    static const char  other[] = "other-key-0123456789";
    static const char  write_key[] = "wk_5f3c2a1b9d";

    secrets[0].data = (const unsigned char *) other;
    secrets[0].len = strlen(other);
    secrets[1].data = (const unsigned char *) write_key;
    secrets[1].len = strlen(write_key);
    secrets[2].data = (const unsigned char *) "";
    secrets[2].len = 0;

    in = upstream(400, "{\"errors\":[{\"field\":\"key SG.Abc123_-x.Yz9\","
                       "\"message\":\"The key SG.Abc123_-x.Yz9, is bad\"}]}");
    in.secrets = secrets;
    in.nsecrets = 3;
    is_str(line_of(&in),
           HEAD "{\"field\":\"key [REDACTED]\","
           "\"message\":\"The key [REDACTED], is bad\"}]}",
           "SG. token in field and message, empty secret ignored");

    in.body = (const unsigned char *)
              "{\"message\":\"keys other-key-0123456789 and "
              "wk_5f3c2a1b9d:wk_5f3c2a1b9d\"}";
    in.body_len = strlen((const char *) in.body);
    is_str(line_of(&in),
           HEAD "{\"field\":null,"
           "\"message\":\"keys [REDACTED] and [REDACTED]:[REDACTED]\"}]}",
           "configured key and write_key values");

    in.body = (const unsigned char *)
              "{\"message\":\"SG\\u002eAbc123 w\\u006b_5f3c2a1b9d "
              "SG\\u002eAbc123\"";
    in.body_len = strlen((const char *) in.body);
    in.body_cut = 1;
    is_str(line_of(&in),
           HEAD "{\"field\":null,"
           "\"message\":\"{\\\"message\\\":\\\"[REDACTED] [REDACTED] "
           "[REDACTED]\\\"\"}],\"truncated\":true}",
           "escaped secrets in a cut JSON body are decoded, then redacted");
    in.body_cut = 0;

    in.body = (const unsigned char *)
              "<p>SG.<b>x</b> SG.</p><p>SG.Abc123</p><p>prefixSG.zz</p>";
    in.body_len = strlen((const char *) in.body);
    is_str(line_of(&in),
           HEAD "{\"field\":null,"
           "\"message\":\"SG. x SG. [REDACTED] prefix[REDACTED]\"}]}",
           "SG. tokens in HTML; a bare \\\"SG.\\\" is no key");

    in.body = (const unsigned char *)
              "{\"message\":\"other-key-0123456789SG.tail-of-key more\"}";
    in.body_len = strlen((const char *) in.body);
    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"[REDACTED][REDACTED] more\"}"
           "]}",
           "adjacent secrets: one [REDACTED] each");

    /* a secret that starts inside an SG. token and goes on past it */
    secrets[2].data = (const unsigned char *) "Abc and the rest";
    secrets[2].len = strlen("Abc and the rest");
    in.body = (const unsigned char *)
              "{\"message\":\"SG.Abc and the rest!\"}";
    in.body_len = strlen((const char *) in.body);
    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"[REDACTED]!\"}]}",
           "overlapping secrets make one [REDACTED], no tail shown");

    /* one that starts inside a run of SG. tokens and goes on past it */
    secrets[2].data = (const unsigned char *) "def xyz";
    secrets[2].len = strlen("def xyz");
    in.body = (const unsigned char *)
              "{\"message\":\"SG.abcSG.def xyz rest SG.SG.SG.SG.SG. SG.\"}";
    in.body_len = strlen((const char *) in.body);
    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"[REDACTED] rest [REDACTED] "
           "SG.\"}]}",
           "secret going on past a run of SG. tokens");

    /* a secret that starts inside a multi-byte character takes it */
    secrets[2].data = (const unsigned char *) "\xa9secret";
    secrets[2].len = strlen("\xa9secret");
    in.body = (const unsigned char *) "{\"message\":\"caf\xc3\xa9secret\"}";
    in.body_len = strlen((const char *) in.body);
    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"caf[REDACTED]\"}]}",
           "secret starting inside a character");
    secrets[2].len = 0;

    in.body = (const unsigned char *)
              "{\"message\":\"xother-key-01234other-key-0123456789\"}";
    in.body_len = strlen((const char *) in.body);
    is_str(line_of(&in),
           HEAD "{\"field\":null,\"message\":\"xother-key-01234[REDACTED]\"}"
           "]}",
           "a partial match is text, the full one is redacted");

    memcpy(subuser, "acme+SG.Abc123_-x.Yz9+wk_5f3c2a1b9d", 35);
    in.subuser = (const unsigned char *) subuser;
    in.subuser_len = 35;
    in.body = NULL;
    in.body_len = 0;
    is_str(line_of(&in),
           "{\"source\":\"upstream\",\"status\":400,\"operation\":\"create\","
           "\"region\":\"global\",\"subuser\":\"acme+[REDACTED]+[REDACTED]\","
           "\"errors\":[{\"field\":null,\"message\":\"Bad Request\"}]}",
           "subuser redacted");

    /* secrets straddling the message cap: never a prefix */
    in = upstream(400, NULL);
    in.secrets = secrets;
    in.nsecrets = 2;

    memset(body, 0, sizeof(body));
    memcpy(body, "{\"message\":\"", 12);
    memset(body + 12, 'x', 250);
    strcat(body, key);
    strcat(body, " tail\"}");
    in.body = (const unsigned char *) body;
    in.body_len = strlen(body);
    ok(no_prefix_of(line_of(&in), key)
       && strstr(line, "xxx" ELLIPSIS "\"}]") != NULL
       && strstr(line, "\"truncated\":true") != NULL,
       "SG. key at the cap: cut before it, no prefix shown");

    memset(body + 12, 'x', 250);
    strcpy(body + 262, other);
    strcat(body, " tail\"}");
    in.body_len = strlen(body);
    ok(no_prefix_of(line_of(&in), other)
       && strstr(line, "xxx" ELLIPSIS "\"}]") != NULL,
       "configured key at the cap: no prefix shown");

    memset(body + 12, 'x', 243);
    strcpy(body + 255, write_key);
    strcat(body, " tail\"}");
    in.body_len = strlen(body);
    ok(no_prefix_of(line_of(&in), write_key)
       && strstr(line, "xxx[REDACTED]" ELLIPSIS "\"}]") != NULL,
       "write_key across the cap: whole [REDACTED], then the cut");

    /* a field cut at its cap */
    snprintf(body, sizeof(body),
             "{\"errors\":[{\"field\":\"%.56s%s\",\"message\":\"m\"}]}",
             "ffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
             write_key);
    in.body_len = strlen(body);
    ok(no_prefix_of(line_of(&in), write_key)
       && strstr(line, "\"field\":\"ffff") != NULL,
       "write_key across the field cap: no prefix shown");
}


static void
test_caps(void)
{
    size_t              i, n;
    char               *body, *p;
    json_t             *json, *errors, *message;
    sg_errlog_input_t   in;

    body = malloc(65536);

    /* many long errors with long fields: messages shortened, then dropped */
    p = body + sprintf(body, "{\"errors\":[");

    for (i = 0; i < 30; i++) {
        p += sprintf(p, "%s{\"field\":\"field_%02zu_", i ? "," : "", i);
        memset(p, 'f', 55);
        p += 55;
        p += sprintf(p, "\",\"message\":\"");
        memset(p, 'm', 400);
        p += 400;
        p += sprintf(p, "\\\"\\\\\\u0001\"}");
    }

    strcpy(p, "]}");

    in = upstream(400, body);
    n = strlen(line_of(&in));
    json = parse(line, n);
    errors = json_object_get(json, "errors");

    ok(n <= SG_ERRLOG_LINE_MAX && json_array_size(errors) >= 1
       && json_array_size(errors) < SG_ERRLOG_ERRORS_MAX
       && json_is_true(json_object_get(json, "truncated")),
       "long fields: entries dropped after messages were shortened "
       "(%zu entries, %zu bytes)", json_array_size(errors), n);

    /* the entry dropped would not fit even with its message at the least */
    message = json_object_get(json_array_get(errors, 0), "message");
    ok(json_string_length(message) >= SG_ERRLOG_MESSAGE_MIN
       && json_string_length(message) < SG_ERRLOG_MESSAGE_MAX
       && n + sizeof(",{\"field\":\"\",\"message\":\"\"}") - 1
          + SG_ERRLOG_FIELD_MAX + SG_ERRLOG_MESSAGE_MIN > SG_ERRLOG_LINE_MAX,
       "messages no shorter than the minimum (%zu), one more entry "
       "would not fit", json_string_length(message));

    json_decref(json);

    /* short fields: all ten entries kept, messages shortened alike */
    p = body + sprintf(body, "{\"errors\":[");

    for (i = 0; i < 12; i++) {
        p += sprintf(p, "%s{\"field\":\"f%zu\",\"message\":\"", i ? "," : "",
                     i);
        memset(p, 'm', 300);
        p += 300;
        p += sprintf(p, "\"}");
    }

    strcpy(p, "]}");

    in = upstream(400, body);
    n = strlen(line_of(&in));
    json = parse(line, n);
    errors = json_object_get(json, "errors");
    message = json_object_get(json_array_get(errors, 9), "message");

    ok(json_array_size(errors) == SG_ERRLOG_ERRORS_MAX
       && json_string_length(message) > SG_ERRLOG_MESSAGE_MIN
       && json_string_length(message) < SG_ERRLOG_MESSAGE_MAX
       && memcmp(json_string_value(message)
                 + json_string_length(message) - 3, ELLIPSIS, 3) == 0
       && json_is_true(json_object_get(json, "truncated")),
       "short fields: ten entries, messages shortened to fit");
    ok(n > SG_ERRLOG_LINE_MAX - 30,
       "the shortened line uses the room it has (%zu bytes)", n);

    json_decref(json);

    /* one message over its cap, cut on a character boundary */
    p = body + sprintf(body, "{\"message\":\"");

    for (i = 0; i < 200; i++) {
        p += sprintf(p, "\xc3\xa9");
    }

    strcpy(p, "\"}");

    in = upstream(400, body);
    line_of(&in);
    p = strstr(line, "\"message\":\"") + 11;
    n = strstr(p, "\"") - p;
    ok(n <= SG_ERRLOG_MESSAGE_MAX && n == 126 * 2 + 3
       && memcmp(p + 252, ELLIPSIS, 3) == 0
       && strstr(line, "\"}],\"truncated\":true}") != NULL,
       "message cut at %zu bytes on a UTF-8 boundary", n);

    /* eleven errors: ten kept */
    p = body + sprintf(body, "{\"errors\":[");

    for (i = 0; i < 11; i++) {
        p += sprintf(p, "%s\"e%zu\"", i ? "," : "", i);
    }

    strcpy(p, "]}");

    in = upstream(400, body);
    ok(strstr(line_of(&in), "\"e9\"}],\"truncated\":true}") != NULL
       && strstr(line, "e10") == NULL,
       "more than ten errors: ten kept, truncated");

    /* long subuser, escapes counted as written */
    memset(body, '"', 100);
    in = upstream(400, "{}");
    in.subuser = (const unsigned char *) body;
    in.subuser_len = 100;
    line_of(&in);
    p = strstr(line, "\"subuser\":\"") + 11;
    n = strstr(p, "\",\"errors\"") - p;
    ok(n <= SG_ERRLOG_NAME_MAX && n == 30 * 2 + 3
       && strstr(line, "\"truncated\":true}") != NULL,
       "subuser of quotes capped at %zu written bytes", n);

    free(body);
}


static void
test_gateway(void)
{
    sg_errlog_input_t  in;

    in = upstream(400, "{\"errors\":[{\"message\":\"invalid JSON\","
                       "\"field\":null}]}");
    in.gateway = 1;
    in.report_only = 1;
    in.operation = "update";
    in.region = "eu";
    in.subuser = NULL;

    is_str(line_of(&in),
           "{\"source\":\"gateway\",\"status\":400,\"operation\":\"update\","
           "\"region\":\"eu\",\"subuser\":null,\"errors\":["
           "{\"field\":null,\"message\":\"invalid JSON\"}],"
           "\"report_only\":true}",
           "gateway source, report_only, no subuser");

    in.operation = "";
    in.status = 404;
    in.report_only = 0;
    in.body = (const unsigned char *)
              "{\"errors\":[{\"message\":\"route not found\"}]}";
    in.body_len = strlen((const char *) in.body);

    is_str(line_of(&in),
           "{\"source\":\"gateway\",\"status\":404,\"operation\":null,"
           "\"region\":\"eu\",\"subuser\":null,\"errors\":["
           "{\"field\":null,\"message\":\"route not found\"}]}",
           "no operation: null");
}


/* the gateway's own errors, made from the error without writing its body */

typedef struct {
    const char  *data;
    size_t       len;
} text_t;

#define T(s)  { s, sizeof(s) - 1 }


/*
 * Whether the line made from err directly is byte for byte the one made
 * from the body sg_error_body() writes for it.
 */
static int
same_as_body(const sg_errlog_input_t *base, const sg_error_t *err)
{
    size_t             n, m;
    unsigned char     *body;
    sg_errlog_input_t  in;

    static char        from_body[SG_ERRLOG_LINE_MAX + 1];

    body = malloc(sg_error_body_len(err));
    if (body == NULL) {
        return 0;
    }

    in = *base;
    in.error = NULL;
    in.encoding = SG_ENCODING_IDENTITY;
    in.body = body;
    in.body_len = (size_t) (sg_error_body(body, err) - body);

    memset(from_body, 'X', sizeof(from_body));
    n = sg_errlog_line(&in, from_body);

    in.error = err;
    in.body = NULL;
    in.body_len = 0;

    memset(line, 'Y', sizeof(line));
    m = sg_errlog_line(&in, line);

    free(body);

    if (n == 0 || m != n || memcmp(line, from_body, n + 1) != 0) {
        printf("# from the body:  %s\n# from the error: %s\n", from_body,
               line);
        return 0;
    }

    return 1;
}


static sg_error_t
gateway_error(const char *message, size_t message_len, const char *member,
    const char *name, size_t name_len)
{
    sg_error_t  err;

    err.status = 400;
    err.message = message;
    err.message_len = message_len;
    err.member = member;
    err.name = (const unsigned char *) name;
    err.name_len = name_len;

    return err;
}


static void
test_gateway_direct(void)
{
    char               *long_text;
    size_t              i, j, k, n, failed, total;
    unsigned int        seed;
    sg_error_t          err;
    sg_secret_t         secrets[3];
    sg_errlog_input_t   in;
    char                text[512], name[96];

    static const char   key[] = "SG.key-0123456789";
    static const char   write_key[] = "wk_\xef\xbf\xbd" "12345";

    static const text_t  messages[] = {
        T(""),
        T("invalid JSON"),
        T("properties.destination_region must be EU or US"),
        T("say \"hi\" \\ back"),
        T("ctl \x01\x1f\x7f tab\t nl\n cr\r"),
        T("nul \0 inside"),
        T("bad \xff\xfe byte \xc3"),
        T("overlong \xc0\xaf surrogate \xed\xa0\x80 big \xf4\x90\x80\x80"),
        T("caf\xc3\xa9 \xf0\x9f\x98\x80 \xef\xbf\xbd"),
        T("key SG.Abc123_-x.Yz9 here"),
        T("bare SG. and SG.SG.x S G"),
        T("wk_\xff" "12345 read back as the write_key"),
        T("the key SG.key-0123456789, twice: SG.key-0123456789"),
        T("Abc and Abcd")
    };

    static const text_t  names[] = {
        T("request"),
        T("ids[3]"),
        T("na\"me\\"),
        T("ctl\x01\x7f"),
        T("bad\xff\xc3"),
        T("SG.Abc123"),
        T("wk_\xff" "12345"),
        T("nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
          "nnnnnnnnn")
    };

    static const char  *members[] = { "field", "parameter" };

    /* fragments of random messages: secrets, tokens, escapes, bad bytes */
    static const char  *pieces[] = {
        "a", "S", "G", ".", "SG.", "SG.x", " ", "\"", "\\", "\x01", "\x7f",
        "\n", "\xff", "\xc3", "\xa9", "\xc3\xa9", "\xef\xbf\xbd", "\xed\xa0",
        "wk_", "12345", "key-0123456789", "Abc", "d", "\xf0\x9f\x98\x80"
    };

    memset(&in, 0, sizeof(in));
    in.gateway = 1;
    in.status = 400;
    in.operation = "create";
    in.region = "global";

    err = gateway_error("properties.destination_region must be EU or US",
                        strlen("properties.destination_region must be EU "
                               "or US"),
                        "field", "request", 7);
    in.error = &err;
    in.body = (const unsigned char *) "{\"message\":\"not this body\"}";
    in.body_len = strlen((const char *) in.body);

    is_str(line_of(&in),
           "{\"source\":\"gateway\",\"status\":400,\"operation\":\"create\","
           "\"region\":\"global\",\"subuser\":null,\"errors\":["
           "{\"field\":\"request\",\"message\":\"properties.destination_region"
           " must be EU or US\"}]}",
           "gateway error made from the error, the body ignored");

    err = gateway_error("IDs cannot be an empty string",
                        strlen("IDs cannot be an empty string"), "parameter",
                        "ids[1]", 6);
    in.operation = "delete";
    is_str(line_of(&in),
           "{\"source\":\"gateway\",\"status\":400,\"operation\":\"delete\","
           "\"region\":\"global\",\"subuser\":null,\"errors\":["
           "{\"field\":\"ids[1]\",\"message\":\"IDs cannot be an empty "
           "string\"}]}",
           "parameter maps to field");

    err = gateway_error("resource not found", strlen("resource not found"),
                        "field", NULL, 0);
    in.operation = "";
    in.status = 404;
    is_str(line_of(&in),
           "{\"source\":\"gateway\",\"status\":404,\"operation\":null,"
           "\"region\":\"global\",\"subuser\":null,\"errors\":["
           "{\"field\":null,\"message\":\"resource not found\"}]}",
           "a null name is a null field");

    /* a byte of invalid UTF-8 reads back as U+FFFD, which a secret holds */
    secrets[0].data = (const unsigned char *) key;
    secrets[0].len = strlen(key);
    secrets[1].data = (const unsigned char *) write_key;
    secrets[1].len = strlen(write_key);
    secrets[2].data = (const unsigned char *) "Abc";
    secrets[2].len = 3;
    in.secrets = secrets;
    in.nsecrets = 2;
    in.status = 400;
    err = gateway_error("bad wk_\xff" "12345\xfe", 14, "field",
                        "wk_\xff" "12345", 9);
    is_str(line_of(&in),
           "{\"source\":\"gateway\",\"status\":400,\"operation\":null,"
           "\"region\":\"global\",\"subuser\":null,\"errors\":["
           "{\"field\":\"[REDACTED]\",\"message\":\"bad [REDACTED]"
           "\xef\xbf\xbd\"}]}",
           "invalid UTF-8 read as U+FFFD before redaction, as from the body");

    /* every message with every name, member, secrets and flags */
    in.operation = "create";
    in.subuser = (const unsigned char *) "acme";
    in.subuser_len = 4;

    failed = 0;
    total = 0;

    for (i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
        for (j = 0; j <= sizeof(names) / sizeof(names[0]); j++) {
            for (k = 0; k < 4; k++) {
                err = gateway_error(messages[i].data, messages[i].len,
                                    members[k & 1],
                                    j ? names[j - 1].data : NULL,
                                    j ? names[j - 1].len : 0);
                in.report_only = (k >> 1) & 1;
                in.nsecrets = (k >> 1) ? 3 : 2;

                failed += !same_as_body(&in, &err);
                total++;
            }
        }
    }

    ok(failed == 0, "%zu errors: %zu lines differ from the body's", total,
       failed);

    /* long messages: caps, cuts on characters and around secrets */
    long_text = malloc(4096);

    for (i = 0, n = 0; i < 300; i++) {
        n += (size_t) sprintf(long_text + n, "\xc3\xa9");
    }

    err = gateway_error(long_text, n, "field", "request", 7);
    ok(same_as_body(&in, &err), "600 bytes of U+00E9: the same cut");

    memset(long_text, 'x', 255);
    memcpy(long_text + 255, key, strlen(key));
    err = gateway_error(long_text, 255 + strlen(key), "field", NULL, 0);
    ok(same_as_body(&in, &err), "a key across the cap: the same cut");

    memset(long_text, '"', 300);
    err = gateway_error(long_text, 300, "field", long_text, 100);
    ok(same_as_body(&in, &err), "quotes over the caps: the same cut");

    for (i = 0; i < 1000; i++) {
        long_text[i] = (i % 37 == 0) ? '\xff' : (i % 41 == 0) ? '\x01' : 'm';
    }

    err = gateway_error(long_text, 1000, "field", "request", 7);
    ok(same_as_body(&in, &err), "bad bytes and controls over the cap");

    free(long_text);

    /* random messages and names made of the pieces */
    failed = 0;
    seed = 12345;

    for (i = 0; i < 3000; i++) {
        n = 0;
        seed = seed * 1103515245 + 12345;
        k = (seed >> 16) % ((i % 10 == 0) ? 150 : 30);

        for (j = 0; j < k && n < sizeof(text) - 8; j++) {
            seed = seed * 1103515245 + 12345;
            n += (size_t) sprintf(text + n, "%s",
                                  pieces[(seed >> 16) % (sizeof(pieces)
                                                  / sizeof(pieces[0]))]);
        }

        seed = seed * 1103515245 + 12345;
        k = (seed >> 16) % 8;

        for (j = 0; j < k; j++) {
            seed = seed * 1103515245 + 12345;
            name[j] = *pieces[(seed >> 16) % (sizeof(pieces)
                                               / sizeof(pieces[0]))];
        }

        err = gateway_error(text, n, members[i & 1], (i % 5) ? name : NULL,
                            k);
        in.nsecrets = 2 + (i & 1);
        in.report_only = (i >> 1) & 1;
        in.subuser = (i % 3) ? (const unsigned char *) name : NULL;
        in.subuser_len = k;

        failed += !same_as_body(&in, &err);
    }

    ok(failed == 0, "3000 random errors: %zu lines differ from the body's",
       failed);
}


/* the scanner passes over bytes at which nothing starts; these do */
static void
test_scanner(void)
{
    char               text[300], cut[300];
    unsigned char      c, out[8];
    sg_error_t         err;
    sg_secret_t        secrets[5];
    sg_errlog_input_t  in;

    for (c = 0; c < 128; c++) {
        if (sg_json_escape(out, &c, 1) - out != sg_json_ascii_len[c]
            || sg_json_escaped_len(&c, 1) != sg_json_ascii_len[c])
        {
            break;
        }
    }

    ok(c == 128, "the escaped length of every ASCII byte is as written");

    secrets[0].data = (const unsigned char *) "Sekret-42";
    secrets[0].len = strlen("Sekret-42");
    secrets[1].data = (const unsigned char *) "\xc3\xa9t\xc3\xa9-secret";
    secrets[1].len = strlen("\xc3\xa9t\xc3\xa9-secret");
    secrets[2].data = (const unsigned char *) "\x01" "ctl-secret";
    secrets[2].len = strlen("\x01" "ctl-secret");
    secrets[3].data = (const unsigned char *) "\"quoted";
    secrets[3].len = strlen("\"quoted");
    secrets[4].data = (const unsigned char *) "\xff" "bad";
    secrets[4].len = strlen("\xff" "bad");

    memset(&in, 0, sizeof(in));
    in.gateway = 1;
    in.status = 400;
    in.operation = "create";
    in.region = "global";
    in.secrets = secrets;
    in.nsecrets = 5;
    in.error = &err;

#define MESSAGE(s)                                                            \
    err = gateway_error(s, sizeof(s) - 1, "field", NULL, 0)

#define LINE(m)                                                               \
    "{\"source\":\"gateway\",\"status\":400,\"operation\":\"create\","        \
    "\"region\":\"global\",\"subuser\":null,\"errors\":["                     \
    "{\"field\":null,\"message\":\"" m "\"}]}"

    MESSAGE("a Sekret-42 b Sekret-4 SG.x Sx");
    is_str(line_of(&in), LINE("a [REDACTED] b Sekret-4 [REDACTED] Sx"),
           "a secret starting with S, beside SG. tokens");

    MESSAGE("caf\xc3\xa9 \xc3\xa9t\xc3\xa9-secret.");
    is_str(line_of(&in), LINE("caf\xc3\xa9 [REDACTED]."),
           "a secret starting with a multi-byte character");

    MESSAGE("x\x01" "ctl-secret\x01y");
    is_str(line_of(&in), LINE("x[REDACTED]\\u0001y"),
           "a secret starting with a control byte");

    MESSAGE("say \"quoted\"");
    is_str(line_of(&in), LINE("say [REDACTED]\\\""),
           "a secret starting with a quote");

    /* a text body keeps its bytes; the gateway's error reads as U+FFFD */
    in.error = NULL;
    in.body = (const unsigned char *) "\xff" "bad \xff" "ba \xfe" "bad";
    in.body_len = strlen((const char *) in.body);
    is_str(line_of(&in), LINE("[REDACTED] \\ufffdba \\ufffdbad"),
           "a secret of invalid UTF-8 in a text body");
    in.error = &err;

    MESSAGE("plain text, then at the end: Sekret-42");
    is_str(line_of(&in), LINE("plain text, then at the end: [REDACTED]"),
           "a secret at the end of a plain run");

    /* a control byte that does not fit before the cap is cut whole */
    memset(text, 'x', 255);
    text[255] = '\x01';
    err = gateway_error(text, 256, "field", NULL, 0);
    memset(cut, 'x', 253);
    strcpy(cut + 253, ELLIPSIS);
    ok(strstr(line_of(&in), cut) != NULL
       && strstr(line, "x" ELLIPSIS "\"}],\"truncated\":true}") != NULL
       && strstr(line, "\\u0001") == NULL,
       "the plain run stops where the cut mark must fit");

#undef MESSAGE
#undef LINE
}


int
main(void)
{
    test_sendgrid_errors();
    test_other_shapes();
    test_text_bodies();
    test_empty_bodies();
    test_compressed();
    test_cut_bodies();
    test_bytes();
    test_redaction();
    test_caps();
    test_gateway();
    test_gateway_direct();
    test_scanner();

    return done_testing();
}
