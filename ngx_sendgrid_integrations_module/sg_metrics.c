/*
 * The gateway's metrics and their Prometheus text.
 */

#include <stdio.h>
#include <string.h>

#include "sg_metrics.h"
#include "sg_body.h"
#include "sg_json.h"


/* "SGM1": to change with the layout of sg_metrics_t */
#define SG_METRICS_MAGIC  0x53474d31

#define SG_PREFIX  "sendgrid_integrations_"

/* the schema's rules, of the bits of sg_body_rules() */
#define SG_METRICS_SCHEMA_RULES  (~(SG_BODY_RULE_OBJECT - 1)                  \
                                  & (SG_BODY_RULE_LIMIT - 1))

#define sg_metrics_add(counter, n)                                            \
    (void) __atomic_fetch_add(&(counter), (n), __ATOMIC_RELAXED)


typedef struct {
    char    *buf;       /* NULL: only counted */
    size_t   len;
} sg_out_t;


static void sg_metrics_count_rules(sg_metrics_t *m, sg_refusal_t refusal,
    unsigned rules);
static void sg_metrics_write_requests(sg_out_t *o, const sg_metrics_t *m);
static void sg_metrics_write_request(sg_out_t *o, unsigned op,
    unsigned region, unsigned source, unsigned c, sg_metrics_count_t n);
static void sg_metrics_write_refusals(sg_out_t *o, const sg_metrics_t *m);
static void sg_metrics_write_rules(sg_out_t *o, const sg_metrics_t *m);
static void sg_metrics_write_upstream(sg_out_t *o, const sg_metrics_t *m);
static void sg_metrics_write_body_bytes(sg_out_t *o, const sg_metrics_t *m);
static void sg_metrics_write_key_files(sg_out_t *o,
    const sg_metrics_key_file_t *keys, size_t nkeys);
static void sg_out_family(sg_out_t *o, const char *name, const char *type,
    const char *help);
static void sg_out_sample(sg_out_t *o, const char *name, const char *label,
    const char *value, unsigned long n);
static void sg_out_op_region(sg_out_t *o, const char *name, unsigned op,
    unsigned region);
static void sg_out_str(sg_out_t *o, const char *s);
static void sg_out_mem(sg_out_t *o, const void *s, size_t n);
static void sg_out_value(sg_out_t *o, unsigned long v);
static void sg_out_seconds(sg_out_t *o, unsigned long msec, int trim);
static void sg_out_label_value(sg_out_t *o, const unsigned char *s,
    size_t len);


static const char *const  sg_op_labels[SG_METRICS_OPS] = {
    "none", "list", "create", "delete", "get", "update"
};

static const char *const  sg_region_labels[SG_METRICS_REGIONS] = {
    "global", "eu"
};

static const char *const  sg_source_labels[SG_METRICS_SOURCES] = {
    "gateway", "upstream"
};

/* reasons, and whether report_only may let a failure of them through */
static const struct {
    const char  *name;
    int          reportable;
} sg_refusal_labels[SG_REFUSALS] = {
    { "", 0 },
    { "route", 0 },
    { "method", 0 },
    { "query", 0 },
    { "uri_changed", 0 },
    { "method_override", 0 },
    { "subuser_repeated", 0 },
    { "content_type", 1 },
    { "body_not_allowed", 0 },
    { "body_empty", 1 },
    { "body_syntax", 1 },
    { "body_duplicate", 1 },
    { "body_limit", 1 },
    { "body_schema", 1 },
    { "body_too_large", 0 },
    { "key_missing", 0 },
    { "subuser_invalid", 0 },
    { "key_not_sent", 0 },
    { "internal", 0 }
};

/* by bit of sg_body_rules(); the first three and the last are reasons of
 * their own */
static const char *const  sg_rule_labels[SG_METRICS_RULES] = {
    "empty",
    "syntax",
    "duplicate",
    "object",
    "destination_required",
    "destination_value",
    "filters_required",
    "filters_type",
    "email_events_required",
    "email_events_type",
    "email_event_value",
    "properties_required",
    "properties_type",
    "write_key_required",
    "write_key_type",
    "write_key_length",
    "destination_region_required",
    "destination_region_value",
    "label_type",
    "unknown_member",
    "name_case",
    "limit"
};

/* upper bounds of the buckets, in milliseconds; the last is +Inf */
static const unsigned long  sg_bucket_msec[SG_METRICS_BUCKETS - 1] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
};


void
sg_metrics_init(sg_metrics_t *m)
{
    memset(m, 0, sizeof(sg_metrics_t));

    m->magic = SG_METRICS_MAGIC;
    m->size = sizeof(sg_metrics_t);
}


