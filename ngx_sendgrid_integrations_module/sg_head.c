/*
 * Header names the gateway guards, and the head of the request that goes
 * to SendGrid.
 */

#include <string.h>

#include "sg_head.h"


/* a byte of a header name as the comparisons see it */
static unsigned char
sg_header_fold(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c | 0x20;
    }

    return c == '_' ? '-' : c;
}


int
sg_header_name_is(const unsigned char *a, size_t alen,
    const unsigned char *b, size_t blen)
{
    size_t  i;

    if (alen != blen) {
        return 0;
    }

    for (i = 0; i < alen; i++) {
        if (sg_header_fold(a[i]) != sg_header_fold(b[i])) {
            return 0;
        }
    }

    return 1;
}


/* whether name is lit, a lower-case name of the same length */
#define sg_header_is(name, len, lit)                                          \
    sg_header_name_is(name, len, (const unsigned char *) lit, sizeof(lit) - 1)


sg_header_t
sg_header_kind(const unsigned char *name, size_t len)
{
    /* by length first: most names have none of these lengths */

    switch (len) {

    case sizeof("on-behalf-of") - 1:
        return sg_header_is(name, len, "on-behalf-of")
               ? SG_HEADER_ON_BEHALF_OF : SG_HEADER_OTHER;

    case sizeof("authorization") - 1:
        if (sg_header_is(name, len, "authorization")) {
            return SG_HEADER_AUTHORIZATION;
        }

        if (sg_header_is(name, len, "x-sg-elas-acl")) {
            return SG_HEADER_ELAS_ACL;
        }

        return sg_header_is(name, len, "x-http-method")
               ? SG_HEADER_METHOD_OVERRIDE : SG_HEADER_OTHER;

    case sizeof("x-method-override") - 1:
        return sg_header_is(name, len, "x-method-override")
               ? SG_HEADER_METHOD_OVERRIDE : SG_HEADER_OTHER;

    case sizeof("x-http-method-override") - 1:
        return sg_header_is(name, len, "x-http-method-override")
               ? SG_HEADER_METHOD_OVERRIDE : SG_HEADER_OTHER;

    default:
        return SG_HEADER_OTHER;
    }
}


/* the end of the line at p (its CR), or NULL when it does not end */
static const unsigned char *
sg_head_line_end(const unsigned char *p, const unsigned char *last)
{
    const unsigned char  *cr;

    for ( ;; ) {
        cr = memchr(p, '\r', last - p);

        if (cr == NULL || cr + 1 == last) {
            return NULL;
        }

        if (cr[1] == '\n') {
            return cr;
        }

        p = cr + 1;
    }
}


int
sg_header_kind_is_gateways(sg_header_t kind)
{
    switch (kind) {

    case SG_HEADER_AUTHORIZATION:
    case SG_HEADER_ON_BEHALF_OF:
    case SG_HEADER_ELAS_ACL:
        return 1;

    default:
        return 0;
    }
}


int
sg_header_is_gateways(const unsigned char *name, size_t len)
{
    return sg_header_kind_is_gateways(sg_header_kind(name, len));
}


/*
 * Whether the header line [p, end) is one the gateway writes itself.  Its
 * name ends at the first ':', and the gateway's names, which have none,
 * are 12 and 13 bytes long: a ':' at one of those offsets after a name
 * of the gateway's is the first.
 */
static int
sg_head_line_is_gateways(const unsigned char *p, const unsigned char *end)
{
    size_t  len;

    for (len = sizeof("on-behalf-of") - 1;
         len <= sizeof("authorization") - 1 && len < (size_t) (end - p);
         len++)
    {
        if (p[len] == ':' && sg_header_is_gateways(p, len)) {
            return 1;
        }
    }

    return 0;
}


ssize_t
sg_head_filter(const unsigned char *in, size_t len, unsigned char *out,
    size_t *rest)
{
    unsigned char        *o;
    const unsigned char  *p, *end, *last, *kept;

    p = in;
    last = in + len;
    o = out;

    /* the request line */

    end = sg_head_line_end(p, last);
    if (end == NULL) {
        return -1;
    }

    p = end + 2;

    /* lines from kept on are copied together, up to a line left out */
    kept = in;

    for ( ;; ) {
        end = sg_head_line_end(p, last);
        if (end == NULL) {
            return -1;
        }

        if (end == p || sg_head_line_is_gateways(p, end)) {
            memcpy(o, kept, p - kept);
            o += p - kept;
            kept = end + 2;
        }

        if (end == p) {
            *rest = p - in;
            return o - out;
        }

        p = end + 2;
    }
}
