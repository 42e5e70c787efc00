/*
 * JSON text helpers shared by the plain-C parts of the module: escaping
 * untrusted bytes into a JSON string body and writing the SendGrid-shaped
 * error body the gateway answers with.  No nginx headers.
 */

#ifndef SG_JSON_H
#define SG_JSON_H

#include <stddef.h>


/*
 * Bytes needed to escape src as the inside of a JSON string: '"', '\\' and
 * control bytes are escaped, DEL and bytes of invalid UTF-8 become \ufffd
 * (or \u007f), so the result is always valid UTF-8 JSON.
 */
size_t sg_json_escaped_len(const unsigned char *src, size_t len);

/* Writes the escaped form of src to dst; returns the end of what it wrote. */
unsigned char *sg_json_escape(unsigned char *dst, const unsigned char *src,
    size_t len);

/*
 * The escaped length of each ASCII byte: 1 for a byte copied as it is, 2
 * for '"', '\\', \n, \r and \t, 6 for the other control bytes and DEL.
 */
extern const unsigned char  sg_json_ascii_len[128];

/*
 * Length of the well-formed UTF-8 sequence at p (n > 0 bytes there), or 0
 * when the bytes there are not one: overlong forms, surrogates and code
 * points above U+10FFFF are refused, as RFC 3629 asks.  sg_json_escape()
 * copies exactly these sequences as they are.
 */
size_t sg_utf8_sequence(const unsigned char *p, size_t n);


/*
 * One gateway error:
 *     {"errors":[{"message":"<message>","<member>":"<name>"}]}
 * member is "field" or "parameter"; a NULL name is written as null.
 */
typedef struct {
    int                   status;
    const char           *message;
    size_t                message_len;
    const char           *member;
    const unsigned char  *name;
    size_t                name_len;
} sg_error_t;

/* Length of the error body of err. */
size_t sg_error_body_len(const sg_error_t *err);

/* Writes the error body of err to dst; returns the end of what it wrote. */
unsigned char *sg_error_body(unsigned char *dst, const sg_error_t *err);

/* The standard reason phrase of an HTTP status, "Unknown" for others. */
const char *sg_http_reason(int status);

#endif /* SG_JSON_H */
