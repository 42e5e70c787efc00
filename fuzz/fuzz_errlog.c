/*
 * sg_errlog_line() on arbitrary error responses.  The line must be one
 * JSON object of the documented members, in order, no longer than
 * SG_ERRLOG_LINE_MAX, and no string in it may show the configured secret
 * or an SG. token.
 *
 * Input layout:
 *   [0]      flags: 0x01 gateway, 0x02 report_only, 0x04 body cut,
 *            0x08 subuser null, 0x10 no operation, 0x20 compress the body
 *            here first; bits 6-7 the encoding: identity, gzip, deflate
 *            (zlib), deflate (raw when compressed here)
 *   [1..2]   status, a signed 16-bit number
 *   [3]      body_max / 8
 *   [4]      where a compressed body is cut, in 256ths, with 0x04
 *   [5]      secret length (low 5 bits), then the secret: printable ASCII
 *   next     subuser length (low 6 bits), then the subuser bytes
 *   rest     the body
 *
 * The same input is then read as the gateway's own error: the body bytes
 * its message, the subuser bytes its name (null when status & 2), member
 * "parameter" when status & 1, else "field".  The line made from the error
 * directly must be the one made from the body sg_error_body() writes.
 */

#define _GNU_SOURCE     /* memmem() */

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <zlib.h>

#include "../ngx_sendgrid_integrations_module/sg_errlog.h"


#define REDACTED  "[REDACTED]"

static const char  *members[] = {
    "source", "status", "operation", "region", "subuser", "errors",
    "report_only", "truncated"
};


static int
is_key_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}


/* Whether [p, p + n) holds an SG. token: "SG." and a key character. */
static int
has_sg_token(const char *p, size_t n)
{
    size_t  i;

    for (i = 0; i + 3 < n; i++) {
        if (memcmp(p + i, "SG.", 3) == 0 && is_key_char(p[i + 3])) {
            return 1;
        }
    }

    return 0;
}


/*
 * Whether the decoded string s shows the secret: in the text between its
 * [REDACTED] marks (the marks themselves may contain a short secret).
 */
static int
shows_secret(const json_t *s, const unsigned char *secret, size_t len)
{
    size_t       n, piece;
    const char  *p, *mark;

    if (!json_is_string(s)) {
        return 0;
    }

    p = json_string_value(s);
    n = json_string_length(s);

    while (n) {
        mark = memmem(p, n, REDACTED, sizeof(REDACTED) - 1);
        piece = mark ? (size_t) (mark - p) : n;

        if (len && memmem(p, piece, secret, len) != NULL) {
            return 1;
        }

        if (has_sg_token(p, piece)) {
            return 1;
        }

        if (mark == NULL) {
            break;
        }

        p += piece + sizeof(REDACTED) - 1;
        n -= piece + sizeof(REDACTED) - 1;
    }

    return 0;
}


