/*
 * The normalized, secret-free error line.
 *
 * Three stages: the body is turned into text (decompressed when it must),
 * the text into at most SG_ERRLOG_ERRORS_MAX entries of (field, message),
 * and the entries into the line.  All strings are written by one scanner
 * that redacts, escapes and cuts; it is run once to measure and once to
 * write, so the measured lengths are the written ones and the line can be
 * fitted to SG_ERRLOG_LINE_MAX before a byte of it is written.
 */

#define ZLIB_CONST

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <zlib.h>

#include "sg_json.h"
#include "sg_errlog.h"


#define SG_REDACTED      "[REDACTED]"
#define SG_REDACTED_LEN  (sizeof(SG_REDACTED) - 1)

/* U+2026: an ASCII "..." after "SG" would read as the start of a key */
#define SG_ELLIPSIS      "\xe2\x80\xa6"
#define SG_ELLIPSIS_LEN  (sizeof(SG_ELLIPSIS) - 1)

#define SG_STR_LEN(s)    (sizeof(s) - 1)

/* U+FFFD, what jansson reads for the \ufffd of a byte of invalid UTF-8 */
#define SG_REPLACEMENT   "\xef\xbf\xbd"

#define SG_HEAD_GATEWAY   "{\"source\":\"gateway\",\"status\":"
#define SG_HEAD_UPSTREAM  "{\"source\":\"upstream\",\"status\":"
#define SG_OPERATION      ",\"operation\":"
#define SG_REGION         ",\"region\":"
#define SG_SUBUSER        ",\"subuser\":"
#define SG_ERRORS_OPEN    ",\"errors\":["
#define SG_ERRORS_CLOSE   "]"
#define SG_REPORT_ONLY    ",\"report_only\":true"
#define SG_TRUNCATED      ",\"truncated\":true"
#define SG_LINE_CLOSE     "}"
#define SG_FIELD          "{\"field\":"
#define SG_MESSAGE_OPEN   ",\"message\":\""
#define SG_MESSAGE_CLOSE  "\"}"

/* a quoted value of at most cap written bytes */
#define SG_VALUE_MAX(cap)  ((cap) + 2)

/* the longest line with one entry whose message is at its shortest */
#define SG_LINE_WORST                                                        \
    (SG_STR_LEN(SG_HEAD_UPSTREAM) + SG_STR_LEN("-2147483648")                 \
     + SG_STR_LEN(SG_OPERATION) + SG_VALUE_MAX(SG_ERRLOG_NAME_MAX)           \
     + SG_STR_LEN(SG_REGION) + SG_VALUE_MAX(SG_ERRLOG_NAME_MAX)              \
     + SG_STR_LEN(SG_SUBUSER) + SG_VALUE_MAX(SG_ERRLOG_NAME_MAX)             \
     + SG_STR_LEN(SG_ERRORS_OPEN) + SG_STR_LEN(SG_ERRORS_CLOSE)              \
     + SG_STR_LEN(SG_REPORT_ONLY) + SG_STR_LEN(SG_TRUNCATED)                 \
     + SG_STR_LEN(SG_LINE_CLOSE)                                             \
     + SG_STR_LEN(SG_FIELD) + SG_VALUE_MAX(SG_ERRLOG_FIELD_MAX)              \
     + SG_STR_LEN(SG_MESSAGE_OPEN) + SG_ERRLOG_MESSAGE_MIN                   \
     + SG_STR_LEN(SG_MESSAGE_CLOSE))

_Static_assert(SG_LINE_WORST <= SG_ERRLOG_LINE_MAX,
               "one entry always fits in a line");
_Static_assert(SG_ERRLOG_MESSAGE_MIN <= SG_ERRLOG_MESSAGE_MAX
               && SG_ERRLOG_FIELD_MAX >= SG_REDACTED_LEN + SG_ELLIPSIS_LEN,
               "caps leave room for a cut mark");


/* what may start at a byte: an SG. token, a configured secret */
#define SG_STARTS_TOKEN   0x01
#define SG_STARTS_SECRET  0x02

typedef struct {
    const sg_secret_t     *secrets;
    size_t                 nsecrets;

    /* by byte: SG_STARTS_* of what may start there */
    unsigned char          starts[256];

    /* by ASCII byte: its escaped length, 0 when something may start there */
    unsigned char          plain[128];
} sg_redactor_t;

/* what the scanner does with the next bytes of a string */
typedef struct {
    size_t                 in;          /* source bytes consumed */
    size_t                 out;         /* bytes written for them */
    int                    redacted;    /* written as [REDACTED] */
} sg_unit_t;

/* a string to write: data NULL is written as null */
typedef struct {
    const unsigned char   *data;
    size_t                 len;
    size_t                 measured;    /* written length, exact up to
                                           the cap it was measured with */
} sg_text_t;

typedef struct {
    sg_text_t              field;
    sg_text_t              message;
} sg_entry_t;

