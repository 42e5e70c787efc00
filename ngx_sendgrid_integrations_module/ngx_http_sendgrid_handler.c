
/*
 * ngx_http_sendgrid_integrations_module: the precontent handler.  It
 * checks each request in the order the README gives (route and method,
 * query, headers, Content-Type, body, key), resolves its subuser, region
 * and key once with the location's own configuration, validates the body
 * as it is read, and lets the request go on to proxy_pass, which alone
 * gets the key (ngx_http_sendgrid_upstream.c).
 */


#include "ngx_http_sendgrid_integrations_module.h"
#include "sg_content_type.h"
#include "sg_head.h"


/* what the client's header lines are to the gateway, in one walk */
typedef struct {
    ngx_uint_t  overrides;          /* method-override headers: refused */
    ngx_uint_t  subusers;           /* more than one: refused */
    ngx_uint_t  content_types;
    ngx_uint_t  gateways;           /* Authorization and the like: removed */
} ngx_http_sendgrid_headers_t;


static void ngx_http_sendgrid_cleanup(void *data);
static ngx_int_t ngx_http_sendgrid_subuser_value(ngx_http_request_t *r,
    ngx_http_sendgrid_loc_conf_t *slcf, ngx_str_t *value);
static ngx_http_sendgrid_subuser_t *ngx_http_sendgrid_find_exact(
    ngx_array_t *exact, ngx_str_t *name);
static ngx_int_t ngx_http_sendgrid_start(ngx_http_request_t *r,
    ngx_http_sendgrid_loc_conf_t *slcf);
static void ngx_http_sendgrid_count_headers(ngx_http_request_t *r,
    ngx_http_sendgrid_loc_conf_t *slcf, ngx_http_sendgrid_headers_t *hs);
static ngx_int_t ngx_http_sendgrid_check_request(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_http_sendgrid_loc_conf_t *slcf,
    ngx_http_sendgrid_headers_t *hs);
static ngx_int_t ngx_http_sendgrid_check_headers(
    ngx_http_sendgrid_ctx_t *ctx, ngx_http_sendgrid_loc_conf_t *slcf,
    ngx_http_sendgrid_headers_t *hs);
static ngx_int_t ngx_http_sendgrid_read_body(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_http_sendgrid_loc_conf_t *slcf);
static void ngx_http_sendgrid_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_sendgrid_body_read_before(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx);
static ngx_int_t ngx_http_sendgrid_feed(ngx_http_sendgrid_ctx_t *ctx,
    u_char *data, size_t len);
static ngx_int_t ngx_http_sendgrid_header_value_safe(ngx_str_t *value);
static ngx_int_t ngx_http_sendgrid_forward(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_http_sendgrid_loc_conf_t *slcf);
static ngx_int_t ngx_http_sendgrid_remove_client_headers(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_sendgrid_reject(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx);
static ngx_int_t ngx_http_sendgrid_send_error(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx);


ngx_http_request_body_filter_pt  ngx_http_sendgrid_next_request_body;


/* answers that are not the route matcher's, and why (sg_refusal_t) */
#define ngx_http_sendgrid_set_error(ctx, st, msg, mbr, nm, why)              \
    (ctx)->refusal = (why);                                                   \
    (ctx)->err.status = st;                                                   \
    (ctx)->err.message = msg;                                                 \
    (ctx)->err.message_len = sizeof(msg) - 1;                                 \
    (ctx)->err.member = mbr;                                                  \
    (ctx)->err.name = (const unsigned char *) nm;                             \
    (ctx)->err.name_len = (nm) ? sizeof(nm) - 1 : 0

#define SG_REQUEST  "request"


/*
 * The request's context: the one of this pass through a gateway location,
 * or, once an internal redirect (error_page, X-Accel-Redirect) has reset
 * the module's context, the one the request had there, which its pool
 * cleanup still holds.  NULL when the request never was in a gateway
 * location; subrequests have none.
 */
ngx_http_sendgrid_ctx_t *
ngx_http_sendgrid_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_sendgrid_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sendgrid_integrations_module);

    if (ctx || r != r->main || !(r->internal || r->filter_finalize)) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_sendgrid_cleanup) {
            return cln->data;
        }
    }

    return NULL;
}