int
sg_metrics_valid(const sg_metrics_t *m)
{
    return m->magic == SG_METRICS_MAGIC && m->size == sizeof(sg_metrics_t);
}


void
sg_metrics_count(sg_metrics_t *m, const sg_metrics_request_t *rq)
{
    unsigned  op, region, code, b;

    op = (rq->op < SG_METRICS_OPS) ? rq->op : SG_OP_NONE;
    region = (rq->region < SG_METRICS_REGIONS) ? rq->region : 0;
    code = (rq->status >= 100 && rq->status <= 599)
           ? (unsigned) rq->status - 100 : SG_METRICS_CODES - 1;

    sg_metrics_add(m->requests[op][region][rq->upstream ? 1 : 0][code], 1);

    if (rq->refusal > SG_REFUSAL_NONE && rq->refusal < SG_REFUSALS) {
        sg_metrics_add(m->refusals[rq->refusal], 1);
        sg_metrics_count_rules(m, rq->refusal, rq->rules);
    }

    if (rq->timed) {
        for (b = 0; b < SG_METRICS_BUCKETS - 1; b++) {
            if (rq->upstream_msec <= sg_bucket_msec[b]) {
                break;
            }
        }

        sg_metrics_add(m->upstream[op][region][b], 1);
        sg_metrics_add(m->upstream_msec[op][region], rq->upstream_msec);
    }

    if (rq->body_bytes) {
        sg_metrics_add(m->body_bytes[op], rq->body_bytes);
    }
}


void
sg_metrics_count_reported(sg_metrics_t *m, sg_refusal_t refusal,
    unsigned rules)
{
    if (refusal > SG_REFUSAL_NONE && refusal < SG_REFUSALS) {
        sg_metrics_add(m->reported[refusal], 1);
        sg_metrics_count_rules(m, refusal, rules);
    }
}


/* the schema rules a body broke, when they are why it failed */
static void
sg_metrics_count_rules(sg_metrics_t *m, sg_refusal_t refusal,
    unsigned rules)
{
    unsigned  b;

    if (refusal != SG_REFUSAL_BODY_SCHEMA) {
        return;
    }

    for (b = 0; b < SG_METRICS_RULES; b++) {
        if (rules & SG_METRICS_SCHEMA_RULES & (1u << b)) {
            sg_metrics_add(m->rules[b], 1);
        }
    }
}


sg_refusal_t
sg_metrics_route_refusal(int status)
{
    switch (status) {

    case 404:
        return SG_REFUSAL_ROUTE;

    case 405:
        return SG_REFUSAL_METHOD;

    default:
        return SG_REFUSAL_QUERY;
    }
}


sg_refusal_t
sg_metrics_body_refusal(unsigned rules)
{
    if (rules & SG_BODY_RULE_EMPTY) {
        return SG_REFUSAL_BODY_EMPTY;
    }

    if (rules & SG_BODY_RULE_SYNTAX) {
        return SG_REFUSAL_BODY_SYNTAX;
    }

    if (rules & SG_BODY_RULE_DUPLICATE) {
        return SG_REFUSAL_BODY_DUPLICATE;
    }

    if (rules & SG_BODY_RULE_LIMIT) {
        return SG_REFUSAL_BODY_LIMIT;
    }

    return SG_REFUSAL_BODY_SCHEMA;
}


void
sg_metrics_snapshot(sg_metrics_t *dst, const sg_metrics_t *src)
{
    size_t                     i, n;
    sg_metrics_count_t        *d;
    const sg_metrics_count_t  *s;

    dst->magic = src->magic;
    dst->size = src->size;

    /* every member after the header is a counter */
    d = (sg_metrics_count_t *) &dst->requests;
    s = (const sg_metrics_count_t *) &src->requests;
    n = (sizeof(sg_metrics_t) - offsetof(sg_metrics_t, requests))
        / sizeof(sg_metrics_count_t);

    for (i = 0; i < n; i++) {
        d[i] = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
    }
}


size_t
sg_metrics_text(const sg_metrics_t *m, const sg_metrics_key_file_t *keys,
    size_t nkeys, char *buf)
{
    sg_out_t  o;

    o.buf = buf;
    o.len = 0;

    sg_metrics_write_requests(&o, m);
    sg_metrics_write_refusals(&o, m);
    sg_metrics_write_rules(&o, m);
    sg_metrics_write_upstream(&o, m);
    sg_metrics_write_body_bytes(&o, m);
    sg_metrics_write_key_files(&o, keys, nkeys);

    return o.len;
}