typedef struct {
    const sg_errlog_input_t  *in;
    sg_redactor_t             redactor;

    /* the body as text */
    const unsigned char      *text;
    size_t                    text_len;
    const char               *undecodable;
    unsigned char            *inflated;
    unsigned char            *excerpt;
    json_t                   *json;

    /* the gateway's error message and name, when they needed a copy */
    unsigned char            *message_copy;
    unsigned char            *name_copy;

    sg_entry_t                entries[SG_ERRLOG_ERRORS_MAX];
    size_t                    nentries;

    sg_text_t                 operation;
    sg_text_t                 region;
    sg_text_t                 subuser;
    char                      status[16];
    size_t                    status_len;
    size_t                    message_limit;

    int                       truncated;
} sg_errlog_t;


static unsigned char *
sg_copy(unsigned char *dst, const char *s, size_t len)
{
    memcpy(dst, s, len);
    return dst + len;
}


#define sg_copy_const(dst, s)  sg_copy(dst, s, SG_STR_LEN(s))


/* redaction and escaping: the scanner */

static int
sg_is_key_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}


/*
 * Length of the SG. token at p: "SG." and all the key characters after it;
 * 0 when there is none.  Its end is the end of the run of key characters
 * it starts in.
 */
static size_t
sg_key_token_at(const unsigned char *p, size_t n)
{
    size_t  len;

    if (n < 4 || p[0] != 'S' || p[1] != 'G' || p[2] != '.'
        || !sg_is_key_char(p[3]))
    {
        return 0;
    }

    for (len = 4; len < n && sg_is_key_char(p[len]); len++) {
        /* void */
    }

    return len;
}


/*
 * Sets up r for the secrets: the tables of the bytes at which a secret or
 * an SG. token may start, which let the scanner pass over all other
 * characters without comparing anything.
 */
static void
sg_redactor_init(sg_redactor_t *r, const sg_secret_t *secrets,
    size_t nsecrets)
{
    size_t         i;
    unsigned char  c;

    r->secrets = secrets;
    r->nsecrets = nsecrets;

    memset(r->starts, 0, sizeof(r->starts));
    memcpy(r->plain, sg_json_ascii_len, sizeof(r->plain));

    r->starts['S'] = SG_STARTS_TOKEN;
    r->plain['S'] = 0;

    for (i = 0; i < nsecrets; i++) {
        if (secrets[i].len) {
            c = secrets[i].data[0];
            r->starts[c] |= SG_STARTS_SECRET;

            if (c < 0x80) {
                r->plain[c] = 0;
            }
        }
    }
}


/* Length of the longest configured secret at p, 0 when there is none. */
static size_t
sg_configured_secret_at(const sg_redactor_t *r, const unsigned char *p,
    size_t n)
{
    size_t  i, len, longest;

    if (!(r->starts[p[0]] & SG_STARTS_SECRET)) {
        return 0;
    }

    longest = 0;

    for (i = 0; i < r->nsecrets; i++) {
        len = r->secrets[i].len;

        if (len > longest && len <= n && r->secrets[i].data[0] == p[0]
            && memcmp(p, r->secrets[i].data, len) == 0)
        {
            longest = len;
        }
    }

    return longest;
}


/* Length of the character at p: a well-formed UTF-8 sequence or a byte. */
static size_t
sg_char_len(const unsigned char *p, size_t n)
{
    size_t  len;

    /* sg_json_escape() copies exactly the well-formed sequences as they are */
    len = sg_utf8_sequence(p, n);

    return len ? len : 1;
}


/*
 * The next unit of the string at p: one character, escaped, or a run of
 * secrets written as one [REDACTED].  A secret that starts inside the
 * character takes the character, and the run goes on as long as secrets
 * start inside it, so that no part of overlapping secrets shows.
 */
static void
sg_unit_at(const sg_redactor_t *r, const unsigned char *p, size_t n,
    sg_unit_t *u)
{
    size_t  i, len, end, token_end, m;

    len = sg_char_len(p, n);
    end = 0;

    /* a token starting before token_end ends there too: not rescanned,
     * which keeps a long run of tokens linear */
    token_end = 0;

    for (i = 0; i < len || i < end; i++) {
        if (r->starts[p[i]] == 0) {
            /* nothing starts here; a token seen already set end */
            continue;
        }

        if (i >= token_end) {
            m = sg_key_token_at(p + i, n - i);

            if (m) {
                token_end = i + m;
            }
        }

        m = i + sg_configured_secret_at(r, p + i, n - i);

        if (m < token_end) {
            m = token_end;
        }

        if (m > i && m > end) {
            end = m;
        }
    }

    if (end == 0) {
        u->in = len;
        u->out = sg_json_escaped_len(p, len);
        u->redacted = 0;
        return;
    }

    u->in = end;
    u->out = SG_REDACTED_LEN;
    u->redacted = 1;
}


/*
 * The length of the run of whole characters at p in which no secret or
 * SG. token can start (each of them a unit of its own, as sg_unit_at()
 * would find) and whose escaped length, set in *out, is at most room.
 */
