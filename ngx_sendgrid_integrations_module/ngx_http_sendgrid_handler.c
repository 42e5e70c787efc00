
/*
 * ngx_http_sendgrid_integrations_module: the precontent handler that
 * checks each request in the order of SPEC 8, validates its body as it is
 * read, and then hands it to proxy_pass with the key injected.
 */


#include "ngx_http_sendgrid_integrations_module.h"
#include "sg_content_type.h"


static ngx_int_t ngx_http_sendgrid_resolve(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_http_sendgrid_loc_conf_t *slcf);
static ngx_http_sendgrid_subuser_t *ngx_http_sendgrid_find_subuser(
    ngx_http_request_t *r, ngx_http_sendgrid_subusers_t *t, ngx_str_t *name);
static ngx_int_t ngx_http_sendgrid_check_request(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_http_sendgrid_loc_conf_t *slcf);
static ngx_int_t ngx_http_sendgrid_uri_intact(ngx_http_request_t *r);
static ngx_int_t ngx_http_sendgrid_read_body(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_http_sendgrid_loc_conf_t *slcf);
static void ngx_http_sendgrid_body_handler(ngx_http_request_t *r);
static void ngx_http_sendgrid_body_destroy(void *data);
static ngx_int_t ngx_http_sendgrid_header_value_safe(ngx_str_t *value);
static ngx_int_t ngx_http_sendgrid_forward(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_http_sendgrid_loc_conf_t *slcf);
static ngx_int_t ngx_http_sendgrid_set_headers(ngx_http_request_t *r,
    ngx_str_t *authorization, ngx_str_t *on_behalf_of);
static ngx_int_t ngx_http_sendgrid_reject(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx);
static ngx_int_t ngx_http_sendgrid_send_error(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx);


ngx_http_request_body_filter_pt  ngx_http_sendgrid_next_request_body;


/* answers that are not the route matcher's */
#define ngx_http_sendgrid_set_error(ctx, st, msg, mbr, nm)                   \
    (ctx)->err.status = st;                                                   \
    (ctx)->err.message = msg;                                                 \
    (ctx)->err.message_len = sizeof(msg) - 1;                                 \
    (ctx)->err.member = mbr;                                                  \
    (ctx)->err.name = (const unsigned char *) nm;                             \
    (ctx)->err.name_len = (nm) ? sizeof(nm) - 1 : 0

#define SG_REQUEST  "request"


ngx_http_sendgrid_ctx_t *
ngx_http_sendgrid_get_ctx(ngx_http_request_t *r)
{
    ngx_str_t                     *target;
    ngx_http_sendgrid_ctx_t       *ctx;
    ngx_http_sendgrid_loc_conf_t  *slcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sendgrid_integrations_module);

    if (ctx) {
        return ctx;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_sendgrid_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    slcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_sendgrid_integrations_module);

    target = &r->unparsed_uri;

    sg_route_match(&ctx->route, r->method_name.data, r->method_name.len,
                   target->data, target->len);

    if (ngx_http_sendgrid_resolve(r, ctx, slcf) != NGX_OK) {
        return NULL;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_sendgrid_integrations_module);

    return ctx;
}


/* the subuser, and from it the region and any subuser key (SPEC 2) */
static ngx_int_t
ngx_http_sendgrid_resolve(ngx_http_request_t *r, ngx_http_sendgrid_ctx_t *ctx,
    ngx_http_sendgrid_loc_conf_t *slcf)
{
    ngx_uint_t                     i;
    ngx_http_sendgrid_subuser_t  **re;

    ctx->region = slcf->default_region;

    if (slcf->subuser == NULL) {
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, slcf->subuser, &ctx->subuser) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ctx->subuser.len == 0 || slcf->subusers == NULL) {
        return NGX_OK;
    }

    ctx->entry = ngx_http_sendgrid_find_subuser(r, slcf->subusers,
                                                &ctx->subuser);

    if (ctx->entry == NULL) {
        re = slcf->subusers->regexes.elts;

        for (i = 0; i < slcf->subusers->regexes.nelts; i++) {
            if (ngx_regex_exec(re[i]->regex, &ctx->subuser, NULL, 0) >= 0) {
                ctx->entry = re[i];
                break;
            }
        }
    }

    if (ctx->entry) {
        ctx->region = ctx->entry->region;
    }

    return NGX_OK;
}