static void
sg_metrics_write_requests(sg_out_t *o, const sg_metrics_t *m)
{
    unsigned                   op, region, source, c;
    const sg_metrics_count_t  *n;

    sg_out_family(o, SG_PREFIX "requests_total", "counter",
                  "Requests in gateway locations, by operation, region, "
                  "who answered (the gateway or SendGrid) and status code.");

    for (op = 0; op < SG_METRICS_OPS; op++) {
        for (region = 0; region < SG_METRICS_REGIONS; region++) {
            for (source = 0; source < SG_METRICS_SOURCES; source++) {

                n = m->requests[op][region][source];

                for (c = 0; c < SG_METRICS_CODES; c++) {
                    if (n[c]) {
                        sg_metrics_write_request(o, op, region, source, c,
                                                 n[c]);
                    }
                }
            }
        }
    }
}


/* one series of requests_total; c is the status less 100, or "other" */
static void
sg_metrics_write_request(sg_out_t *o, unsigned op, unsigned region,
    unsigned source, unsigned c, sg_metrics_count_t n)
{
    char  code[sizeof("other")];

    static const char *const  classes[] = {
        "1xx", "2xx", "3xx", "4xx", "5xx"
    };

    sg_out_op_region(o, SG_PREFIX "requests_total", op, region);
    sg_out_str(o, "\",source=\"");
    sg_out_str(o, sg_source_labels[source]);
    sg_out_str(o, "\",class=\"");

    if (c < SG_METRICS_CODES - 1) {
        snprintf(code, sizeof(code), "%u", c + 100);
        sg_out_str(o, classes[c / 100]);

    } else {
        memcpy(code, "other", sizeof("other"));
        sg_out_str(o, "other");
    }

    sg_out_str(o, "\",code=\"");
    sg_out_str(o, code);
    sg_out_str(o, "\"} ");
    sg_out_value(o, n);
}


static void
sg_metrics_write_refusals(sg_out_t *o, const sg_metrics_t *m)
{
    unsigned  r;

    sg_out_family(o, SG_PREFIX "refusals_total", "counter",
                  "Requests the gateway refused itself, by the first check "
                  "they failed.");

    for (r = SG_REFUSAL_NONE + 1; r < SG_REFUSALS; r++) {
        sg_out_sample(o, SG_PREFIX "refusals_total", "reason",
                      sg_refusal_labels[r].name, m->refusals[r]);
    }

    sg_out_family(o, SG_PREFIX "reported_total", "counter",
                  "Failures that report_only logged and let through, by "
                  "reason.");

    for (r = SG_REFUSAL_NONE + 1; r < SG_REFUSALS; r++) {
        if (sg_refusal_labels[r].reportable) {
            sg_out_sample(o, SG_PREFIX "reported_total", "reason",
                          sg_refusal_labels[r].name, m->reported[r]);
        }
    }
}


static void
sg_metrics_write_rules(sg_out_t *o, const sg_metrics_t *m)
{
    unsigned  b;

    sg_out_family(o, SG_PREFIX "schema_failures_total", "counter",
                  "Request bodies that broke each schema rule, refused or "
                  "reported; a body may break several.");

    for (b = 0; b < SG_METRICS_RULES; b++) {
        if (SG_METRICS_SCHEMA_RULES & (1u << b)) {
            sg_out_sample(o, SG_PREFIX "schema_failures_total", "rule",
                          sg_rule_labels[b], m->rules[b]);
        }
    }
}


static void
sg_metrics_write_upstream(sg_out_t *o, const sg_metrics_t *m)
{
    unsigned             op, region, b;
    sg_metrics_count_t   n;

#define SG_HISTOGRAM  SG_PREFIX "upstream_response_time_seconds"

    sg_out_family(o, SG_HISTOGRAM, "histogram",
                  "Time SendGrid took to answer, from connecting to the end "
                  "of its response, all tries of a request together.");

    for (op = SG_OP_NONE + 1; op < SG_METRICS_OPS; op++) {
        for (region = 0; region < SG_METRICS_REGIONS; region++) {
            n = 0;

            for (b = 0; b < SG_METRICS_BUCKETS; b++) {
                n += m->upstream[op][region][b];

                sg_out_op_region(o, SG_HISTOGRAM "_bucket", op, region);
                sg_out_str(o, "\",le=\"");

                if (b < SG_METRICS_BUCKETS - 1) {
                    sg_out_seconds(o, sg_bucket_msec[b], 1);

                } else {
                    sg_out_str(o, "+Inf");
                }

                sg_out_str(o, "\"} ");
                sg_out_value(o, n);
            }

            sg_out_op_region(o, SG_HISTOGRAM "_sum", op, region);
            sg_out_str(o, "\"} ");
            sg_out_seconds(o, m->upstream_msec[op][region], 0);
            sg_out_str(o, "\n");

            sg_out_op_region(o, SG_HISTOGRAM "_count", op, region);
            sg_out_str(o, "\"} ");
            sg_out_value(o, n);
        }
    }

#undef SG_HISTOGRAM
}