static size_t
sg_plain_span(const sg_redactor_t *r, const unsigned char *p, size_t n,
    size_t room, size_t *out)
{
    size_t         i, k, w, seq;
    unsigned char  c;

    i = 0;
    w = 0;

    while (i < n) {
        c = p[i];

        if (c < 0x80) {
            if (r->plain[c] == 0 || w + r->plain[c] > room) {
                break;
            }

            w += r->plain[c];
            i++;
            continue;
        }

        seq = sg_utf8_sequence(p + i, n - i);

        for (k = 0; k < seq; k++) {
            if (r->starts[p[i + k]]) {
                goto done;
            }
        }

        if (seq == 0) {
            /* a byte of invalid UTF-8: \ufffd */
            if (r->starts[c] || w + 6 > room) {
                break;
            }

            w += 6;
            i++;
            continue;
        }

        if (w + seq > room) {
            break;
        }

        w += seq;
        i += seq;
    }

done:

    *out = w;

    return i;
}


/* Sets t to the string data, measured: its written length up to cap. */
static void
sg_text_measure(sg_text_t *t, const sg_redactor_t *r,
    const unsigned char *data, size_t len, size_t cap)
{
    size_t                n, k, w;
    sg_unit_t             u;
    const unsigned char  *p;

    t->data = data;
    t->len = len;
    t->measured = 0;

    if (data == NULL) {
        return;
    }

    p = data;
    n = len;

    while (n && t->measured <= cap) {
        k = sg_plain_span(r, p, n, cap - t->measured, &w);

        if (k) {
            t->measured += w;
            p += k;
            n -= k;
            continue;
        }

        sg_unit_at(r, p, n, &u);
        t->measured += u.out;
        p += u.in;
        n -= u.in;
    }
}


/* The most that writing the string of t in limit bytes takes. */
static size_t
sg_text_len(const sg_text_t *t, size_t limit)
{
    return (t->measured < limit) ? t->measured : limit;
}


/* The same for t as a JSON value: quoted, or null. */
static size_t
sg_value_len(const sg_text_t *t, size_t limit)
{
    if (t->data == NULL) {
        return SG_STR_LEN("null");
    }

    return 2 + sg_text_len(t, limit);
}


/*
 * Writes the string of t, redacted and escaped, in at most limit bytes
 * (no more than the cap it was measured with): when it does not fit, as
 * many whole units as fit before the cut mark.
 */
static unsigned char *
sg_text_write(unsigned char *dst, const sg_redactor_t *r, const sg_text_t *t,
    size_t limit, int *truncated)
{
    size_t                n, k, w, room;
    sg_unit_t             u;
    const unsigned char  *p;

    room = (t->measured <= limit) ? limit : limit - SG_ELLIPSIS_LEN;
    p = t->data;
    n = t->len;

    while (n) {
        k = sg_plain_span(r, p, n, room, &w);

        if (k) {
            dst = sg_json_escape(dst, p, k);
            room -= w;
            p += k;
            n -= k;
            continue;
        }

        sg_unit_at(r, p, n, &u);

        if (u.out > room) {
            break;
        }

        if (u.redacted) {
            memcpy(dst, SG_REDACTED, SG_REDACTED_LEN);
            dst += SG_REDACTED_LEN;

        } else {
            dst = sg_json_escape(dst, p, u.in);
        }

        room -= u.out;
        p += u.in;
        n -= u.in;
    }

    if (n) {
        memcpy(dst, SG_ELLIPSIS, SG_ELLIPSIS_LEN);
        dst += SG_ELLIPSIS_LEN;
        *truncated = 1;
    }

    return dst;
}


static unsigned char *
sg_value_write(unsigned char *dst, const sg_redactor_t *r, const sg_text_t *t,
    size_t limit, int *truncated)
{
    if (t->data == NULL) {
        memcpy(dst, "null", SG_STR_LEN("null"));
        return dst + SG_STR_LEN("null");
    }

    *dst++ = '"';
    dst = sg_text_write(dst, r, t, limit, truncated);
    *dst++ = '"';

    return dst;
}


/* the body as text */

static uInt
sg_uint(size_t n)
{
    return (n > UINT_MAX) ? UINT_MAX : (uInt) n;
}


/*
 * Inflates the body with zlib's window_bits into e->inflated, at most
 * body_max bytes.  A stream that stops short or goes on past the cap
 * leaves what was inflated and marks the line truncated.  Returns Z_OK,
 * or Z_DATA_ERROR (e->text_len says how much was inflated) when the body
 * is not of the format or is damaged, or Z_MEM_ERROR.
 */
