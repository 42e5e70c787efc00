/*
 * The gateway's metrics: counters in fixed slots of one structure (which
 * the module keeps in a shared memory zone, one for every worker), and
 * their text in Prometheus' exposition format.  No nginx headers.
 *
 * Every label takes its values from a set fixed here: operations, regions,
 * sources, status codes 100 to 599 (any other is "other"), refusal reasons,
 * schema rules, histogram buckets.  Nothing a client sends, a subuser
 * least of all, adds a slot.  Counters are machine words added to with
 * relaxed atomic operations: exact whatever the number of processes
 * counting at once, without a lock.
 */

#ifndef SG_METRICS_H
#define SG_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "sg_route.h"


/* why the gateway refused a request: the first check it failed */
typedef enum {
    SG_REFUSAL_NONE = 0,
    SG_REFUSAL_ROUTE,               /* 404: not one of the five routes */
    SG_REFUSAL_METHOD,              /* 405 */
    SG_REFUSAL_QUERY,               /* 400 */
    SG_REFUSAL_URI_CHANGED,         /* 404: a rewrite, a redirect */
    SG_REFUSAL_METHOD_OVERRIDE,     /* 400 */
    SG_REFUSAL_SUBUSER_REPEATED,    /* 400: the subuser header twice */
    SG_REFUSAL_CONTENT_TYPE,        /* 415 */
    SG_REFUSAL_BODY_NOT_ALLOWED,    /* 400: GET or DELETE with a body */
    SG_REFUSAL_BODY_EMPTY,          /* 400 */
    SG_REFUSAL_BODY_SYNTAX,         /* 400: not valid JSON */
    SG_REFUSAL_BODY_DUPLICATE,      /* 400: duplicate member */
    SG_REFUSAL_BODY_LIMIT,          /* 400: member names open at once */
    SG_REFUSAL_BODY_SCHEMA,         /* 400: schema rules, see the rules */
    SG_REFUSAL_BODY_TOO_LARGE,      /* 413 */
    SG_REFUSAL_KEY_MISSING,         /* 500: no key for the region */
    SG_REFUSAL_SUBUSER_INVALID,     /* 400: not a valid header value */
    SG_REFUSAL_KEY_NOT_SENT,        /* 500: no way to add the key */
    SG_REFUSAL_INTERNAL,            /* 500 */
    SG_REFUSALS
} sg_refusal_t;


#define SG_METRICS_OPS        (SG_OP_UPDATE + 1)   /* SG_OP_NONE too */
#define SG_METRICS_REGIONS    2                    /* global, eu */
#define SG_METRICS_SOURCES    2                    /* gateway, upstream */
#define SG_METRICS_CODES      501                  /* 100-599, other */
#define SG_METRICS_RULES      22                   /* SG_BODY_RULE_* bits */
#define SG_METRICS_BUCKETS    12                   /* 11 bounds and +Inf */


typedef unsigned long  sg_metrics_count_t;

typedef struct {
    uint32_t            magic;
    uint32_t            size;

    sg_metrics_count_t  requests[SG_METRICS_OPS][SG_METRICS_REGIONS]
                                [SG_METRICS_SOURCES][SG_METRICS_CODES];
    sg_metrics_count_t  refusals[SG_REFUSALS];
    sg_metrics_count_t  reported[SG_REFUSALS];
    sg_metrics_count_t  rules[SG_METRICS_RULES];

    /* each bucket on its own, made cumulative when written */
    sg_metrics_count_t  upstream[SG_METRICS_OPS][SG_METRICS_REGIONS]
                                [SG_METRICS_BUCKETS];
    sg_metrics_count_t  upstream_msec[SG_METRICS_OPS][SG_METRICS_REGIONS];

    sg_metrics_count_t  body_bytes[SG_METRICS_OPS];
} sg_metrics_t;


/* one finished request */
typedef struct {
    sg_op_t             op;
    unsigned            region;       /* 0: global, 1: eu */
    unsigned            upstream;     /* the answer is SendGrid's */
    int                 status;
    sg_refusal_t        refusal;      /* SG_REFUSAL_NONE: not refused */
    unsigned            rules;        /* sg_body_rules() of its body */
    unsigned            timed;        /* it went to SendGrid, for: */
    unsigned long       upstream_msec;
    unsigned long       body_bytes;   /* read by the body validator */
} sg_metrics_request_t;


/* a key file, for the time it was read */
typedef struct {
    const unsigned char  *path;
    size_t                path_len;
    long                  loaded;     /* Unix time */
} sg_metrics_key_file_t;


/* Zeroes m and marks it with its layout. */
void sg_metrics_init(sg_metrics_t *m);

/* Whether m (found in a zone made before) has this layout. */
int sg_metrics_valid(const sg_metrics_t *m);

/* Counts one finished request. */
void sg_metrics_count(sg_metrics_t *m, const sg_metrics_request_t *rq);

/* Counts a failure that report_only logged and let through. */
void sg_metrics_count_reported(sg_metrics_t *m, sg_refusal_t refusal,
    unsigned rules);

/* The refusal reason of a route failure (404, 405 or 400). */
sg_refusal_t sg_metrics_route_refusal(int status);

/* The refusal reason of a body with sg_body_rules() rules. */
sg_refusal_t sg_metrics_body_refusal(unsigned rules);

/* Copies src counter by counter, each read atomically. */
void sg_metrics_snapshot(sg_metrics_t *dst, const sg_metrics_t *src);

/*
 * Writes the metrics of m and the load times of the key files in the
 * text exposition format (version 0.0.4) to buf, and returns the length;
 * with buf NULL only returns the length.  Every series is written, but
 * those of sendgrid_integrations_requests_total only once counted.
 */
size_t sg_metrics_text(const sg_metrics_t *m,
    const sg_metrics_key_file_t *keys, size_t nkeys, char *buf);

#endif /* SG_METRICS_H */
