
/*
 * ngx_http_sendgrid_integrations_module: error responses on the module's
 * routes.  The gateway's own answers and nginx's error pages become
 * SendGrid-shaped JSON; upstream error bodies are copied as they pass,
 * untouched and undelayed; each error gives one normalized log line and
 * $sendgrid_error.
 */


#include "ngx_http_sendgrid_integrations_module.h"


static ngx_int_t ngx_http_sendgrid_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_sendgrid_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static void ngx_http_sendgrid_redirected_page(ngx_http_request_t *r);
static const char *ngx_http_sendgrid_page_message(ngx_uint_t status);
static ngx_int_t ngx_http_sendgrid_replace_page(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx);
static ngx_int_t ngx_http_sendgrid_replace_body(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_chain_t *in);
static void ngx_http_sendgrid_start_inspection(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_uint_t flags);
static void ngx_http_sendgrid_inspect(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_chain_t *in);
static ngx_int_t ngx_http_sendgrid_log_handler(ngx_http_request_t *r);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_http_sendgrid_filter_init(ngx_conf_t *cf)
{
    ngx_array_t                *log;
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    log = &cmcf->phases[NGX_HTTP_LOG_PHASE].handlers;

    if (ngx_array_push(log) == NULL) {
        return NGX_ERROR;
    }

    /* first in the log phase, so $sendgrid_error is complete for access_log */
    h = log->elts;
    ngx_memmove(&h[1], &h[0], (log->nelts - 1) * sizeof(ngx_http_handler_pt));
    h[0] = ngx_http_sendgrid_log_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_sendgrid_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_sendgrid_body_filter;

    return NGX_OK;
}


ngx_buf_t *
ngx_http_sendgrid_error_buf(ngx_http_request_t *r, sg_error_t *err)
{
    ngx_buf_t  *b;

    b = ngx_create_temp_buf(r->pool, sg_error_body_len(err));
    if (b == NULL) {
        return NULL;
    }

    b->last = sg_error_body(b->pos, err);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    return b;
}


ngx_int_t
ngx_http_sendgrid_json_headers(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, size_t len)
{
    ngx_table_elt_t  *allow;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;
    r->headers_out.content_length_n = len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    if (ctx->allow == NULL) {
        return NGX_OK;
    }

    allow = ngx_list_push(&r->headers_out.headers);
    if (allow == NULL) {
        return NGX_ERROR;
    }

    /* every member set: other modules read them all */
    allow->hash = 1;
    ngx_str_set(&allow->key, "Allow");
    allow->value.data = (u_char *) ctx->allow;
    allow->value.len = ngx_strlen(ctx->allow);
    allow->lowcase_key = (u_char *) "allow";
#if (nginx_version >= 1023000)
    allow->next = NULL;
#endif

    return NGX_OK;
}


/*
 * One error on the module's routes: its normalized line is logged, and is
 * what $sendgrid_error yields.  When nothing would be logged (the line is
 * off, or above the level of every error_log), the line is only made if
 * $sendgrid_error is read.  For the gateway's own errors (FROM_GATEWAY)
 * body is ctx->err written by ngx_http_sendgrid_error_buf(), and the line
 * is made from ctx->err itself.
 */
void
ngx_http_sendgrid_log_error(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_uint_t status, u_char *body, size_t len,
    ngx_uint_t flags)
{
    ngx_uint_t                      level;
    ngx_http_sendgrid_error_src_t  *src;

    src = &ctx->error_src;

    src->status = status;
    src->flags = flags;
    src->body = body;
    src->len = len;
    src->write_key = ctx->write_key;
    src->encoding = ctx->encoding;

    if ((flags & NGX_HTTP_SENDGRID_FROM_GATEWAY)
        && ctx->err.status == (int) status)
    {
        src->err = ctx->err;

    } else {
        ngx_memzero(&src->err, sizeof(sg_error_t));
    }

    ctx->error_pending = 1;

    level = ctx->conf->error_log_level;

    /* what ngx_log_error() checks before it writes anything */
    if (level == NGX_HTTP_SENDGRID_LOG_OFF
        || r->connection->log->log_level < level)
    {
        return;
    }

    if (ngx_http_sendgrid_error_line(r, ctx) != NGX_OK) {
        return;
    }

    ngx_log_error(level, r->connection->log, 0, "sendgrid_integrations: %*s",
                  ctx->error_line.len, ctx->error_line.data);
}


