/*
 * Normalized, secret-free error lines of SPEC section 7.  No nginx
 * headers.  Every error response on the module's routes, the gateway's own
 * and the upstream's, is reduced to one line of JSON:
 *
 *   {"source":"upstream","status":400,"operation":"create",
 *    "region":"global","subuser":"acme",
 *    "errors":[{"field":"request","message":"..."}]}
 *
 * with "report_only":true and "truncated":true added when they apply.
 */

#ifndef SG_ERRLOG_H
#define SG_ERRLOG_H

#include <stddef.h>


/* Longest line sg_errlog_line() writes, NUL excluded: what is left of
 * nginx's 2048-byte error-log line after its prefix and ours. */
#define SG_ERRLOG_LINE_MAX  1800

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

    /* the body as received, at most the inspection limit of bytes */
    const unsigned char  *body;
    size_t                body_len;
    sg_encoding_t         encoding;
    int                   body_cut;       /* more bytes came than body_len */
    size_t                body_max;       /* cap on decompressed text too */

    /* configured keys and write_key values: replaced by [REDACTED] */
    const sg_secret_t    *secrets;
    size_t                nsecrets;
} sg_errlog_input_t;


/*
 * Writes the normalized line for in to buf (at least SG_ERRLOG_LINE_MAX + 1
 * bytes), NUL-terminated; returns its length, or 0 when out of memory.
 */
size_t sg_errlog_line(const sg_errlog_input_t *in, char *buf);

#endif /* SG_ERRLOG_H */