static int
sg_inflate(sg_errlog_t *e, int window_bits)
{
    int            rc;
    z_stream       zs;
    unsigned char  probe;

    memset(&zs, 0, sizeof(z_stream));

    if (inflateInit2(&zs, window_bits) != Z_OK) {
        return Z_MEM_ERROR;
    }

    zs.next_in = e->in->body;
    zs.avail_in = sg_uint(e->in->body_len);
    zs.next_out = e->inflated;
    zs.avail_out = sg_uint(e->in->body_max);

    do {
        rc = inflate(&zs, Z_NO_FLUSH);
    } while (rc == Z_OK && zs.avail_in && zs.avail_out);

    e->text_len = zs.total_out;

    if ((rc == Z_OK || rc == Z_BUF_ERROR) && zs.avail_out == 0) {
        /* the cap is reached: is there more than the end of the stream? */
        zs.next_out = &probe;
        zs.avail_out = 1;
        rc = inflate(&zs, Z_NO_FLUSH);

        if (rc != Z_STREAM_END || zs.avail_out == 0) {
            rc = Z_OK;
            e->truncated = 1;
        }

    } else if (rc == Z_OK || rc == Z_BUF_ERROR) {
        /*
         * The input ended inside the stream: the text so far, unless
         * there is none from a body that was not cut here, which is then
         * no stream of the format at all.
         */
        if (zs.total_out == 0 && !e->in->body_cut) {
            rc = Z_DATA_ERROR;

        } else {
            rc = Z_OK;
            e->truncated = 1;
        }
    }

    inflateEnd(&zs);

    switch (rc) {
    case Z_OK:
    case Z_STREAM_END:
        return Z_OK;

    case Z_MEM_ERROR:
        return Z_MEM_ERROR;

    default:
        return Z_DATA_ERROR;
    }
}


/*
 * Decompresses the body.  deflate is zlib-wrapped, or raw as some servers
 * send it: the raw form is tried when the zlib header is refused, as
 * browsers do.  Returns -1 when out of memory.
 */
static int
sg_errlog_inflate_body(sg_errlog_t *e)
{
    int  rc;

    e->inflated = malloc(e->in->body_max ? e->in->body_max : 1);
    if (e->inflated == NULL) {
        return -1;
    }

    e->text = e->inflated;

    if (e->in->encoding == SG_ENCODING_GZIP) {
        rc = sg_inflate(e, 16 + MAX_WBITS);

    } else {
        rc = sg_inflate(e, MAX_WBITS);

        if (rc == Z_DATA_ERROR && e->text_len == 0) {
            rc = sg_inflate(e, -MAX_WBITS);
        }
    }

    if (rc == Z_MEM_ERROR) {
        return -1;
    }

    if (rc == Z_DATA_ERROR) {
        e->undecodable = (e->in->encoding == SG_ENCODING_GZIP)
                         ? "undecodable gzip body"
                         : "undecodable deflate body";
    }

    return 0;
}


static int
sg_errlog_read_body(sg_errlog_t *e)
{
    if (e->in->error) {
        return 0;
    }

    if (e->in->encoding == SG_ENCODING_IDENTITY || e->in->body_len == 0) {
        e->text = e->in->body;
        e->text_len = e->in->body_len;
        return 0;
    }

    return sg_errlog_inflate_body(e);
}


/* the entries */

static void
sg_errlog_add(sg_errlog_t *e, const char *field, size_t field_len,
    const char *message, size_t message_len)
{
    sg_entry_t  *entry;

    entry = &e->entries[e->nentries++];

    sg_text_measure(&entry->field, &e->redactor,
                    (const unsigned char *) field, field_len,
                    SG_ERRLOG_FIELD_MAX);
    sg_text_measure(&entry->message, &e->redactor,
                    (const unsigned char *) message, message_len,
                    SG_ERRLOG_MESSAGE_MAX);
}


static void
sg_errlog_add_reason(sg_errlog_t *e)
{
    const char  *reason;

    reason = sg_http_reason(e->in->status);
    sg_errlog_add(e, NULL, 0, reason, strlen(reason));
}


/* An element of "errors" that is a string, or an object with a message. */
static int
sg_is_error_item(const json_t *item)
{
    return json_is_string(item)
           || (json_is_object(item)
               && json_is_string(json_object_get(item, "message")));
}


/* Adds an element of "errors"; "parameter" names the field in DELETEs. */
static void
sg_errlog_add_item(sg_errlog_t *e, const json_t *item)
{
    const json_t  *field, *message;

    if (json_is_string(item)) {
        sg_errlog_add(e, NULL, 0, json_string_value(item),
                      json_string_length(item));
        return;
    }

    message = json_object_get(item, "message");
    field = json_object_get(item, "field");

    if (!json_is_string(field)) {
        field = json_object_get(item, "parameter");
    }

    if (!json_is_string(field)) {
        sg_errlog_add(e, NULL, 0, json_string_value(message),
                      json_string_length(message));
        return;
    }

    sg_errlog_add(e, json_string_value(field), json_string_length(field),
                  json_string_value(message), json_string_length(message));
}


/*
 * {"errors":[...]} when every element is an error; the first
 * SG_ERRLOG_ERRORS_MAX are kept.
 */
static int
sg_errlog_errors_shape(sg_errlog_t *e, const json_t *errors)
{
    size_t  i, n;

    n = json_array_size(errors);

    if (n == 0) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (!sg_is_error_item(json_array_get(errors, i))) {
            return 0;
        }
    }

    for (i = 0; i < n && i < SG_ERRLOG_ERRORS_MAX; i++) {
        sg_errlog_add_item(e, json_array_get(errors, i));
    }

    if (n > SG_ERRLOG_ERRORS_MAX) {
        e->truncated = 1;
    }

    return 1;
}