static size_t
compress_with(const uint8_t *src, size_t len, int window_bits, uint8_t *dst,
    size_t size)
{
    z_stream  zs;

    memset(&zs, 0, sizeof(zs));

    if (deflateInit2(&zs, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY)
        != Z_OK)
    {
        return 0;
    }

    zs.next_in = (uint8_t *) src;
    zs.avail_in = (uInt) len;
    zs.next_out = dst;
    zs.avail_out = (uInt) size;

    assert(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    deflateEnd(&zs);

    return zs.total_out;
}


static void
check_line(const char *line, size_t len, const sg_errlog_input_t *in,
    const unsigned char *secret, size_t secret_len)
{
    size_t        i, m;
    json_t       *json, *errors, *item;
    const char   *key;
    json_error_t  err;

    assert(len > 0 && len <= SG_ERRLOG_LINE_MAX && strlen(line) == len);
    assert(!has_sg_token(line, len));

    json = json_loadb(line, len, JSON_ALLOW_NUL, &err);
    assert(json_is_object(json));

    /* the members in their order, the optional ones only when true */
    m = 0;
    key = NULL;

    json_object_foreach(json, key, item) {
        /* only report_only and truncated may be left out */
        while (m < 8 && strcmp(members[m], key) != 0) {
            assert(m >= 6);
            m++;
        }

        assert(m < 8);
        m++;
    }

    assert(m >= 6);
    assert(strcmp(json_string_value(json_object_get(json, "source")),
                  in->gateway ? "gateway" : "upstream") == 0);
    assert(json_integer_value(json_object_get(json, "status"))
           == in->status);
    assert(json_is_true(json_object_get(json, "report_only"))
           == (in->report_only != 0));
    assert(json_object_get(json, "truncated") == NULL
           || json_is_true(json_object_get(json, "truncated")));
    assert(in->body_cut == 0
           || json_is_true(json_object_get(json, "truncated")));
    assert(in->subuser != NULL
           || json_is_null(json_object_get(json, "subuser")));
    assert(!shows_secret(json_object_get(json, "subuser"), secret,
                         secret_len));

    errors = json_object_get(json, "errors");
    assert(json_array_size(errors) >= 1
           && json_array_size(errors) <= SG_ERRLOG_ERRORS_MAX);

    json_array_foreach(errors, i, item) {
        assert(json_object_size(item) == 2);
        assert(strcmp(json_object_iter_key(json_object_iter(item)), "field")
               == 0);
        assert(json_is_string(json_object_get(item, "field"))
               || json_is_null(json_object_get(item, "field")));
        assert(json_is_string(json_object_get(item, "message")));
        assert(!shows_secret(json_object_get(item, "field"), secret,
                             secret_len));
        assert(!shows_secret(json_object_get(item, "message"), secret,
                             secret_len));
    }

    json_decref(json);
}


/* The line of err made directly equals the one made from its body. */
static void
check_error(const sg_errlog_input_t *base, const sg_error_t *err,
    const unsigned char *secret, size_t secret_len)
{
    size_t             n, m;
    unsigned char     *body;
    sg_errlog_input_t  in;

    static char        direct[SG_ERRLOG_LINE_MAX + 1];
    static char        from_body[SG_ERRLOG_LINE_MAX + 1];

    body = malloc(sg_error_body_len(err));
    assert(body != NULL);

    in = *base;
    in.encoding = SG_ENCODING_IDENTITY;
    in.body = body;
    in.body_len = (size_t) (sg_error_body(body, err) - body);

    n = sg_errlog_line(&in, from_body);

    in.error = err;
    in.body = NULL;
    in.body_len = 0;

    m = sg_errlog_line(&in, direct);

    assert(n > 0 && m == n && memcmp(direct, from_body, n + 1) == 0);
    check_line(direct, m, &in, secret, secret_len);

    free(body);
}


/* Takes the length byte at *data and up to that many bytes after it. */
static const uint8_t *
take(const uint8_t **data, size_t *size, unsigned mask, size_t *len)
{
    const uint8_t  *p;

    *len = **data & mask;

    if (*len > *size - 1) {
        *len = *size - 1;
    }

    p = *data + 1;
    *data += 1 + *len;
    *size -= 1 + *len;

    return p;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t              n, len;
    uint8_t            *packed;
    sg_error_t          err;
    unsigned            flags, encoding, cut;
    sg_secret_t         secret;
    unsigned char       key[32];
    const uint8_t      *p;
    sg_errlog_input_t   in;
    static char         line[SG_ERRLOG_LINE_MAX + 1];

    static const int    bits[] = { 0, 16 + MAX_WBITS, MAX_WBITS, -MAX_WBITS };

    if (size < 7) {
        return 0;
    }

    flags = data[0];
    encoding = flags >> 6;
    cut = data[4];

    memset(&in, 0, sizeof(in));

    in.gateway = flags & 0x01;
    in.report_only = (flags & 0x02) != 0;
    in.body_cut = (flags & 0x04) != 0;
    in.status = (int16_t) (data[1] << 8 | data[2]);
    in.operation = (flags & 0x10) ? "" : "create";
    in.region = "global";
    in.body_max = (size_t) data[3] * 8;
    in.encoding = (encoding == 0) ? SG_ENCODING_IDENTITY
                  : (encoding == 1) ? SG_ENCODING_GZIP : SG_ENCODING_DEFLATE;

    data += 5;
    size -= 5;

    /* the secret, printable ASCII as keys and write_key values are */
    p = take(&data, &size, 31, &len);

    for (n = 0; n < len; n++) {
        key[n] = (unsigned char) (0x20 + p[n] % 95);
    }

    secret.data = key;
    secret.len = len;
    in.secrets = &secret;
    in.nsecrets = 1;

    if (size == 0) {
        return 0;
    }

    p = take(&data, &size, 63, &len);
    in.subuser = (flags & 0x08) ? NULL : p;
    in.subuser_len = len;

    err.status = in.status;
    err.message = (const char *) data;
    err.message_len = size;
    err.member = (in.status & 1) ? "parameter" : "field";
    err.name = (in.status & 2) ? NULL : p;
    err.name_len = len;

    packed = NULL;
    in.body = data;
    in.body_len = size;

    if ((flags & 0x20) && encoding != 0) {
        n = compressBound(size) + 64;
        packed = malloc(n);
        assert(packed != NULL);

        in.body = packed;
        in.body_len = compress_with(data, size, bits[encoding], packed, n);

        if (in.body_cut) {
            in.body_len = in.body_len * cut / 256;
        }
    }

    n = sg_errlog_line(&in, line);

    check_line(line, n, &in, key, secret.len);

    free(packed);

    check_error(&in, &err, key, secret.len);

    return 0;
}