static void
sg_metrics_write_body_bytes(sg_out_t *o, const sg_metrics_t *m)
{
    sg_out_family(o, SG_PREFIX "validated_body_bytes_total", "counter",
                  "Bytes of request bodies the body validator read.");

    sg_out_sample(o, SG_PREFIX "validated_body_bytes_total", "operation",
                  "create", m->body_bytes[SG_OP_CREATE]);
    sg_out_sample(o, SG_PREFIX "validated_body_bytes_total", "operation",
                  "update", m->body_bytes[SG_OP_UPDATE]);
}


static void
sg_metrics_write_key_files(sg_out_t *o, const sg_metrics_key_file_t *keys,
    size_t nkeys)
{
    size_t  i;

    sg_out_family(o, SG_PREFIX "key_file_loaded_timestamp_seconds", "gauge",
                  "When each API key file was last read (the configuration "
                  "was loaded), as a Unix time.");

    for (i = 0; i < nkeys; i++) {
        sg_out_str(o, SG_PREFIX "key_file_loaded_timestamp_seconds{path=\"");
        sg_out_label_value(o, keys[i].path, keys[i].path_len);
        sg_out_str(o, "\"} ");
        sg_out_value(o, keys[i].loaded > 0 ? (unsigned long) keys[i].loaded
                                           : 0);
    }
}


static void
sg_out_family(sg_out_t *o, const char *name, const char *type,
    const char *help)
{
    sg_out_str(o, "# HELP ");
    sg_out_str(o, name);
    sg_out_str(o, " ");
    sg_out_str(o, help);
    sg_out_str(o, "\n# TYPE ");
    sg_out_str(o, name);
    sg_out_str(o, " ");
    sg_out_str(o, type);
    sg_out_str(o, "\n");
}


/* a sample of one label: name{label="value"} n */
static void
sg_out_sample(sg_out_t *o, const char *name, const char *label,
    const char *value, unsigned long n)
{
    sg_out_str(o, name);
    sg_out_str(o, "{");
    sg_out_str(o, label);
    sg_out_str(o, "=\"");
    sg_out_str(o, value);
    sg_out_str(o, "\"} ");
    sg_out_value(o, n);
}


/* name{operation="op",region="region  (the rest of the labels follow) */
static void
sg_out_op_region(sg_out_t *o, const char *name, unsigned op,
    unsigned region)
{
    sg_out_str(o, name);
    sg_out_str(o, "{operation=\"");
    sg_out_str(o, sg_op_labels[op]);
    sg_out_str(o, "\",region=\"");
    sg_out_str(o, sg_region_labels[region]);
}


static void
sg_out_str(sg_out_t *o, const char *s)
{
    sg_out_mem(o, s, strlen(s));
}


static void
sg_out_mem(sg_out_t *o, const void *s, size_t n)
{
    if (o->buf) {
        memcpy(o->buf + o->len, s, n);
    }

    o->len += n;
}


/* a sample's value and the end of its line */
static void
sg_out_value(sg_out_t *o, unsigned long v)
{
    int   n;
    char  text[32];

    n = snprintf(text, sizeof(text), "%lu\n", v);

    sg_out_mem(o, text, n);
}


/* msec as seconds: "2.5" with trim, else always three decimals */
static void
sg_out_seconds(sg_out_t *o, unsigned long msec, int trim)
{
    int   n;
    char  text[32];

    n = snprintf(text, sizeof(text), "%lu.%03lu", msec / 1000, msec % 1000);

    if (trim) {
        while (text[n - 1] == '0') {
            n--;
        }

        if (text[n - 1] == '.') {
            n--;
        }
    }

    sg_out_mem(o, text, n);
}


/*
 * A label value: '\\', '"' and line feeds escaped, bytes that are not
 * UTF-8 written as U+FFFD, as the format takes UTF-8 only.
 */
static void
sg_out_label_value(sg_out_t *o, const unsigned char *s, size_t len)
{
    size_t  i, seq;

    for (i = 0; i < len; i += seq) {
        seq = 1;

        if (s[i] == '\\' || s[i] == '"') {
            sg_out_mem(o, "\\", 1);
            sg_out_mem(o, &s[i], 1);

        } else if (s[i] == '\n') {
            sg_out_str(o, "\\n");

        } else if (s[i] < 0x80) {
            sg_out_mem(o, &s[i], 1);

        } else {
            seq = sg_utf8_sequence(s + i, len - i);

            if (seq == 0) {
                seq = 1;
                sg_out_str(o, "\xef\xbf\xbd");

            } else {
                sg_out_mem(o, &s[i], seq);
            }
        }
    }
}