/* {"name":"text"} */
static int
sg_errlog_string_shape(sg_errlog_t *e, const json_t *root, const char *name)
{
    const json_t  *text;

    text = json_object_get(root, name);

    if (!json_is_string(text)) {
        return 0;
    }

    sg_errlog_add(e, NULL, 0, json_string_value(text),
                  json_string_length(text));

    return 1;
}


/* Adds the entries of a body in one of the known JSON shapes, if it is. */
static int
sg_errlog_json_shape(sg_errlog_t *e)
{
    json_error_t  error;

    e->json = json_loadb((const char *) e->text, e->text_len,
                         JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);

    if (!json_is_object(e->json)) {
        return 0;
    }

    return sg_errlog_errors_shape(e, json_object_get(e->json, "errors"))
           || sg_errlog_string_shape(e, e->json, "error")
           || sg_errlog_string_shape(e, e->json, "message");
}


/* the excerpt of a body in no known shape */

static int
sg_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
           || c == '\v';
}


static int
sg_looks_like_json(const unsigned char *p, size_t n)
{
    while (n && sg_is_space(*p)) {
        p++;
        n--;
    }

    return n && (*p == '{' || *p == '[' || *p == '"');
}


static int
sg_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/* The code unit of a \uXXXX at p, or -1 when there is none. */
static long
sg_json_code_unit(const unsigned char *p, size_t n)
{
    int     i, v;
    long    unit;

    if (n < 6 || p[0] != '\\' || p[1] != 'u') {
        return -1;
    }

    unit = 0;

    for (i = 2; i < 6; i++) {
        v = sg_hex_value(p[i]);

        if (v < 0) {
            return -1;
        }

        unit = unit * 16 + v;
    }

    return unit;
}


static unsigned char *
sg_utf8_put(unsigned char *dst, unsigned long cp)
{
    if (cp < 0x80) {
        *dst++ = (unsigned char) cp;

    } else if (cp < 0x800) {
        *dst++ = (unsigned char) (0xc0 | (cp >> 6));
        *dst++ = (unsigned char) (0x80 | (cp & 0x3f));

    } else if (cp < 0x10000) {
        *dst++ = (unsigned char) (0xe0 | (cp >> 12));
        *dst++ = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
        *dst++ = (unsigned char) (0x80 | (cp & 0x3f));

    } else {
        *dst++ = (unsigned char) (0xf0 | (cp >> 18));
        *dst++ = (unsigned char) (0x80 | ((cp >> 12) & 0x3f));
        *dst++ = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
        *dst++ = (unsigned char) (0x80 | (cp & 0x3f));
    }

    return dst;
}


/*
 * Decodes the \uXXXX escape (or surrogate pair) at p to dst; returns the
 * bytes consumed, 0 when there is no such escape.  A lone surrogate
 * becomes U+FFFD.  Never writes more bytes than it consumes.
 */
static size_t
sg_json_unescape_unicode(unsigned char **dst, const unsigned char *p,
    size_t n)
{
    long  hi, lo;

    hi = sg_json_code_unit(p, n);

    if (hi < 0) {
        return 0;
    }

    if (hi >= 0xd800 && hi <= 0xdbff) {
        lo = sg_json_code_unit(p + 6, n - 6);

        if (lo >= 0xdc00 && lo <= 0xdfff) {
            *dst = sg_utf8_put(*dst, 0x10000 + ((hi - 0xd800) << 10)
                                     + (lo - 0xdc00));
            return 12;
        }
    }

    if (hi >= 0xd800 && hi <= 0xdfff) {
        hi = 0xfffd;
    }

    *dst = sg_utf8_put(*dst, (unsigned long) hi);

    return 6;
}


/*
 * Copies JSON-looking text with its string escapes decoded, so that an
 * escaped secret is redacted like a plain one.  Unknown escapes are kept.
 */
static size_t
sg_json_unescape(unsigned char *dst, const unsigned char *p, size_t n)
{
    size_t          used;
    unsigned char  *start;
    const char     *c;

    static const char  escapes[] = "\"\"\\\\//b\bf\fn\nr\rt\t";

    start = dst;

    while (n) {
        used = sg_json_unescape_unicode(&dst, p, n);

        if (used) {
            p += used;
            n -= used;
            continue;
        }

        if (p[0] == '\\' && n > 1) {
            for (c = escapes; *c; c += 2) {
                if (*c == (char) p[1]) {
                    break;
                }
            }

            if (*c) {
                *dst++ = (unsigned char) c[1];
                p += 2;
                n -= 2;
                continue;
            }
        }

        *dst++ = *p++;
        n--;
    }

    return (size_t) (dst - start);
}


static unsigned char
sg_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char) (c | 0x20) : c;
}


/* Whether [p, end) starts with the lowercase ASCII word w, in any case. */
static int
sg_starts_nocase(const unsigned char *p, const unsigned char *end,
    const char *w)
{
    for ( /* void */ ; *w; w++, p++) {
        if (p == end || sg_lower(*p) != (unsigned char) *w) {
            return 0;
        }
    }

    return 1;
}