/* a context for this pass through the gateway location */
ngx_http_sendgrid_ctx_t *
ngx_http_sendgrid_create_ctx(ngx_http_request_t *r)
{
    ngx_str_t                *target;
    ngx_pool_cleanup_t       *cln;
    ngx_http_sendgrid_ctx_t  *ctx;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_sendgrid_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->conf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_sendgrid_integrations_module);

    target = &r->unparsed_uri;

    sg_route_match(&ctx->route, r->method_name.data, r->method_name.len,
                   target->data, target->len);

    cln->handler = ngx_http_sendgrid_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_sendgrid_integrations_module);

    return ctx;
}


static void
ngx_http_sendgrid_cleanup(void *data)
{
    ngx_http_sendgrid_ctx_t  *ctx = data;

    if (ctx->body) {
        sg_body_destroy(ctx->body);
    }
}


/*
 * The subuser, and from it the region and any subuser key.  A regex that
 * fails to run (rather than not to match) is an error: falling through to
 * the next entry or to the default region could give the request another
 * key than the one it is meant to have.
 */
ngx_int_t
ngx_http_sendgrid_resolve(ngx_http_request_t *r, ngx_http_sendgrid_ctx_t *ctx,
    ngx_http_sendgrid_loc_conf_t *slcf)
{
    ngx_int_t                      rc;
    ngx_uint_t                     i;
    ngx_http_sendgrid_subuser_t  **re;

    ctx->region = slcf->default_region;

    if (ngx_http_sendgrid_subuser_value(r, slcf, &ctx->subuser) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ctx->subuser.len && slcf->subusers) {
        ctx->entry = ngx_http_sendgrid_find_exact(&slcf->subusers->exact,
                                                  &ctx->subuser);
    }

    if (ctx->subuser.len && slcf->subusers && ctx->entry == NULL) {
        re = slcf->subusers->regexes.elts;

        for (i = 0; i < slcf->subusers->regexes.nelts; i++) {
            rc = ngx_regex_exec(re[i]->regex, &ctx->subuser, NULL, 0);

            if (rc >= 0) {
                ctx->entry = re[i];
                break;
            }

            if (rc != NGX_REGEX_NO_MATCHED) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "sendgrid_integrations: matching the subuser "
                              "against \"%V\" failed: %i", &re[i]->name, rc);
                return NGX_ERROR;
            }
        }
    }

    if (ctx->entry) {
        ctx->region = ctx->entry->region;
    }

    ctx->resolved = 1;

    return NGX_OK;
}


/*
 * The value of sendgrid_subuser.  One variable is read as the script
 * engine would read it, a variable not found or failing as an empty
 * string, but not copied.
 */
static ngx_int_t
ngx_http_sendgrid_subuser_value(ngx_http_request_t *r,
    ngx_http_sendgrid_loc_conf_t *slcf, ngx_str_t *value)
{
    ngx_http_variable_value_t  *vv;

    if (slcf->subuser_index == NGX_ERROR) {
        return ngx_http_complex_value(r, slcf->subuser, value);
    }

    vv = ngx_http_get_flushed_variable(r, slcf->subuser_index);

    if (vv == NULL || vv->not_found) {
        ngx_str_null(value);
        return NGX_OK;
    }

    value->data = vv->data;
    value->len = vv->len;

    return NGX_OK;
}


/* a binary search of the exact names, sorted by their bytes */
static ngx_http_sendgrid_subuser_t *
ngx_http_sendgrid_find_exact(ngx_array_t *exact, ngx_str_t *name)
{
    ngx_int_t                      rc;
    ngx_uint_t                     lo, hi, mid;
    ngx_http_sendgrid_subuser_t  **e;

    e = exact->elts;
    lo = 0;
    hi = exact->nelts;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        rc = ngx_memn2cmp(e[mid]->name.data, name->data, e[mid]->name.len,
                          name->len);

        if (rc == 0) {
            return e[mid];
        }

        if (rc < 0) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return NULL;
}