/* makes ctx->error_line from ctx->error_src */
ngx_int_t
ngx_http_sendgrid_error_line(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx)
{
    u_char                         *line;
    size_t                          n;
    ngx_uint_t                      i;
    sg_secret_t                    *secrets;
    sg_errlog_input_t               in;
    ngx_http_sendgrid_error_src_t  *src;
    ngx_http_sendgrid_main_conf_t  *smcf;
    u_char                          buf[SG_ERRLOG_LINE_MAX + 1];

    ctx->error_pending = 0;

    smcf = ngx_http_get_module_main_conf(r,
                                         ngx_http_sendgrid_integrations_module);

    src = &ctx->error_src;

    /* the keys, and the request's write_key when it has one */
    secrets = smcf->secrets;
    i = smcf->nsecrets;

    if (src->write_key.len) {
        secrets = ngx_palloc(r->pool, (i + 1) * sizeof(sg_secret_t));
        if (secrets == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(secrets, smcf->secrets, i * sizeof(sg_secret_t));

        secrets[i].data = src->write_key.data;
        secrets[i].len = src->write_key.len;
        i++;
    }

    ngx_memzero(&in, sizeof(sg_errlog_input_t));

    in.gateway = (src->flags & NGX_HTTP_SENDGRID_FROM_GATEWAY) ? 1 : 0;
    in.report_only = (src->flags & NGX_HTTP_SENDGRID_REPORTED) ? 1 : 0;
    in.body_cut = (src->flags & NGX_HTTP_SENDGRID_BODY_CUT) ? 1 : 0;
    in.status = src->status;
    in.operation = sg_op_name(ctx->route.op);
    in.region = (const char *) ngx_http_sendgrid_region_name(ctx->region)->data;
    in.subuser = ctx->subuser.len ? ctx->subuser.data : NULL;
    in.subuser_len = ctx->subuser.len;
    in.error = src->err.status ? &src->err : NULL;
    in.body = src->body;
    in.body_len = src->len;
    in.encoding = src->encoding;
    in.body_max = ctx->conf->error_body_max;
    in.secrets = secrets;
    in.nsecrets = i;

    n = sg_errlog_line(&in, (char *) buf);

    if (n == 0) {
        return NGX_ERROR;
    }

    line = ngx_pnalloc(r->pool, n);
    if (line == NULL) {
        return NGX_ERROR;
    }

    ctx->error_line.data = ngx_cpymem(line, buf, n) - n;
    ctx->error_line.len = n;

    return NGX_OK;
}


/* logs a failure that report_only lets pass, and forgets it */
void
ngx_http_sendgrid_report(ngx_http_request_t *r, ngx_http_sendgrid_ctx_t *ctx)
{
    ngx_buf_t  *b;

    b = ngx_http_sendgrid_error_buf(r, &ctx->err);

    if (b) {
        ngx_http_sendgrid_log_error(r, ctx, ctx->err.status, b->pos,
                                    b->last - b->pos,
                                    NGX_HTTP_SENDGRID_FROM_GATEWAY
                                    |NGX_HTTP_SENDGRID_REPORTED);
    }

    ngx_http_sendgrid_metrics_report(r, ctx);

    ngx_memzero(&ctx->err, sizeof(sg_error_t));
    ctx->refusal = SG_REFUSAL_NONE;
}


static ngx_int_t
ngx_http_sendgrid_header_filter(ngx_http_request_t *r)
{
    ngx_http_sendgrid_ctx_t       *ctx;
    ngx_http_sendgrid_loc_conf_t  *slcf;

    if (r != r->main || r->headers_out.status < NGX_HTTP_BAD_REQUEST) {
        return ngx_http_next_header_filter(r);
    }

    slcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_sendgrid_integrations_module);

    if (slcf->enable == NGX_HTTP_SENDGRID_OFF) {
        ngx_http_sendgrid_redirected_page(r);
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_sendgrid_integrations_module);

    if (ctx == NULL) {
        /* refused before the handler: limit_req, return, auth_request */
        ctx = ngx_http_sendgrid_create_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        (void) ngx_http_sendgrid_resolve(r, ctx, slcf);
    }

    if (ctx->own_response) {
        return ngx_http_next_header_filter(r);
    }

    if (r->err_status) {
        /* one of nginx's own error pages: 413, 502, 504... */
        if (ngx_http_sendgrid_replace_page(r, ctx) != NGX_OK) {
            return NGX_ERROR;
        }

        return ngx_http_next_header_filter(r);
    }

    /* an answer of SendGrid's, or one the location made (return) */
    ngx_http_sendgrid_start_inspection(r, ctx,
                                       (ctx->forwarded && r->upstream)
                                       ? 0 : NGX_HTTP_SENDGRID_FROM_GATEWAY);

    return ngx_http_next_header_filter(r);
}