/* Where w starts in [p, end), in any case, or end. */
static const unsigned char *
sg_find_nocase(const unsigned char *p, const unsigned char *end,
    const char *w)
{
    for ( /* void */ ; p < end; p++) {
        if (sg_starts_nocase(p, end, w)) {
            return p;
        }
    }

    return end;
}


/* Whether the tag at p ("<name...") opens the element name. */
static int
sg_tag_is(const unsigned char *p, const unsigned char *end, const char *name)
{
    const unsigned char  *after;

    if (!sg_starts_nocase(p + 1, end, name)) {
        return 0;
    }

    after = p + 1 + strlen(name);

    return after == end || *after == '>' || *after == '/'
           || sg_is_space(*after);
}


/*
 * The end of the markup that starts at p ('<'): a comment, a tag, or a
 * script or style element whole, whose contents are no text to show.
 */
static const unsigned char *
sg_markup_end(const unsigned char *p, const unsigned char *end)
{
    const unsigned char  *gt;

    if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
        gt = sg_find_nocase(p + 4, end, "-->");
        return (gt == end) ? end : gt + 3;
    }

    if (sg_tag_is(p, end, "script")) {
        p = sg_find_nocase(p, end, "</script");

    } else if (sg_tag_is(p, end, "style")) {
        p = sg_find_nocase(p, end, "</style");
    }

    gt = memchr(p, '>', end - p);

    return (gt == NULL) ? end : gt + 1;
}


static int
sg_is_markup_start(const unsigned char *p, const unsigned char *end)
{
    unsigned char  c;

    if (end - p < 2 || p[0] != '<') {
        return 0;
    }

    c = sg_lower(p[1]);

    return (c >= 'a' && c <= 'z') || p[1] == '/' || p[1] == '!'
           || p[1] == '?';
}


/* Copies text with markup dropped; markup separates words like a space. */
static size_t
sg_strip_tags(unsigned char *dst, const unsigned char *p, size_t n)
{
    unsigned char        *start;
    const unsigned char  *end;

    start = dst;
    end = p + n;

    while (p < end) {
        if (sg_is_markup_start(p, end)) {
            p = sg_markup_end(p, end);
            *dst++ = ' ';
            continue;
        }

        *dst++ = *p++;
    }

    return (size_t) (dst - start);
}


/* Folds runs of whitespace into one space and trims both ends, in place. */
static size_t
sg_fold_space(unsigned char *p, size_t n)
{
    size_t  i, len;
    int     space;

    len = 0;
    space = 0;

    for (i = 0; i < n; i++) {
        if (sg_is_space(p[i])) {
            space = (len > 0);
            continue;
        }

        if (space) {
            p[len++] = ' ';
            space = 0;
        }

        p[len++] = p[i];
    }

    return len;
}


/*
 * The length of the text at p without any tail that is the beginning of a
 * secret: a body cut short may end inside one, which redaction, matching
 * whole secrets only, would let show.
 */
static size_t
sg_drop_secret_start(const sg_redactor_t *r, const unsigned char *p,
    size_t len)
{
    size_t  i, k, was;

    do {
        was = len;

        for (i = 0; i < r->nsecrets; i++) {
            if (r->secrets[i].len == 0) {
                continue;
            }

            k = (r->secrets[i].len > len) ? len : r->secrets[i].len - 1;

            for ( /* void */ ; k > 0; k--) {
                if (memcmp(p + len - k, r->secrets[i].data, k) == 0) {
                    len -= k;
                    break;
                }
            }
        }

    } while (len != was);

    return len;
}


/* Adds the one entry that describes a body in no known shape. */
static int
sg_errlog_add_excerpt(sg_errlog_t *e)
{
    size_t  len;

    e->excerpt = malloc(e->text_len);
    if (e->excerpt == NULL) {
        return -1;
    }

    if (sg_looks_like_json(e->text, e->text_len)) {
        len = sg_json_unescape(e->excerpt, e->text, e->text_len);

    } else {
        len = sg_strip_tags(e->excerpt, e->text, e->text_len);
    }

    if (e->truncated) {
        len = sg_drop_secret_start(&e->redactor, e->excerpt, len);
    }

    len = sg_fold_space(e->excerpt, len);

    if (len == 0) {
        sg_errlog_add_reason(e);
        return 0;
    }

    sg_errlog_add(e, NULL, 0, (const char *) e->excerpt, len);

    return 0;
}


/* the gateway's own error */

/*
 * The string s as it reads once sg_error_body() has escaped it: every byte
 * of invalid UTF-8 is U+FFFD.  s itself when it is valid UTF-8, else a
 * copy kept in *copy; NULL when out of memory.
 */