ngx_int_t
ngx_http_sendgrid_precontent_handler(ngx_http_request_t *r)
{
    ngx_http_sendgrid_ctx_t       *ctx;
    ngx_http_sendgrid_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_sendgrid_integrations_module);

    if (slcf->enable == NGX_HTTP_SENDGRID_OFF) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_sendgrid_integrations_module);

    if (ctx == NULL) {
        return ngx_http_sendgrid_start(r, slcf);
    }

    if (ctx->forwarded) {
        return NGX_DECLINED;
    }

    if (ctx->reading_body) {
        return NGX_DONE;
    }

    /* the phases run again once the body has been read */

    if (ctx->err.status) {
        return ngx_http_sendgrid_reject(r, ctx);
    }

    return ngx_http_sendgrid_forward(r, ctx, slcf);
}


static ngx_int_t
ngx_http_sendgrid_start(ngx_http_request_t *r,
    ngx_http_sendgrid_loc_conf_t *slcf)
{
    ngx_int_t                     rc;
    ngx_http_sendgrid_ctx_t      *ctx;
    ngx_http_sendgrid_headers_t   hs;

    ctx = ngx_http_sendgrid_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_sendgrid_resolve(r, ctx, slcf) != NGX_OK) {
        ngx_http_sendgrid_set_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal error", "field", NULL,
                                    SG_REFUSAL_INTERNAL);
        return ngx_http_sendgrid_reject(r, ctx);
    }

    ngx_http_sendgrid_count_headers(r, slcf, &hs);

    rc = ngx_http_sendgrid_check_request(r, ctx, slcf, &hs);

    /* once resolved and checked, refused or not */
    if (hs.gateways && ngx_http_sendgrid_remove_client_headers(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_sendgrid_reject(r, ctx);
    }

    if (ctx->route.op == SG_OP_CREATE || ctx->route.op == SG_OP_UPDATE
        || ctx->no_body)
    {
        return ngx_http_sendgrid_read_body(r, ctx, slcf);
    }

    return ngx_http_sendgrid_forward(r, ctx, slcf);
}


/*
 * Route and method, query, headers, and Content-Type or the absence of a
 * body, in that order.  Sets ctx->err on a failure.
 */
static ngx_int_t
ngx_http_sendgrid_check_request(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_http_sendgrid_loc_conf_t *slcf,
    ngx_http_sendgrid_headers_t *hs)
{
    if (ctx->route.err.status) {
        ctx->err = ctx->route.err;
        ctx->allow = ctx->route.allow;
        ctx->refusal = sg_metrics_route_refusal(ctx->err.status);
        return NGX_ERROR;
    }

    if (r != r->main || !ngx_http_sendgrid_uri_intact(r)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sendgrid_integrations: the URI was changed inside "
                      "nginx, refusing to forward it");
        ngx_http_sendgrid_set_error(ctx, NGX_HTTP_NOT_FOUND,
                                    "resource not found", "field", NULL,
                                    SG_REFUSAL_URI_CHANGED);
        return NGX_ERROR;
    }

    if (ngx_http_sendgrid_check_headers(ctx, slcf, hs) != NGX_OK) {
        return NGX_ERROR;
    }

    switch (ctx->route.op) {

    case SG_OP_CREATE:
    case SG_OP_UPDATE:
        if (hs->content_types == 1
            && sg_content_type_is_json(r->headers_in.content_type->value.data,
                                       r->headers_in.content_type->value.len))
        {
            return NGX_OK;
        }

        ngx_http_sendgrid_set_error(ctx, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                    "Content-Type must be application/json",
                                    "field", SG_REQUEST,
                                    SG_REFUSAL_CONTENT_TYPE);

        if (slcf->enable == NGX_HTTP_SENDGRID_REPORT_ONLY) {
            ngx_http_sendgrid_report(r, ctx);
            return NGX_OK;
        }

        return NGX_ERROR;

    default:
        if (r->headers_in.content_length_n > 0) {
            ngx_http_sendgrid_set_error(ctx, NGX_HTTP_BAD_REQUEST,
                                        "this request must not have a body",
                                        "field", SG_REQUEST,
                                        SG_REFUSAL_BODY_NOT_ALLOWED);
            return NGX_ERROR;
        }

        /* a chunked body, or an HTTP/2 or HTTP/3 one, may turn out empty */
        ctx->no_body = r->headers_in.chunked;

        return NGX_OK;
    }
}


