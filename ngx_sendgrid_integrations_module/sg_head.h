/*
 * Header names the gateway guards, and the head of the request that goes
 * to SendGrid.  No nginx headers.
 *
 * Header names are compared in any letter case and with '-' and '_' as
 * one, as nginx's $http_* variables compare them, so that a client's
 * "on_behalf_of" (accepted with underscores_in_headers on) is the same
 * header as "On-Behalf-Of".
 */

#ifndef SG_HEAD_H
#define SG_HEAD_H

#include <stddef.h>
#include <sys/types.h>


typedef enum {
    SG_HEADER_OTHER = 0,
    SG_HEADER_AUTHORIZATION,    /* the gateway's own, never the client's */
    SG_HEADER_ON_BEHALF_OF,     /* likewise */
    SG_HEADER_ELAS_ACL,         /* x-sg-elas-acl: never passed on */
    SG_HEADER_METHOD_OVERRIDE   /* X-HTTP-Method-Override, X-HTTP-Method,
                                   X-Method-Override: refused */
} sg_header_t;


/* What name (len bytes, any case, '-' or '_') is to the gateway. */
sg_header_t sg_header_kind(const unsigned char *name, size_t len);

/*
 * Whether name is one of the headers the gateway writes itself toward
 * SendGrid (Authorization, on-behalf-of, x-sg-elas-acl): anyone else's
 * never passes.
 */
int sg_header_is_gateways(const unsigned char *name, size_t len);

/* The same, of a name whose sg_header_kind() is known. */
int sg_header_kind_is_gateways(sg_header_t kind);

/*
 * Whether header name a is header name b: the same length and the same
 * bytes in any letter case, with '-' and '_' as one.
 */
int sg_header_name_is(const unsigned char *a, size_t alen,
    const unsigned char *b, size_t blen);

/*
 * in[0..len) starts with the head of an HTTP/1 request as the proxy module
 * builds it: a request line, header lines, each ending in CRLF, and an
 * empty line; what follows (a body set by the configuration) is not read.
 * Copies the request line and every header line whose name is not one
 * of sg_header_is_gateways() to out (len bytes are always enough), and
 * sets *rest
 * to the offset of the empty line that ends the head: the gateway's own
 * header lines go between the two.  The head ends where the first empty
 * line is, as the server reading it will see it.  Returns the bytes
 * written, or -1 when in holds no complete head.
 */
ssize_t sg_head_filter(const unsigned char *in, size_t len,
    unsigned char *out, size_t *rest);

#endif /* SG_HEAD_H */
