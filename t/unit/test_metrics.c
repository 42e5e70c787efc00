/*
 * sg_metrics: the slots each request counts in, the exposition text
 * (exact lines, escaping, a length pass equal to the writing pass), and
 * exact counts from processes counting at once in shared memory.
 */

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "../../ngx_sendgrid_integrations_module/sg_metrics.h"
#include "../../ngx_sendgrid_integrations_module/sg_body.h"


#define P  "sendgrid_integrations_"


static sg_metrics_t  m;


/* the text of m (malloc()ed), after checking both passes agree */
static char *
text_of(const sg_metrics_t *metrics, const sg_metrics_key_file_t *keys,
    size_t nkeys)
{
    char    *buf;
    size_t   len, written;

    len = sg_metrics_text(metrics, keys, nkeys, NULL);

    buf = malloc(len + 1);
    if (buf == NULL) {
        return NULL;
    }

    written = sg_metrics_text(metrics, keys, nkeys, buf);
    buf[written] = '\0';

    is_int(written, len, "the length pass and the writing pass agree");

    return buf;
}


/* whether line (a whole line, without its \n) is in text */
static int
has_line(const char *text, const char *line)
{
    size_t       n;
    const char  *p;

    n = strlen(line);

    for (p = text; (p = strstr(p, line)) != NULL; p += n) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n') {
            return 1;
        }
    }

    return 0;
}


static sg_metrics_request_t
request(sg_op_t op, unsigned region, unsigned upstream, int status)
{
    sg_metrics_request_t  rq;

    memset(&rq, 0, sizeof(rq));

    rq.op = op;
    rq.region = region;
    rq.upstream = upstream;
    rq.status = status;

    return rq;
}


static void
test_empty(void)
{
    char    *t;
    size_t   lines, samples;
    char    *p;

    sg_metrics_init(&m);
    ok(sg_metrics_valid(&m), "a new structure is valid");

    t = text_of(&m, NULL, 0);
    if (t == NULL) {
        return;
    }

    ok(has_line(t, "# TYPE " P "requests_total counter"),
       "requests_total: TYPE");
    ok(strstr(t, P "requests_total{") == NULL,
       "no requests_total series before a request");
    ok(has_line(t, P "refusals_total{reason=\"route\"} 0"),
       "refusals: zero, written");
    ok(has_line(t, P "refusals_total{reason=\"internal\"} 0"),
       "refusals: the last reason");
    ok(has_line(t, P "reported_total{reason=\"body_schema\"} 0"),
       "reported: a reportable reason");
    ok(strstr(t, P "reported_total{reason=\"route\"}") == NULL,
       "reported: not a reason report_only never lets through");
    ok(has_line(t, P "schema_failures_total{rule=\"object\"} 0")
       && has_line(t, P "schema_failures_total{rule=\"unknown_member\"} 0"),
       "schema rules: the first and the last");
    ok(strstr(t, "rule=\"syntax\"") == NULL,
       "schema rules: not the JSON level's");
    ok(has_line(t, "# TYPE " P "upstream_response_time_seconds histogram"),
       "histogram: TYPE");
    ok(has_line(t, P "upstream_response_time_seconds_bucket{operation="
                "\"update\",region=\"eu\",le=\"+Inf\"} 0"),
       "histogram: the last bucket of the last series");
    ok(strstr(t, "operation=\"none\",region=\"global\",le=") == NULL,
       "histogram: no series for refused routes");
    ok(has_line(t, "# TYPE " P "key_file_loaded_timestamp_seconds gauge"),
       "key files: TYPE, without a sample");

    /* every line a comment or "series value" */
    lines = 0;
    samples = 0;

    for (p = t; *p; p = strchr(p, '\n') + 1) {
        lines++;

        if (*p != '#') {
            samples++;
        }
    }

    is_int(lines - samples, 14, "seven families, each with HELP and TYPE");
    is_int(samples, 18 + 6 + 18 + 5 * 2 * 14 + 2,
           "every sample of the fixed label sets");

    free(t);
}


