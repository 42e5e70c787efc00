/*
 * Normalized, secret-free error lines.  No nginx headers.  Every error
 * response on the module's routes, the gateway's own and the upstream's,
 * is reduced to one line of JSON:
 *
 *   {"source":"upstream","status":400,"operation":"create",
 *    "region":"global","subuser":"acme",
 *    "errors":[{"field":"request","message":"..."}]}
 *
 * with "report_only":true and "truncated":true added when they apply.
 *
 * The body is decompressed first (gzip, deflate), then read as one of the
 * shapes SendGrid and front ends answer with: {"errors":[{"field",
 * "message",...},...]} ("parameter" stands for "field"), {"errors":["text",
 * ...]}, {"error":"text"}, {"message":"text"}.  Anything else gives one
 * entry whose message is an excerpt of the text: JSON escapes decoded when
 * it looks like JSON, HTML tags (and script/style contents, comments)
 * dropped otherwise, entities left as they are, whitespace folded.  An
 * empty excerpt gives the reason phrase of the status.
 *
 * Every string written (messages, fields, subuser, operation, region) goes
 * through one scanner that replaces SG. tokens and the configured secrets
 * by [REDACTED] on the decoded text, JSON-escapes the rest (invalid UTF-8
 * becomes \ufffd) and cuts, when it must, on a character boundary and never
 * inside a [REDACTED], appending U+2026 (an ASCII "..." after "SG" would
 * read as a key).  Caps are counted in escaped bytes, as written.
 */

#ifndef SG_ERRLOG_H
#define SG_ERRLOG_H

#include <stddef.h>

#include "sg_json.h"


/* Longest line sg_errlog_line() writes, NUL excluded: what is left of
 * nginx's 2048-byte error-log line after its prefix and ours. */
#define SG_ERRLOG_LINE_MAX     1800

/* At most this many entries in "errors"; more mark the line truncated. */
#define SG_ERRLOG_ERRORS_MAX   10

/* Caps, in written (escaped) bytes, the cut mark included. */
#define SG_ERRLOG_MESSAGE_MAX  256
#define SG_ERRLOG_FIELD_MAX    64
#define SG_ERRLOG_NAME_MAX     64     /* subuser, operation, region */

/*
 * When the line is too long, messages are shortened alike, down to this
 * many bytes each; entries are dropped from the end only after that.
 */
#define SG_ERRLOG_MESSAGE_MIN  80

typedef enum {
    SG_ENCODING_IDENTITY = 0,
    SG_ENCODING_GZIP,
    SG_ENCODING_DEFLATE
} sg_encoding_t;

typedef struct {
    const unsigned char  *data;
    size_t                len;
} sg_secret_t;

typedef struct {
    int                   gateway;        /* "source": gateway or upstream */
    int                   status;
    const char           *operation;      /* "" when none */
    const char           *region;         /* "global" or "eu" */
    const unsigned char  *subuser;        /* NULL: "subuser":null */
    size_t                subuser_len;
    int                   report_only;

    /*
     * The gateway's own error, when not NULL: the line is the one of the
     * body sg_error_body() writes for it (member "field" or "parameter"),
     * made without writing that body and reading it back; body and
     * encoding are then ignored.
     */
    const sg_error_t     *error;

    /* the body as received, at most the inspection limit of bytes */
    const unsigned char  *body;
    size_t                body_len;
    sg_encoding_t         encoding;       /* Content-Encoding of the body */
    int                   body_cut;       /* more bytes came than body_len */
    size_t                body_max;       /* cap on the decompressed text */

    /* configured keys and write_key values: replaced by [REDACTED];
     * empty ones are ignored */
    const sg_secret_t    *secrets;
    size_t                nsecrets;
} sg_errlog_input_t;


/*
 * Writes the normalized line for in to buf (at least SG_ERRLOG_LINE_MAX + 1
 * bytes), NUL-terminated; returns its length, or 0 when out of memory.
 * The line is valid JSON whatever the input.
 */
size_t sg_errlog_line(const sg_errlog_input_t *in, char *buf);

#endif /* SG_ERRLOG_H */