static void
ngx_http_sendgrid_count_headers(ngx_http_request_t *r,
    ngx_http_sendgrid_loc_conf_t *slcf, ngx_http_sendgrid_headers_t *hs)
{
    ngx_uint_t        i;
    sg_header_t       kind;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    ngx_memzero(hs, sizeof(ngx_http_sendgrid_headers_t));

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            kind = sg_header_kind(h[i].key.data, h[i].key.len);

            if (kind != SG_HEADER_OTHER) {
                hs->overrides += (kind == SG_HEADER_METHOD_OVERRIDE);
                hs->gateways += sg_header_kind_is_gateways(kind);
            }

            if (slcf->subuser_header.len
                && h[i].key.len == slcf->subuser_header.len
                && sg_header_name_is(h[i].key.data, h[i].key.len,
                                     slcf->subuser_header.data,
                                     slcf->subuser_header.len))
            {
                hs->subusers++;
            }

            if (h[i].key.len == sizeof("content-type") - 1
                && ngx_strncmp(h[i].lowcase_key, "content-type",
                               h[i].key.len)
                   == 0)
            {
                hs->content_types++;
            }
        }
    }
}


/* method-override headers, then more than one header of the subuser */
static ngx_int_t
ngx_http_sendgrid_check_headers(ngx_http_sendgrid_ctx_t *ctx,
    ngx_http_sendgrid_loc_conf_t *slcf, ngx_http_sendgrid_headers_t *hs)
{
    ngx_str_t  *once;

    if (hs->overrides) {
        ngx_http_sendgrid_set_error(ctx, NGX_HTTP_BAD_REQUEST,
                                "method override headers are not allowed",
                                "field", NULL, SG_REFUSAL_METHOD_OVERRIDE);
        return NGX_ERROR;
    }

    if (hs->subusers > 1) {
        once = &slcf->subuser_once;

        ctx->refusal = SG_REFUSAL_SUBUSER_REPEATED;
        ctx->err.status = NGX_HTTP_BAD_REQUEST;
        ctx->err.message = (const char *) once->data;
        ctx->err.message_len = once->len;
        ctx->err.member = "field";
        ctx->err.name = NULL;
        ctx->err.name_len = 0;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The route was decided on the raw target; make sure proxy_pass forwards
 * that very target: nothing rewrote the URI, and the raw target is usable.
 */
ngx_int_t
ngx_http_sendgrid_uri_intact(ngx_http_request_t *r)
{
    u_char  *query;
    size_t   len;

    if (!r->valid_unparsed_uri || r->internal) {
        return 0;
    }

    query = memchr(r->unparsed_uri.data, '?', r->unparsed_uri.len);

    len = query ? (size_t) (query - r->unparsed_uri.data)
                : r->unparsed_uri.len;

    return r->uri.len == len
           && ngx_strncmp(r->uri.data, r->unparsed_uri.data, len) == 0;
}


static ngx_int_t
ngx_http_sendgrid_read_body(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_http_sendgrid_loc_conf_t *slcf)
{
    ngx_int_t  rc;

    if (r->discard_body) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sendgrid_integrations: the request body was "
                      "discarded before it could be validated");
        ctx->refusal = SG_REFUSAL_INTERNAL;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!ctx->no_body) {
        ctx->body = sg_body_create(ctx->route.op == SG_OP_CREATE
                                   ? SG_BODY_CREATE : SG_BODY_UPDATE,
                                   slcf->strict ? SG_BODY_STRICT : 0);
        if (ctx->body == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* another module (lua, a mirror of the body) read it first */
    ctx->body_read_before = (r->request_body != NULL);
    ctx->reading_body = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_sendgrid_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);
    return NGX_DONE;
}


/*
 * Every byte of a body that the gateway reads passes here on its way to
 * the buffers or the temporary file, already de-chunked: the validator
 * sees it once, as it arrives.
 */
ngx_int_t
ngx_http_sendgrid_request_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                *b;
    ngx_chain_t              *cl;
    ngx_http_sendgrid_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sendgrid_integrations_module);

    if (ctx == NULL || !ctx->reading_body || ctx->body_read_before) {
        return ngx_http_sendgrid_next_request_body(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (!ngx_buf_in_memory(b)) {
            /* counted as unseen: the body handler refuses it */
            continue;
        }

        if (ngx_http_sendgrid_feed(ctx, b->pos, b->last - b->pos) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_sendgrid_next_request_body(r, in);
}


/* the next bytes of the body: validated, or only counted when there
 * must be none */
static ngx_int_t
ngx_http_sendgrid_feed(ngx_http_sendgrid_ctx_t *ctx, u_char *data, size_t len)
{
    ctx->body_seen += len;

    if (ctx->body == NULL) {
        return NGX_OK;
    }

    return sg_body_feed(ctx->body, data, len) == SG_BODY_NOMEM
           ? NGX_ERROR : NGX_OK;
}


static off_t
ngx_http_sendgrid_body_size(ngx_http_request_t *r)
{
    off_t         size;
    ngx_chain_t  *cl;

    size = 0;

    if (r->request_body == NULL) {
        return 0;
    }

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        size += ngx_buf_size(cl->buf);
    }

    return size;
}


/*
 * A body another module read before the gateway: what it read, from
 * memory and from the temporary file, goes through the validator as if
 * it were arriving.
 */
static ngx_int_t
ngx_http_sendgrid_body_read_before(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx)
{
    u_char       *buf;
    off_t         offset;
    size_t        size;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    buf = NULL;
    size = 0;

    if (r->request_body == NULL) {
        return NGX_OK;
    }

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            if (ngx_http_sendgrid_feed(ctx, b->pos, b->last - b->pos)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (!b->in_file) {
            continue;
        }

        if (buf == NULL) {
            size = (size_t) ngx_min(b->file_last - b->file_pos, 16384);

            buf = ngx_pnalloc(r->pool, size ? size : 1);
            if (buf == NULL) {
                return NGX_ERROR;
            }
        }

        for (offset = b->file_pos; offset < b->file_last; offset += n) {
            n = ngx_read_file(b->file, buf,
                              (size_t) ngx_min(b->file_last - offset,
                                               (off_t) size),
                              offset);

            if (n <= 0) {
                return NGX_ERROR;
            }

            if (ngx_http_sendgrid_feed(ctx, buf, n) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static void
ngx_http_sendgrid_body_handler(ngx_http_request_t *r)
{
    int                            rc;
    size_t                         len;
    const char                    *message;
    ngx_http_sendgrid_ctx_t       *ctx;
    ngx_http_sendgrid_loc_conf_t  *slcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sendgrid_integrations_module);
    slcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_sendgrid_integrations_module);

    ctx->reading_body = 0;
    rc = SG_BODY_OK;

    if (ctx->body_read_before
        && ngx_http_sendgrid_body_read_before(r, ctx) != NGX_OK)
    {
        rc = SG_BODY_NOMEM;

    } else if (ngx_http_sendgrid_body_size(r) != ctx->body_seen) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "sendgrid_integrations: request body bypassed "
                      "validation");
        rc = SG_BODY_NOMEM;

    } else if (ctx->body) {
        rc = sg_body_finish(ctx->body);
    }

    ctx->body_checked = 1;

    if (rc == SG_BODY_NOMEM) {
        ngx_http_sendgrid_set_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal error", "field", NULL,
                                    SG_REFUSAL_INTERNAL);

    } else if (ctx->no_body) {
        if (ctx->body_seen) {
            ngx_http_sendgrid_set_error(ctx, NGX_HTTP_BAD_REQUEST,
                                        "this request must not have a body",
                                        "field", SG_REQUEST,
                                        SG_REFUSAL_BODY_NOT_ALLOWED);

        } else {
            /*
             * none after all: forwarded as a request without one, not
             * with the "Content-Length: 0" nginx would make of it
             */
            r->headers_in.content_length_n = -1;
            r->headers_in.chunked = 0;
        }

    } else {
        ctx->write_key.data = (u_char *) sg_body_write_key(ctx->body, &len);
        ctx->write_key.len = ctx->write_key.data ? len : 0;
    }

    if (rc == SG_BODY_INVALID) {
        message = sg_body_message(ctx->body, &len);

        ctx->refusal = sg_metrics_body_refusal(sg_body_rules(ctx->body));
        ctx->err.status = NGX_HTTP_BAD_REQUEST;
        ctx->err.message = message;
        ctx->err.message_len = len;
        ctx->err.member = "field";
        ctx->err.name = (const unsigned char *) SG_REQUEST;
        ctx->err.name_len = sizeof(SG_REQUEST) - 1;

        if (slcf->enable == NGX_HTTP_SENDGRID_REPORT_ONLY) {
            ngx_http_sendgrid_report(r, ctx);
        }
    }

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/* the key step (500), then the subuser as a header value (400) */
static ngx_int_t
ngx_http_sendgrid_forward(ngx_http_request_t *r, ngx_http_sendgrid_ctx_t *ctx,
    ngx_http_sendgrid_loc_conf_t *slcf)
{
    ngx_http_sendgrid_key_t  *key;

    ngx_str_null(&ctx->on_behalf_of);

    if (ctx->entry && ctx->entry->key) {
        key = ctx->entry->key;

    } else {
        key = slcf->key[ctx->region];
        ctx->on_behalf_of = ctx->subuser;
    }

    if (key == NULL) {
        ngx_http_sendgrid_set_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "no API key is configured for the "
                                    "request's region", "field", NULL,
                                    SG_REFUSAL_KEY_MISSING);
        return ngx_http_sendgrid_reject(r, ctx);
    }

    if (!ngx_http_sendgrid_header_value_safe(&ctx->on_behalf_of)) {
        ngx_http_sendgrid_set_error(ctx, NGX_HTTP_BAD_REQUEST,
                                    "the subuser is not a valid header value",
                                    "field", NULL, SG_REFUSAL_SUBUSER_INVALID);
        return ngx_http_sendgrid_reject(r, ctx);
    }

    ctx->key = key;
    ctx->forwarded = 1;

    return NGX_DECLINED;
}