static void
test_requests(void)
{
    char                  *t;
    sg_metrics_request_t   rq;

    sg_metrics_init(&m);

    rq = request(SG_OP_LIST, 0, 1, 200);
    sg_metrics_count(&m, &rq);
    sg_metrics_count(&m, &rq);

    rq = request(SG_OP_CREATE, 1, 0, 415);
    sg_metrics_count(&m, &rq);

    rq = request(SG_OP_NONE, 0, 0, 404);
    sg_metrics_count(&m, &rq);

    rq = request(SG_OP_GET, 0, 1, 999);
    sg_metrics_count(&m, &rq);

    rq = request(SG_OP_GET, 0, 0, 0);
    sg_metrics_count(&m, &rq);

    rq = request(SG_OP_DELETE, 0, 1, 599);
    sg_metrics_count(&m, &rq);

    rq = request(SG_OP_DELETE, 0, 1, 100);
    sg_metrics_count(&m, &rq);

    t = text_of(&m, NULL, 0);
    if (t == NULL) {
        return;
    }

    ok(has_line(t, P "requests_total{operation=\"list\",region=\"global\","
                "source=\"upstream\",class=\"2xx\",code=\"200\"} 2"),
       "requests: list, global, upstream, 200");
    ok(has_line(t, P "requests_total{operation=\"create\",region=\"eu\","
                "source=\"gateway\",class=\"4xx\",code=\"415\"} 1"),
       "requests: create, eu, gateway, 415");
    ok(has_line(t, P "requests_total{operation=\"none\",region=\"global\","
                "source=\"gateway\",class=\"4xx\",code=\"404\"} 1"),
       "requests: a refused route");
    ok(has_line(t, P "requests_total{operation=\"get\",region=\"global\","
                "source=\"upstream\",class=\"other\",code=\"other\"} 1"),
       "requests: a status above 599 is other");
    ok(has_line(t, P "requests_total{operation=\"get\",region=\"global\","
                "source=\"gateway\",class=\"other\",code=\"other\"} 1"),
       "requests: status 0 is other");
    ok(has_line(t, P "requests_total{operation=\"delete\",region=\"global\","
                "source=\"upstream\",class=\"5xx\",code=\"599\"} 1"),
       "requests: 599, the last code of its own");
    ok(has_line(t, P "requests_total{operation=\"delete\",region=\"global\","
                "source=\"upstream\",class=\"1xx\",code=\"100\"} 1"),
       "requests: 100, the first");

    free(t);
}