static ngx_http_sendgrid_subuser_t *
ngx_http_sendgrid_find_subuser(ngx_http_request_t *r,
    ngx_http_sendgrid_subusers_t *t, ngx_str_t *name)
{
    u_char                       *low;
    ngx_uint_t                    key;
    ngx_http_sendgrid_subuser_t  *e;

    low = ngx_pnalloc(r->pool, name->len);
    if (low == NULL) {
        return NULL;
    }

    key = ngx_hash_strlow(low, name->data, name->len);

    for (e = ngx_hash_find(&t->exact, key, low, name->len); e; e = e->next) {
        if (ngx_strncmp(e->name.data, name->data, name->len) == 0) {
            return e;
        }
    }

    return NULL;
}


ngx_int_t
ngx_http_sendgrid_precontent_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_sendgrid_ctx_t       *ctx;
    ngx_http_sendgrid_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_sendgrid_integrations_module);

    if (slcf->enable == NGX_HTTP_SENDGRID_OFF) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_sendgrid_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->body) {
        if (!ctx->body_checked) {
            return NGX_DONE;
        }

        if (ctx->err.status) {
            return ngx_http_sendgrid_reject(r, ctx);
        }

        return ngx_http_sendgrid_forward(r, ctx, slcf);
    }

    rc = ngx_http_sendgrid_check_request(r, ctx, slcf);

    if (rc != NGX_OK) {
        return ngx_http_sendgrid_reject(r, ctx);
    }

    if (ctx->route.op == SG_OP_CREATE || ctx->route.op == SG_OP_UPDATE) {
        return ngx_http_sendgrid_read_body(r, ctx, slcf);
    }

    return ngx_http_sendgrid_forward(r, ctx, slcf);
}


/*
 * Route, query, method-override headers, Content-Type and the presence of
 * a body, in the order of SPEC 8.  Sets ctx->err on a failure.
 */
static ngx_int_t
ngx_http_sendgrid_check_request(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_http_sendgrid_loc_conf_t *slcf)
{
    ngx_uint_t        i, content_types;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    if (ctx->route.err.status) {
        ctx->err = ctx->route.err;
        ctx->allow = ctx->route.allow;
        return NGX_ERROR;
    }

    if (r != r->main || !ngx_http_sendgrid_uri_intact(r)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sendgrid_integrations: the URI was changed inside "
                      "nginx, refusing to forward it");
        ngx_http_sendgrid_set_error(ctx, NGX_HTTP_NOT_FOUND,
                                    "resource not found", "field", NULL);
        return NGX_ERROR;
    }

    content_types = 0;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if ((h[i].key.len == sizeof("x-http-method-override") - 1
             && ngx_strncmp(h[i].lowcase_key, "x-http-method-override",
                            h[i].key.len) == 0)
            || (h[i].key.len == sizeof("x-http-method") - 1
                && ngx_strncmp(h[i].lowcase_key, "x-http-method",
                               h[i].key.len) == 0)
            || (h[i].key.len == sizeof("x-method-override") - 1
                && ngx_strncmp(h[i].lowcase_key, "x-method-override",
                               h[i].key.len) == 0))
        {
            ngx_http_sendgrid_set_error(ctx, NGX_HTTP_BAD_REQUEST,
                                "method override headers are not allowed",
                                "field", NULL);
            return NGX_ERROR;
        }

        if (h[i].key.len == sizeof("content-type") - 1
            && ngx_strncmp(h[i].lowcase_key, "content-type", h[i].key.len)
               == 0)
        {
            content_types++;
        }
    }

    switch (ctx->route.op) {

    case SG_OP_CREATE:
    case SG_OP_UPDATE:
        if (content_types == 1
            && sg_content_type_is_json(r->headers_in.content_type->value.data,
                                       r->headers_in.content_type->value.len))
        {
            return NGX_OK;
        }

        ngx_http_sendgrid_set_error(ctx, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                    "Content-Type must be application/json",
                                    "field", SG_REQUEST);

        if (slcf->enable == NGX_HTTP_SENDGRID_REPORT_ONLY) {
            ngx_http_sendgrid_report(r, ctx);
            return NGX_OK;
        }

        return NGX_ERROR;

    default:
        if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
            ngx_http_sendgrid_set_error(ctx, NGX_HTTP_BAD_REQUEST,
                                        "this request must not have a body",
                                        "field", SG_REQUEST);
            return NGX_ERROR;
        }

        return NGX_OK;
    }
}


