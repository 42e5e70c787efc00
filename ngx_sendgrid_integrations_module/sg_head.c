/*
 * Header names the gateway guards, and the head of the request that goes
 * to SendGrid.
 */

#include <string.h>

#include "sg_head.h"


typedef struct {
    const char   *name;       /* lower case, '-' */
    size_t        len;
    sg_header_t   kind;
} sg_header_name_t;


#define sg_header_name(s, kind)  { s, sizeof(s) - 1, kind }

static const sg_header_name_t  sg_header_names[] = {
    sg_header_name("authorization", SG_HEADER_AUTHORIZATION),
    sg_header_name("on-behalf-of", SG_HEADER_ON_BEHALF_OF),
    sg_header_name("x-sg-elas-acl", SG_HEADER_ELAS_ACL),
    sg_header_name("x-http-method-override", SG_HEADER_METHOD_OVERRIDE),
    sg_header_name("x-http-method", SG_HEADER_METHOD_OVERRIDE),
    sg_header_name("x-method-override", SG_HEADER_METHOD_OVERRIDE)
};


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


sg_header_t
sg_header_kind(const unsigned char *name, size_t len)
{
    size_t                   i;
    const sg_header_name_t  *h;

    for (i = 0; i < sizeof(sg_header_names) / sizeof(sg_header_names[0]);
         i++)
    {
        h = &sg_header_names[i];

        if (sg_header_name_is(name, len, (const unsigned char *) h->name,
                              h->len))
        {
            return h->kind;
        }
    }

    return SG_HEADER_OTHER;
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
sg_header_is_gateways(const unsigned char *name, size_t len)
{
    switch (sg_header_kind(name, len)) {

    case SG_HEADER_AUTHORIZATION:
    case SG_HEADER_ON_BEHALF_OF:
    case SG_HEADER_ELAS_ACL:
        return 1;

    default:
        return 0;
    }
}


/* whether the header line [p, end) is one the gateway writes itself */
static int
sg_head_line_is_gateways(const unsigned char *p, const unsigned char *end)
{
    const unsigned char  *colon;

    colon = memchr(p, ':', end - p);

    return colon != NULL && sg_header_is_gateways(p, colon - p);
}


ssize_t
sg_head_filter(const unsigned char *in, size_t len, unsigned char *out,
    size_t *rest)
{
    unsigned char        *o;
    const unsigned char  *p, *end, *last;

    p = in;
    last = in + len;
    o = out;

    /* the request line */

    end = sg_head_line_end(p, last);
    if (end == NULL) {
        return -1;
    }

    memcpy(o, p, end + 2 - p);
    o += end + 2 - p;
    p = end + 2;

    for ( ;; ) {
        end = sg_head_line_end(p, last);
        if (end == NULL) {
            return -1;
        }

        if (end == p) {
            *rest = p - in;
            return o - out;
        }

        if (!sg_head_line_is_gateways(p, end)) {
            memcpy(o, p, end + 2 - p);
            o += end + 2 - p;
        }

        p = end + 2;
    }
}