static void
test_refusals(void)
{
    char                  *t;
    sg_metrics_request_t   rq;

    sg_metrics_init(&m);

    rq = request(SG_OP_CREATE, 0, 0, 400);
    rq.refusal = SG_REFUSAL_BODY_SCHEMA;
    rq.rules = SG_BODY_RULE_DESTINATION_REQUIRED | SG_BODY_RULE_LABEL_TYPE;
    rq.body_bytes = 250;
    sg_metrics_count(&m, &rq);

    /* rules of a refusal for another reason are not schema failures */
    rq.refusal = SG_REFUSAL_BODY_SYNTAX;
    rq.rules = SG_BODY_RULE_SYNTAX;
    rq.body_bytes = 7;
    sg_metrics_count(&m, &rq);

    rq = request(SG_OP_UPDATE, 0, 0, 400);
    rq.refusal = SG_REFUSAL_BODY_SCHEMA;
    rq.rules = SG_BODY_RULE_LABEL_TYPE;
    rq.body_bytes = 11;
    sg_metrics_count(&m, &rq);

    sg_metrics_count_reported(&m, SG_REFUSAL_CONTENT_TYPE, 0);
    sg_metrics_count_reported(&m, SG_REFUSAL_BODY_SCHEMA,
                              SG_BODY_RULE_UNKNOWN_MEMBER);
    sg_metrics_count_reported(&m, SG_REFUSAL_NONE, 0);
    sg_metrics_count_reported(&m, SG_REFUSALS, 0);

    t = text_of(&m, NULL, 0);
    if (t == NULL) {
        return;
    }

    ok(has_line(t, P "refusals_total{reason=\"body_schema\"} 2"),
       "refusals: body_schema");
    ok(has_line(t, P "refusals_total{reason=\"body_syntax\"} 1"),
       "refusals: body_syntax");
    ok(has_line(t, P "schema_failures_total{rule=\"label_type\"} 2"),
       "schema rules: label_type, of two bodies");
    ok(has_line(t, P "schema_failures_total{rule="
                "\"destination_required\"} 1"),
       "schema rules: destination_required");
    ok(has_line(t, P "schema_failures_total{rule=\"unknown_member\"} 1"),
       "schema rules: of a reported body too");
    ok(has_line(t, P "reported_total{reason=\"content_type\"} 1")
       && has_line(t, P "reported_total{reason=\"body_schema\"} 1"),
       "reported: content_type and body_schema, nothing else");
    ok(has_line(t, P "validated_body_bytes_total{operation=\"create\"} 257")
       && has_line(t, P "validated_body_bytes_total{operation=\"update\"} "
                   "11"),
       "validated body bytes, by operation");

    free(t);

    is_int(sg_metrics_route_refusal(404), SG_REFUSAL_ROUTE, "404: route");
    is_int(sg_metrics_route_refusal(405), SG_REFUSAL_METHOD, "405: method");
    is_int(sg_metrics_route_refusal(400), SG_REFUSAL_QUERY, "400: query");

    is_int(sg_metrics_body_refusal(SG_BODY_RULE_EMPTY),
           SG_REFUSAL_BODY_EMPTY, "rules: empty");
    is_int(sg_metrics_body_refusal(SG_BODY_RULE_SYNTAX),
           SG_REFUSAL_BODY_SYNTAX, "rules: syntax");
    is_int(sg_metrics_body_refusal(SG_BODY_RULE_DUPLICATE),
           SG_REFUSAL_BODY_DUPLICATE, "rules: duplicate");
    is_int(sg_metrics_body_refusal(SG_BODY_RULE_OBJECT),
           SG_REFUSAL_BODY_SCHEMA, "rules: object is a schema rule");
    is_int(sg_metrics_body_refusal(SG_BODY_RULE_REGION_VALUE
                                   | SG_BODY_RULE_UNKNOWN_MEMBER),
           SG_REFUSAL_BODY_SCHEMA, "rules: schema rules");
}


static void
test_histogram(void)
{
    char                  *t;
    size_t                 i;
    sg_metrics_request_t   rq;

    static const unsigned long  times[] = { 0, 5, 6, 99, 100, 10000, 10001,
                                            3600000 };

    sg_metrics_init(&m);

    rq = request(SG_OP_GET, 1, 1, 200);
    rq.timed = 1;

    for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        rq.upstream_msec = times[i];
        sg_metrics_count(&m, &rq);
    }

    /* not timed: not in the histogram */
    rq.timed = 0;
    rq.upstream_msec = 1;
    sg_metrics_count(&m, &rq);

    t = text_of(&m, NULL, 0);
    if (t == NULL) {
        return;
    }

#define B(le, n)                                                              \
    P "upstream_response_time_seconds_bucket{operation=\"get\","              \
    "region=\"eu\",le=\"" le "\"} " n

    ok(has_line(t, B("0.005", "2")), "bucket 0.005: 0 and 5 ms");
    ok(has_line(t, B("0.01", "3")), "bucket 0.01");
    ok(has_line(t, B("0.025", "3")), "bucket 0.025");
    ok(has_line(t, B("0.1", "5")), "bucket 0.1: 99 and 100 ms");
    ok(has_line(t, B("0.25", "5")), "bucket 0.25");
    ok(has_line(t, B("2.5", "5")), "bucket 2.5");
    ok(has_line(t, B("10", "6")), "bucket 10: 10 s");
    ok(has_line(t, B("+Inf", "8")), "bucket +Inf: every one");

