
/*
 * ngx_http_sendgrid_integrations_module: metrics.  The counters live in
 * the shared memory zone of sendgrid_metrics_zone, one for the http{}
 * block, shared by every worker and kept across reloads; the gateway
 * locations count each request into it in the log phase, with atomic
 * additions to slots fixed at compile time (sg_metrics.c), and the
 * location of sendgrid_metrics writes them in Prometheus' text format.
 */


#include "ngx_http_sendgrid_integrations_module.h"


static ngx_int_t ngx_http_sendgrid_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_sendgrid_metrics_handler(ngx_http_request_t *r);
static sg_metrics_key_file_t *ngx_http_sendgrid_metrics_key_files(
    ngx_http_request_t *r, ngx_uint_t *n);
static sg_metrics_t *ngx_http_sendgrid_metrics_of(ngx_http_request_t *r);
static ngx_msec_t ngx_http_sendgrid_upstream_time(ngx_http_request_t *r);


/* sendgrid_metrics_zone name size */
char *
ngx_http_sendgrid_metrics_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_sendgrid_main_conf_t *smcf = conf;

    ssize_t          size;
    ngx_str_t       *value;
    ngx_shm_zone_t  *shm_zone;

    if (smcf->metrics_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    /* what nginx's slab allocator needs in any zone */
    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small", &value[1]);
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &value[1], size,
                                     &ngx_http_sendgrid_integrations_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_sendgrid_metrics_init_zone;

    smcf->metrics_zone = shm_zone;

    return NGX_CONF_OK;
}


/*
 * The counters: those of the zone the configuration before had (the same
 * name and size), else new ones.  A zone too small for them leaves the
 * metrics off, with a warning; requests are served as ever.
 */
static ngx_int_t
ngx_http_sendgrid_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    sg_metrics_t     *m;
    ngx_uint_t        need;
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data) {
        m = data;

        if (!sg_metrics_valid(m)) {
            ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                          "sendgrid_metrics_zone \"%V\" was made by another "
                          "version of the module, its counters start anew",
                          &shm_zone->shm.name);
            sg_metrics_init(m);
        }

        shm_zone->data = m;
        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    shpool->log_nomem = 0;

    m = ngx_slab_alloc(shpool, sizeof(sg_metrics_t));

    if (m == NULL) {
        /* their pages, and two for the allocator's own */
        need = ((sizeof(sg_metrics_t) + ngx_pagesize - 1) / ngx_pagesize + 2)
               * ngx_pagesize / 1024;

        ngx_log_error(NGX_LOG_WARN, shm_zone->shm.log, 0,
                      "sendgrid_metrics_zone \"%V\" is too small for the "
                      "metrics, which need %uik: they are off",
                      &shm_zone->shm.name, need);

        shm_zone->data = NULL;
        return NGX_OK;
    }

    sg_metrics_init(m);

    shpool->data = m;
    shm_zone->data = m;

    return NGX_OK;
}