/*
 * The route was decided on the raw target; make sure proxy_pass forwards
 * that very target: nothing rewrote the URI, and the raw target is usable.
 */
static ngx_int_t
ngx_http_sendgrid_uri_intact(ngx_http_request_t *r)
{
    u_char  *query;
    size_t   len;

    if (!r->valid_unparsed_uri || r->internal) {
        return 0;
    }

    query = ngx_strlchr(r->unparsed_uri.data,
                        r->unparsed_uri.data + r->unparsed_uri.len, '?');

    len = query ? (size_t) (query - r->unparsed_uri.data)
                : r->unparsed_uri.len;

    return r->uri.len == len
           && ngx_strncmp(r->uri.data, r->unparsed_uri.data, len) == 0;
}


static ngx_int_t
ngx_http_sendgrid_read_body(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_http_sendgrid_loc_conf_t *slcf)
{
    ngx_int_t            rc;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->body = sg_body_create(ctx->route.op == SG_OP_CREATE
                               ? SG_BODY_CREATE : SG_BODY_UPDATE,
                               slcf->strict ? SG_BODY_STRICT : 0);
    if (ctx->body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_sendgrid_body_destroy;
    cln->data = ctx->body;

    rc = ngx_http_read_client_request_body(r, ngx_http_sendgrid_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);
    return NGX_DONE;
}


static void
ngx_http_sendgrid_body_destroy(void *data)
{
    sg_body_destroy(data);
}


/*
 * Every byte of the body passes here on its way to the buffers or the
 * temporary file, already de-chunked: the validator sees it once, as it
 * arrives.
 */
ngx_int_t
ngx_http_sendgrid_request_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                *b;
    ngx_chain_t              *cl;
    ngx_http_sendgrid_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_sendgrid_integrations_module);

    if (ctx == NULL || ctx->body == NULL || ctx->body_checked) {
        return ngx_http_sendgrid_next_request_body(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (!ngx_buf_in_memory(b)) {
            /* counted as unseen: the body handler refuses it */
            continue;
        }

        ctx->body_seen += b->last - b->pos;

        if (sg_body_feed(ctx->body, b->pos, b->last - b->pos)
            == SG_BODY_NOMEM)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_sendgrid_next_request_body(r, in);
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

    if (ngx_http_sendgrid_body_size(r) != ctx->body_seen) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "sendgrid_integrations: request body bypassed "
                      "validation");
        rc = SG_BODY_NOMEM;

    } else {
        rc = sg_body_finish(ctx->body);
    }

    ctx->body_checked = 1;

    if (rc == SG_BODY_NOMEM) {
        ngx_http_sendgrid_set_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal error", "field", NULL);

    } else {
        ctx->write_key.data = (u_char *) sg_body_write_key(ctx->body, &len);
        ctx->write_key.len = ctx->write_key.data ? len : 0;
    }

    if (rc == SG_BODY_INVALID) {
        message = sg_body_message(ctx->body, &len);

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


/* the key step (500), then the headers of SPEC 6 */
static ngx_int_t
ngx_http_sendgrid_forward(ngx_http_request_t *r, ngx_http_sendgrid_ctx_t *ctx,
    ngx_http_sendgrid_loc_conf_t *slcf)
{
    ngx_str_t  *authorization, *on_behalf_of;

    on_behalf_of = NULL;

    if (ctx->entry && ctx->entry->authorization.len) {
        authorization = &ctx->entry->authorization;

    } else {
        authorization = &slcf->authorization[ctx->region];

        if (ctx->subuser.len) {
            on_behalf_of = &ctx->subuser;
        }
    }

    if (authorization->len == 0) {
        ngx_http_sendgrid_set_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "no API key is configured for the "
                                    "request's region", "field", NULL);
        return ngx_http_sendgrid_reject(r, ctx);
    }

    if (on_behalf_of && !ngx_http_sendgrid_header_value_safe(on_behalf_of)) {
        ngx_http_sendgrid_set_error(ctx, NGX_HTTP_BAD_REQUEST,
                                    "the subuser is not a valid header value",
                                    "field", NULL);
        return ngx_http_sendgrid_reject(r, ctx);
    }

    if (ngx_http_sendgrid_set_headers(r, authorization, on_behalf_of)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

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


static ngx_table_elt_t *
ngx_http_sendgrid_add_header(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        return NULL;
    }

    /* a zero hash keeps it from $http_* variables; proxy_pass sends it */
    h->hash = 0;
    h->key = *key;
    h->lowcase_key = key->data;
    h->value = *value;

    return h;
}


/* headers of the client that never pass as sent (SPEC 6) */
static ngx_int_t
ngx_http_sendgrid_client_only(ngx_table_elt_t *h)
{
    static ngx_str_t  names[] = {
        ngx_string("authorization"),
        ngx_string("on-behalf-of"),
        ngx_string("x-sg-elas-acl")
    };

    ngx_uint_t  i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (h->key.len == names[i].len
            && ngx_strncmp(h->lowcase_key, names[i].data, names[i].len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * Removes element i of part without moving any element, so that the
 * pointers in r->headers_in stay valid: the part is cut around it.
 */
static ngx_int_t
ngx_http_sendgrid_list_remove(ngx_list_t *list, ngx_list_part_t *part,
    ngx_uint_t i)
{
    ngx_list_part_t  *tail;

    if (i == 0) {
        part->elts = (char *) part->elts + list->size;
        part->nelts--;
        return NGX_OK;
    }

    if (i == part->nelts - 1) {
        part->nelts--;
        return NGX_OK;
    }

    tail = ngx_palloc(list->pool, sizeof(ngx_list_part_t));
    if (tail == NULL) {
        return NGX_ERROR;
    }

    tail->elts = (char *) part->elts + (i + 1) * list->size;
    tail->nelts = part->nelts - i - 1;
    tail->next = part->next;

    part->nelts = i;
    part->next = tail;

    if (list->last == part) {
        list->last = tail;
    }

    return NGX_OK;
}


/*
 * Adds the gateway's Authorization (and on-behalf-of) first, while the
 * list is whole, then removes every Authorization, on-behalf-of and
 * x-sg-elas-acl of the client.  Nothing adds to headers_in after this
 * phase, so the cut parts are never pushed to.
 */
static ngx_int_t
ngx_http_sendgrid_set_headers(ngx_http_request_t *r, ngx_str_t *authorization,
    ngx_str_t *on_behalf_of)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *auth, *obo;

    static ngx_str_t  auth_key = ngx_string("Authorization");
    static ngx_str_t  obo_key = ngx_string("on-behalf-of");

    auth = ngx_http_sendgrid_add_header(r, &auth_key, authorization);
    if (auth == NULL) {
        return NGX_ERROR;
    }

    obo = NULL;

    if (on_behalf_of) {
        obo = ngx_http_sendgrid_add_header(r, &obo_key, on_behalf_of);
        if (obo == NULL) {
            return NGX_ERROR;
        }
    }

    part = &r->headers_in.headers.part;
    h = part->elts;
    i = 0;

    for ( ;; ) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
            continue;
        }

        if (&h[i] == auth || &h[i] == obo
            || !ngx_http_sendgrid_client_only(&h[i]))
        {
            i++;
            continue;
        }

        if (ngx_http_sendgrid_list_remove(&r->headers_in.headers, part, i)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* the next element is now at index i of this part, or beyond it */
        h = part->elts;
    }

    r->headers_in.authorization = auth;

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
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

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

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