#undef B

    ok(has_line(t, P "upstream_response_time_seconds_count{operation=\"get\","
                "region=\"eu\"} 8"),
       "count");
    ok(has_line(t, P "upstream_response_time_seconds_sum{operation=\"get\","
                "region=\"eu\"} 3620.211"),
       "sum, in seconds");
    ok(has_line(t, P "upstream_response_time_seconds_count{operation="
                "\"get\",region=\"global\"} 0"),
       "the other region: none");

    free(t);
}


static void
test_key_files(void)
{
    char                   *t;
    sg_metrics_key_file_t   keys[2];

    static const unsigned char  odd[] = "/etc/\"keys\"\\a\nb\xff\xc3\xa9.key";

    sg_metrics_init(&m);

    keys[0].path = (const unsigned char *) "/run/secrets/global.key";
    keys[0].path_len = sizeof("/run/secrets/global.key") - 1;
    keys[0].loaded = 1700000000;

    keys[1].path = odd;
    keys[1].path_len = sizeof(odd) - 1;
    keys[1].loaded = 1700000001;

    t = text_of(&m, keys, 2);
    if (t == NULL) {
        return;
    }

    ok(has_line(t, P "key_file_loaded_timestamp_seconds{path="
                "\"/run/secrets/global.key\"} 1700000000"),
       "a key file: its path and when it was read");
    ok(has_line(t, P "key_file_loaded_timestamp_seconds{path="
                "\"/etc/\\\"keys\\\"\\\\a\\nb\xef\xbf\xbd\xc3\xa9.key\"} "
                "1700000001"),
       "a path escaped: quote, backslash, line feed, a byte not UTF-8");

    free(t);
}


/* processes counting into shared memory at once lose no count */
static void
test_processes(void)
{
    int                    status, failed;
    pid_t                  pid[4];
    size_t                 i, j;
    sg_metrics_t          *shared, snap;
    sg_metrics_request_t   rq;

    shared = mmap(NULL, sizeof(sg_metrics_t), PROT_READ|PROT_WRITE,
                  MAP_SHARED|MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        ok(0, "mmap");
        return;
    }

    sg_metrics_init(shared);

    rq = request(SG_OP_CREATE, 0, 1, 201);
    rq.timed = 1;
    rq.upstream_msec = 3;
    rq.body_bytes = 250;

    for (i = 0; i < 4; i++) {
        pid[i] = fork();

        if (pid[i] == 0) {
            for (j = 0; j < 100000; j++) {
                sg_metrics_count(shared, &rq);
            }

            _exit(0);
        }
    }

    failed = 0;

    for (i = 0; i < 4; i++) {
        if (pid[i] < 0 || waitpid(pid[i], &status, 0) != pid[i]
            || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        {
            failed++;
        }
    }

    is_int(failed, 0, "four processes counted");

    sg_metrics_snapshot(&snap, shared);

    ok(sg_metrics_valid(&snap), "a snapshot is valid");
    is_int(snap.requests[SG_OP_CREATE][0][1][101], 400000,
           "400000 requests, none lost");
    is_int(snap.upstream[SG_OP_CREATE][0][0], 400000,
           "400000 times in the first bucket");
    is_int(snap.upstream_msec[SG_OP_CREATE][0], 1200000, "their sum");
    is_int(snap.body_bytes[SG_OP_CREATE], 100000000, "their body bytes");

    munmap(shared, sizeof(sg_metrics_t));
}


int
main(void)
{
    test_empty();
    test_requests();
    test_refusals();
    test_histogram();
    test_key_files();
    test_processes();

    /* a structure of another layout is not taken */
    sg_metrics_init(&m);
    m.size--;
    ok(!sg_metrics_valid(&m), "another layout is not valid");

    return done_testing();
}