static const unsigned char *
sg_error_text(const unsigned char *s, size_t len, size_t *text_len,
    unsigned char **copy)
{
    size_t          i, seq, bad;
    unsigned char  *p;

    bad = 0;

    for (i = 0; i < len; i += seq) {
        seq = (s[i] < 0x80) ? 1 : sg_utf8_sequence(s + i, len - i);

        if (seq == 0) {
            bad++;
            seq = 1;
        }
    }

    *text_len = len + bad * (SG_STR_LEN(SG_REPLACEMENT) - 1);

    if (bad == 0) {
        return s;
    }

    *copy = malloc(*text_len);
    if (*copy == NULL) {
        return NULL;
    }

    p = *copy;

    for (i = 0; i < len; i += seq) {
        seq = (s[i] < 0x80) ? 1 : sg_utf8_sequence(s + i, len - i);

        if (seq == 0) {
            p = sg_copy_const(p, SG_REPLACEMENT);
            seq = 1;
            continue;
        }

        p = sg_copy(p, (const char *) s + i, seq);
    }

    return *copy;
}


/*
 * The entry of the gateway's error, as reading its body would give it:
 * {"errors":[{"message":...,"field" or "parameter":...}]}, where a null
 * name is no field.
 */
static int
sg_errlog_add_error(sg_errlog_t *e, const sg_error_t *err)
{
    size_t                message_len, name_len;
    const unsigned char  *message, *name;

    message = sg_error_text(err->message ? (const unsigned char *) err->message
                                         : (const unsigned char *) "",
                            err->message_len, &message_len, &e->message_copy);
    if (message == NULL) {
        return -1;
    }

    name = NULL;
    name_len = 0;

    if (err->name != NULL
        && (strcmp(err->member, "field") == 0
            || strcmp(err->member, "parameter") == 0))
    {
        name = sg_error_text(err->name, err->name_len, &name_len,
                             &e->name_copy);
        if (name == NULL) {
            return -1;
        }
    }

    sg_errlog_add(e, (const char *) name, name_len, (const char *) message,
                  message_len);

    return 0;
}


static int
sg_errlog_collect(sg_errlog_t *e)
{
    if (e->in->error) {
        return sg_errlog_add_error(e, e->in->error);
    }

    if (e->undecodable) {
        sg_errlog_add(e, NULL, 0, e->undecodable, strlen(e->undecodable));
        return 0;
    }

    if (e->text_len == 0) {
        sg_errlog_add_reason(e);
        return 0;
    }

    if (sg_errlog_json_shape(e)) {
        return 0;
    }

    return sg_errlog_add_excerpt(e);
}


/* the line */