/*
 * An error page of a gateway request that error_page sent to another
 * location: the operator's page, left as it is, and logged as the error
 * it stands for: the upstream's status when proxy_intercept_errors took
 * it (its body was not read), else nginx's own (502, 504, 413...).
 */
static void
ngx_http_sendgrid_redirected_page(ngx_http_request_t *r)
{
    ngx_uint_t                status;
    ngx_http_sendgrid_ctx_t  *ctx;

    if (!r->err_status) {
        return;
    }

    ctx = ngx_http_sendgrid_get_ctx(r);

    if (ctx == NULL) {
        return;
    }

    status = r->headers_out.status;

    if (ctx->forwarded && r->upstream
        && (ngx_uint_t) r->upstream->headers_in.status_n == status)
    {
        ngx_http_sendgrid_log_error(r, ctx, status, NULL, 0, 0);
        return;
    }

    ngx_memzero(&ctx->err, sizeof(sg_error_t));

    ctx->err.status = status;
    ctx->err.message = ngx_http_sendgrid_page_message(status);
    ctx->err.message_len = ngx_strlen(ctx->err.message);
    ctx->err.member = "field";

    ngx_http_sendgrid_log_error(r, ctx, status, NULL, 0,
                                NGX_HTTP_SENDGRID_FROM_GATEWAY);
}


static ngx_int_t
ngx_http_sendgrid_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_http_sendgrid_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sendgrid_integrations_module);

    if (ctx == NULL || in == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    if (ctx->replace) {
        return ngx_http_sendgrid_replace_body(r, ctx, in);
    }

    if (ctx->inspect) {
        ngx_http_sendgrid_inspect(r, ctx, in);
    }

    return ngx_http_next_body_filter(r, in);
}


/* what the JSON in place of nginx's error page of status says */
static const char *
ngx_http_sendgrid_page_message(ngx_uint_t status)
{
    switch (status) {

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        return "request body is too large";

    case NGX_HTTP_BAD_GATEWAY:
        return "the SendGrid API could not be reached";

    case NGX_HTTP_GATEWAY_TIME_OUT:
        return "the SendGrid API did not answer in time";

    default:
        return sg_http_reason(status);
    }
}


static ngx_int_t
ngx_http_sendgrid_replace_page(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx)
{
    const char  *message;

    message = ngx_http_sendgrid_page_message(r->headers_out.status);

    ctx->err.status = r->headers_out.status;
    ctx->err.message = message;
    ctx->err.message_len = ngx_strlen(message);
    ctx->err.member = "field";
    ctx->err.name = NULL;
    ctx->allow = NULL;

    ctx->replacement = ngx_http_sendgrid_error_buf(r, &ctx->err);
    if (ctx->replacement == NULL) {
        return NGX_ERROR;
    }

    ctx->replace = 1;
    ctx->own_response = 1;

    ngx_http_sendgrid_log_error(r, ctx, ctx->err.status,
                                ctx->replacement->pos,
                                ctx->replacement->last
                                - ctx->replacement->pos,
                                NGX_HTTP_SENDGRID_FROM_GATEWAY);

    return ngx_http_sendgrid_json_headers(r, ctx,
                                          ctx->replacement->last
                                          - ctx->replacement->pos);
}