/* sendgrid_metrics name: the location answers with the zone's metrics */
char *
ngx_http_sendgrid_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sendgrid_loc_conf_t *slcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (slcf->metrics) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* a zone that sendgrid_metrics_zone never sizes fails the start */
    slcf->metrics = ngx_shared_memory_add(cf, &value[1], 0,
                                       &ngx_http_sendgrid_integrations_module);
    if (slcf->metrics == NULL) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_sendgrid_metrics_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_sendgrid_metrics_handler(ngx_http_request_t *r)
{
    size_t                         len;
    ngx_int_t                      rc;
    ngx_buf_t                     *b;
    ngx_uint_t                     nkeys;
    sg_metrics_t                  *m, *snapshot;
    sg_metrics_key_file_t         *keys;
    ngx_http_sendgrid_loc_conf_t  *slcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    slcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_sendgrid_integrations_module);
    m = slcf->metrics->data;

    if (m == NULL) {
        /* the zone is too small: said when it was made */
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    /* one moment's counters, written twice: measured, then written */
    snapshot = ngx_palloc(r->pool, sizeof(sg_metrics_t));
    if (snapshot == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sg_metrics_snapshot(snapshot, m);

    keys = ngx_http_sendgrid_metrics_key_files(r, &nkeys);
    if (keys == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = sg_metrics_text(snapshot, keys, nkeys, NULL);

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last += sg_metrics_text(snapshot, keys, nkeys, (char *) b->pos);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = len;

    return ngx_http_sendgrid_send(r, b);
}


/* every key file the configuration read, and when */
static sg_metrics_key_file_t *
ngx_http_sendgrid_metrics_key_files(ngx_http_request_t *r, ngx_uint_t *n)
{
    ngx_uint_t                      i;
    sg_metrics_key_file_t          *keys;
    ngx_http_sendgrid_key_t       **key;
    ngx_http_sendgrid_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r,
                                         ngx_http_sendgrid_integrations_module);

    key = smcf->keys.elts;
    *n = smcf->keys.nelts;

    keys = ngx_palloc(r->pool, (*n + 1) * sizeof(sg_metrics_key_file_t));
    if (keys == NULL) {
        return NULL;
    }

    for (i = 0; i < *n; i++) {
        keys[i].path = key[i]->path.data;
        keys[i].path_len = key[i]->path.len;
        keys[i].loaded = key[i]->loaded;
    }

    return keys;
}


/* the zone's counters, when there are any, for a main request */
static sg_metrics_t *
ngx_http_sendgrid_metrics_of(ngx_http_request_t *r)
{
    ngx_http_sendgrid_main_conf_t  *smcf;

    if (r != r->main) {
        return NULL;
    }

    smcf = ngx_http_get_module_main_conf(r,
                                         ngx_http_sendgrid_integrations_module);

    return smcf->metrics_zone ? smcf->metrics_zone->data : NULL;
}


/* the log phase: a request of a gateway location, as it was answered */
void
ngx_http_sendgrid_metrics_count(ngx_http_request_t *r)
{
    sg_metrics_t             *m;
    sg_metrics_request_t      rq;
    ngx_http_sendgrid_ctx_t  *ctx;

    m = ngx_http_sendgrid_metrics_of(r);
    if (m == NULL) {
        return;
    }

    ctx = ngx_http_sendgrid_get_ctx(r);
    if (ctx == NULL || !ctx->conf->metrics_count) {
        return;
    }

    rq.op = ctx->route.op;
    rq.region = ctx->region;

    /* as $status */
    rq.status = (int) (r->err_status ? (ngx_uint_t) r->err_status
                                     : r->headers_out.status);

    rq.upstream = ctx->forwarded && !ctx->own_response && r->upstream
                  && r->upstream->headers_in.status_n
                     == (ngx_uint_t) rq.status;

    rq.refusal = ctx->refusal;

    if (rq.refusal == SG_REFUSAL_NONE && !rq.upstream
        && rq.status == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE)
    {
        /*
         * client_max_body_size: nginx answers before the gateway's
         * handler runs when Content-Length says so, else while it reads
         */
        rq.refusal = SG_REFUSAL_BODY_TOO_LARGE;
    }

    rq.rules = ctx->body ? sg_body_rules(ctx->body) : 0;
    rq.body_bytes = ctx->body ? (unsigned long) ctx->body_seen : 0;

    rq.timed = ctx->key_added;
    rq.upstream_msec = rq.timed ? ngx_http_sendgrid_upstream_time(r) : 0;

    sg_metrics_count(m, &rq);
}


/* a failure that report_only lets through */
void
ngx_http_sendgrid_metrics_report(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx)
{
    sg_metrics_t  *m;

    m = ngx_http_sendgrid_metrics_of(r);

    if (m && ctx->conf->metrics_count) {
        sg_metrics_count_reported(m, ctx->refusal,
                                  ctx->body ? sg_body_rules(ctx->body) : 0);
    }
}


/* the time of every try of the request to SendGrid together */
static ngx_msec_t
ngx_http_sendgrid_upstream_time(ngx_http_request_t *r)
{
    ngx_uint_t                  i;
    ngx_msec_t                  msec;
    ngx_msec_int_t              ms;
    ngx_http_upstream_state_t  *state;

    msec = 0;

    if (r->upstream_states == NULL) {
        return 0;
    }

    state = r->upstream_states->elts;

    for (i = 0; i < r->upstream_states->nelts; i++) {
        ms = state[i].response_time;

        if (ms > 0) {
            msec += ms;
        }
    }

    return msec;
}