/* status in decimal, as "%d" writes it, at a fraction of snprintf()'s cost */
static void
sg_errlog_format_status(sg_errlog_t *e, int status)
{
    char          digits[sizeof(e->status)], *p;
    unsigned int  v;

    v = (status < 0) ? 0u - (unsigned int) status : (unsigned int) status;
    p = digits + sizeof(digits);

    do {
        *--p = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    if (status < 0) {
        *--p = '-';
    }

    e->status_len = (size_t) (digits + sizeof(digits) - p);
    memcpy(e->status, p, e->status_len);
}


static void
sg_errlog_measure_names(sg_errlog_t *e)
{
    const sg_errlog_input_t  *in;

    in = e->in;

    sg_text_measure(&e->operation, &e->redactor,
                    (in->operation && in->operation[0])
                    ? (const unsigned char *) in->operation : NULL,
                    in->operation ? strlen(in->operation) : 0,
                    SG_ERRLOG_NAME_MAX);

    sg_text_measure(&e->region, &e->redactor,
                    (const unsigned char *) in->region,
                    in->region ? strlen(in->region) : 0,
                    SG_ERRLOG_NAME_MAX);

    sg_text_measure(&e->subuser, &e->redactor, in->subuser, in->subuser_len,
                    SG_ERRLOG_NAME_MAX);

    sg_errlog_format_status(e, in->status);
}


/* The line without its entries, "truncated" counted in. */
static size_t
sg_errlog_frame_len(const sg_errlog_t *e)
{
    size_t  len;

    len = (e->in->gateway ? SG_STR_LEN(SG_HEAD_GATEWAY)
                          : SG_STR_LEN(SG_HEAD_UPSTREAM))
          + e->status_len
          + SG_STR_LEN(SG_OPERATION)
          + sg_value_len(&e->operation, SG_ERRLOG_NAME_MAX)
          + SG_STR_LEN(SG_REGION)
          + sg_value_len(&e->region, SG_ERRLOG_NAME_MAX)
          + SG_STR_LEN(SG_SUBUSER)
          + sg_value_len(&e->subuser, SG_ERRLOG_NAME_MAX)
          + SG_STR_LEN(SG_ERRORS_OPEN) + SG_STR_LEN(SG_ERRORS_CLOSE)
          + SG_STR_LEN(SG_TRUNCATED) + SG_STR_LEN(SG_LINE_CLOSE);

    if (e->in->report_only) {
        len += SG_STR_LEN(SG_REPORT_ONLY);
    }

    return len;
}


/* The first n entries with messages of at most limit bytes. */
static size_t
sg_errlog_entries_len(const sg_errlog_t *e, size_t n, size_t limit)
{
    size_t  i, len;

    len = n - 1;

    for (i = 0; i < n; i++) {
        len += SG_STR_LEN(SG_FIELD)
               + sg_value_len(&e->entries[i].field, SG_ERRLOG_FIELD_MAX)
               + SG_STR_LEN(SG_MESSAGE_OPEN)
               + sg_text_len(&e->entries[i].message, limit)
               + SG_STR_LEN(SG_MESSAGE_CLOSE);
    }

    return len;
}


/*
 * The longest message limit, no shorter than SG_ERRLOG_MESSAGE_MIN, with
 * which the first n entries fit in room; 0 when none does.
 */
static size_t
sg_errlog_message_limit(const sg_errlog_t *e, size_t n, size_t room)
{
    size_t  lo, hi, mid;

    if (sg_errlog_entries_len(e, n, SG_ERRLOG_MESSAGE_MAX) <= room) {
        return SG_ERRLOG_MESSAGE_MAX;
    }

    if (sg_errlog_entries_len(e, n, SG_ERRLOG_MESSAGE_MIN) > room) {
        return 0;
    }

    lo = SG_ERRLOG_MESSAGE_MIN;
    hi = SG_ERRLOG_MESSAGE_MAX;

    while (hi - lo > 1) {
        mid = lo + (hi - lo) / 2;

        if (sg_errlog_entries_len(e, n, mid) <= room) {
            lo = mid;

        } else {
            hi = mid;
        }
    }

    return lo;
}


/* Shortens messages, then drops entries, until the line fits. */
static void
sg_errlog_fit(sg_errlog_t *e)
{
    size_t  n, room, limit;

    room = SG_ERRLOG_LINE_MAX - sg_errlog_frame_len(e);

    /* one entry always fits: see SG_LINE_WORST */
    n = e->nentries;

    for ( ;; ) {
        limit = sg_errlog_message_limit(e, n, room);

        if (limit || n == 1) {
            break;
        }

        n--;
    }

    if (n < e->nentries) {
        e->nentries = n;
        e->truncated = 1;
    }

    e->message_limit = limit;
}


static unsigned char *
sg_errlog_write_entries(sg_errlog_t *e, unsigned char *p)
{
    size_t       i;
    sg_entry_t  *entry;

    for (i = 0; i < e->nentries; i++) {
        entry = &e->entries[i];

        if (i) {
            *p++ = ',';
        }

        p = sg_copy_const(p, SG_FIELD);
        p = sg_value_write(p, &e->redactor, &entry->field,
                           SG_ERRLOG_FIELD_MAX, &e->truncated);
        p = sg_copy_const(p, SG_MESSAGE_OPEN);
        p = sg_text_write(p, &e->redactor, &entry->message, e->message_limit,
                          &e->truncated);
        p = sg_copy_const(p, SG_MESSAGE_CLOSE);
    }

    return p;
}


static size_t
sg_errlog_write(sg_errlog_t *e, char *buf)
{
    unsigned char  *p;

    p = (unsigned char *) buf;

    p = e->in->gateway ? sg_copy_const(p, SG_HEAD_GATEWAY)
                       : sg_copy_const(p, SG_HEAD_UPSTREAM);
    p = sg_copy(p, e->status, e->status_len);

    p = sg_copy_const(p, SG_OPERATION);
    p = sg_value_write(p, &e->redactor, &e->operation, SG_ERRLOG_NAME_MAX,
                       &e->truncated);
    p = sg_copy_const(p, SG_REGION);
    p = sg_value_write(p, &e->redactor, &e->region, SG_ERRLOG_NAME_MAX,
                       &e->truncated);
    p = sg_copy_const(p, SG_SUBUSER);
    p = sg_value_write(p, &e->redactor, &e->subuser, SG_ERRLOG_NAME_MAX,
                       &e->truncated);

    p = sg_copy_const(p, SG_ERRORS_OPEN);
    p = sg_errlog_write_entries(e, p);
    p = sg_copy_const(p, SG_ERRORS_CLOSE);

    if (e->in->report_only) {
        p = sg_copy_const(p, SG_REPORT_ONLY);
    }

    if (e->truncated) {
        p = sg_copy_const(p, SG_TRUNCATED);
    }

    p = sg_copy_const(p, SG_LINE_CLOSE);
    *p = '\0';

    return p - (unsigned char *) buf;
}


size_t
sg_errlog_line(const sg_errlog_input_t *in, char *buf)
{
    size_t       len;
    sg_errlog_t  e;

    memset(&e, 0, sizeof(sg_errlog_t));

    e.in = in;
    sg_redactor_init(&e.redactor, in->secrets, in->nsecrets);
    e.truncated = in->body_cut;

    len = 0;

    if (sg_errlog_read_body(&e) == 0 && sg_errlog_collect(&e) == 0) {
        sg_errlog_measure_names(&e);
        sg_errlog_fit(&e);
        len = sg_errlog_write(&e, buf);
    }

    json_decref(e.json);
    free(e.excerpt);
    free(e.message_copy);
    free(e.name_copy);
    free(e.inflated);

    return len;
}