/* swallows nginx's page and sends the JSON in its place, once */
static ngx_int_t
ngx_http_sendgrid_replace_body(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_chain_t *in)
{
    ngx_uint_t    last;
    ngx_chain_t  *cl, out;

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;

        if (cl->buf->last_buf || cl->buf->last_in_chain) {
            last = 1;
        }
    }

    if (!last) {
        return NGX_OK;
    }

    ctx->replace = 0;

    out.buf = ctx->replacement;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


/* flags: NGX_HTTP_SENDGRID_FROM_GATEWAY for an answer of the location's */
static void
ngx_http_sendgrid_start_inspection(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_uint_t flags)
{
    ngx_str_t  *ce;

    ctx->inspect_flags = flags;
    ctx->copy_size = ctx->conf->error_body_max;

    if (r->headers_out.content_length_n >= 0
        && (size_t) r->headers_out.content_length_n < ctx->copy_size)
    {
        ctx->copy_size = r->headers_out.content_length_n;
    }

    ctx->encoding = SG_ENCODING_IDENTITY;

    if (r->headers_out.content_encoding) {
        ce = &r->headers_out.content_encoding->value;

        if (ce->len == 4 && ngx_strncasecmp(ce->data, (u_char *) "gzip", 4)
                            == 0)
        {
            ctx->encoding = SG_ENCODING_GZIP;

        } else if (ce->len == 7
                   && ngx_strncasecmp(ce->data, (u_char *) "deflate", 7) == 0)
        {
            ctx->encoding = SG_ENCODING_DEFLATE;
        }
    }

    ctx->inspect = 1;

    if (r->header_only) {
        ngx_http_sendgrid_log_error(r, ctx, r->headers_out.status, NULL, 0,
                                    flags);
        ctx->inspect = 0;
    }
}


/* copies what passes, up to the limit; logs when the body is complete */
static void
ngx_http_sendgrid_inspect(ngx_http_request_t *r, ngx_http_sendgrid_ctx_t *ctx,
    ngx_chain_t *in)
{
    size_t        n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            n = b->last - b->pos;

            if (n > ctx->copy_size - ctx->copied) {
                n = ctx->copy_size - ctx->copied;
                ctx->body_cut = 1;
            }

            if (n && ctx->copy == NULL) {
                ctx->copy = ngx_pnalloc(r->pool, ctx->copy_size);
                if (ctx->copy == NULL) {
                    ctx->inspect = 0;
                    return;
                }
            }

            if (n) {
                ngx_memcpy(ctx->copy + ctx->copied, b->pos, n);
                ctx->copied += n;
            }

        } else if (ngx_buf_size(b)) {
            /* a buffer in a temporary file is not read back */
            ctx->body_cut = 1;
        }

        if (b->last_buf) {
            ngx_http_sendgrid_log_error(r, ctx, r->headers_out.status,
                                        ctx->copy, ctx->copied,
                                        ctx->inspect_flags
                                        | (ctx->body_cut
                                           ? NGX_HTTP_SENDGRID_BODY_CUT : 0));
            ctx->inspect = 0;
            return;
        }
    }
}


/* an error body that never reached its end (a closed connection) */
static ngx_int_t
ngx_http_sendgrid_log_handler(ngx_http_request_t *r)
{
    ngx_http_sendgrid_ctx_t  *ctx;

    ngx_http_sendgrid_metrics_count(r);

    ctx = ngx_http_get_module_ctx(r, ngx_http_sendgrid_integrations_module);

    if (ctx == NULL) {
        return NGX_OK;
    }

    if (ctx->inspect) {
        ngx_http_sendgrid_log_error(r, ctx, r->headers_out.status, ctx->copy,
                                    ctx->copied, ctx->inspect_flags
                                                 | NGX_HTTP_SENDGRID_BODY_CUT);
        ctx->inspect = 0;
    }

    if (ctx->forwarded && !ctx->key_added && r->upstream) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sendgrid_integrations: no key was sent: proxy_pass "
                      "must go to the upstream{} block that "
                      "sendgrid_upstream_host names");
    }

    return NGX_OK;
}