/* printable ASCII and spaces only: safe to send as a header value */
static ngx_int_t
ngx_http_sendgrid_header_value_safe(ngx_str_t *value)
{
    size_t  i;

    for (i = 0; i < value->len; i++) {
        if (value->data[i] < 0x20 || value->data[i] > 0x7e) {
            return 0;
        }
    }

    return 1;
}


/*
 * The client's Authorization, on-behalf-of and x-sg-elas-acl, in any
 * spelling, leave the request once the gateway has read the subuser:
 * nothing after it sees them (the request to SendGrid gets the gateway's
 * own).  Called when the request has any: the header list is made
 * anew from the other elements, copied, so that it keeps every property
 * of an nginx list that other modules rely on when they walk it or push
 * to it; pointers into the old list, such as those of r->headers_in, still
 * point to elements with the same contents.
 */
static ngx_int_t
ngx_http_sendgrid_remove_client_headers(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_t        old;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *copy;

    old = r->headers_in.headers;

    if (ngx_list_init(&r->headers_in.headers, r->pool, old.nalloc, old.size)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (part = &old.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (sg_header_is_gateways(h[i].key.data, h[i].key.len)) {
                continue;
            }

            copy = ngx_list_push(&r->headers_in.headers);
            if (copy == NULL) {
                return NGX_ERROR;
            }

            *copy = h[i];
        }
    }

    r->headers_in.authorization = NULL;

    return NGX_OK;
}


static ngx_int_t
ngx_http_sendgrid_reject(ngx_http_request_t *r, ngx_http_sendgrid_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_sendgrid_send_error(r, ctx));
    return NGX_DONE;
}


static ngx_int_t
ngx_http_sendgrid_send_error(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx)
{
    ngx_int_t   rc;
    ngx_buf_t  *b;

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    b = ngx_http_sendgrid_error_buf(r, &ctx->err);
    if (b == NULL) {
        return NGX_ERROR;
    }

    ctx->own_response = 1;

    ngx_http_sendgrid_log_error(r, ctx, ctx->err.status, b->pos,
                                b->last - b->pos,
                                NGX_HTTP_SENDGRID_FROM_GATEWAY);

    r->headers_out.status = ctx->err.status;

    if (ngx_http_sendgrid_json_headers(r, ctx, b->last - b->pos) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_sendgrid_send(r, b);
}


/* the response's header as set, then its whole body, b */
ngx_int_t
ngx_http_sendgrid_send(ngx_http_request_t *r, ngx_buf_t *b)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
