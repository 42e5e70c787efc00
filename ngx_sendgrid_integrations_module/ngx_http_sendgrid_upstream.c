
/*
 * ngx_http_sendgrid_integrations_module: the key, in the request to
 * SendGrid and nowhere else.
 *
 * The key is never added to r->headers_in, where every subrequest,
 * internal redirect, variable and module would see it.  It is added to
 * the request the proxy module has built for the upstream, at the moment
 * that upstream{} block picks its peer: the module puts its own peer
 * initialisation in front of that of every upstream{} block named by
 * sendgrid_upstream_host, as the keepalive module does.  Then the head of
 * the request is in u->request_bufs and nothing of it has been sent.  The
 * head is copied without any Authorization, on-behalf-of or x-sg-elas-acl
 * line (whoever added them), and the chain is made to go through the
 * key's header line where it lies in the configuration's memory, then the
 * gateway's on-behalf-of, then the empty line that ends the head.
 *
 * Only a request that the gateway location's handler let through, in that
 * very location (an internal redirect resets the module's context), as
 * the main request, built by the proxy module over HTTP/1.x, and going to
 * the upstream{} block named for the request's region gets a key.
 */


#include "ngx_http_sendgrid_integrations_module.h"
#include "sg_head.h"


static ngx_int_t ngx_http_sendgrid_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_sendgrid_add_key(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_sendgrid_rewrite_head(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx);


/*
 * After every upstream{} block has its peer initialisation (the upstream
 * module sets them up before any postconfiguration runs): the blocks
 * named by sendgrid_upstream_host, or by a region's default host, get the
 * module's in front of theirs.
 */
ngx_int_t
ngx_http_sendgrid_upstream_init(ngx_conf_t *cf)
{
    ngx_str_t                      *host;
    ngx_uint_t                      i, j;
    ngx_http_sendgrid_peer_t       *peer;
    ngx_http_upstream_srv_conf_t  **uscf;
    ngx_http_upstream_main_conf_t  *umcf;
    ngx_http_sendgrid_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf,
                                         ngx_http_sendgrid_integrations_module);
    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);

    for (i = 0; i < NGX_HTTP_SENDGRID_REGIONS; i++) {
        if (ngx_http_sendgrid_add_host(cf, &ngx_http_sendgrid_default_hosts[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    host = smcf->hosts.elts;
    uscf = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {

        for (j = 0; j < smcf->hosts.nelts; j++) {
            if (uscf[i]->host.len == host[j].len
                && ngx_strncasecmp(uscf[i]->host.data, host[j].data,
                                   host[j].len)
                   == 0)
            {
                break;
            }
        }

        if (j == smcf->hosts.nelts || uscf[i]->peer.init == NULL) {
            continue;
        }

        peer = ngx_array_push(&smcf->peers);
        if (peer == NULL) {
            return NGX_ERROR;
        }

        peer->upstream = uscf[i];
        peer->init = uscf[i]->peer.init;

        uscf[i]->peer.init = ngx_http_sendgrid_init_peer;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_sendgrid_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_uint_t                      i;
    ngx_http_sendgrid_peer_t       *peer;
    ngx_http_sendgrid_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r,
                                         ngx_http_sendgrid_integrations_module);

    peer = smcf->peers.elts;

    for (i = 0; peer[i].upstream != us; i++) {
        /* void: every block whose init is this one is listed */
    }

    if (peer[i].init(r, us) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_sendgrid_add_key(r, us);
}


static ngx_int_t
ngx_http_sendgrid_add_key(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_str_t                      *host;
    ngx_http_sendgrid_ctx_t        *ctx;
    ngx_http_sendgrid_main_conf_t  *smcf;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_sendgrid_integrations_module);

    if (ctx == NULL || !ctx->forwarded || ctx->key_added) {
        return NGX_OK;
    }

    smcf = ngx_http_get_module_main_conf(r,
                                         ngx_http_sendgrid_integrations_module);

    if (smcf->proxy == NULL
        || r->upstream->output.tag != (ngx_buf_tag_t) smcf->proxy)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sendgrid_integrations: the key is sent only in "
                      "requests that proxy_pass makes over HTTP/1.x");
        goto refused;
    }

    host = &ctx->conf->host[ctx->region];

    /* nginx finds an upstream{} by its name in any letter case */
    if (us->host.len != host->len
        || (ngx_memcmp(us->host.data, host->data, host->len) != 0
            && ngx_strncasecmp(us->host.data, host->data, host->len) != 0))
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sendgrid_integrations: the request for region %V "
                      "goes to upstream \"%V\", not to \"%V\"; its key is "
                      "not sent there",
                      ngx_http_sendgrid_region_name(ctx->region), &us->host,
                      host);
        goto refused;
    }

    if (!ngx_http_sendgrid_uri_intact(r)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "sendgrid_integrations: the URI was changed inside "
                      "nginx, refusing to forward it");
        goto refused;
    }

    if (ngx_http_sendgrid_rewrite_head(r, ctx) != NGX_OK) {
        goto refused;
    }

    ctx->key_added = 1;

    return NGX_OK;

refused:

    /* said why above; not forwarded after all */
    ctx->forwarded = 0;
    ctx->refusal = SG_REFUSAL_KEY_NOT_SENT;

    return NGX_ERROR;
}


static ngx_chain_t *
ngx_http_sendgrid_link(ngx_http_request_t *r, ngx_buf_t *b, ngx_chain_t *next)
{
    ngx_chain_t  *cl;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NULL;
    }

    cl->buf = b;
    cl->next = next;

    return cl;
}


/*
 * u->request_bufs starts with the buffer that holds the head (and a body
 * the configuration set, if any).  That buffer is cut after the empty
 * line that ends the head, and keeps what follows it, if anything; before
 * it go a filtered copy of the request and header lines, the key's line,
 * and on-behalf-of, the last of them with the empty line.  Every buffer
 * starts at its start, as ngx_http_upstream_reinit() expects when it
 * sends the request again.
 */
static ngx_int_t
ngx_http_sendgrid_rewrite_head(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx)
{
    u_char               *p;
    size_t                rest;
    ssize_t               n;
    ngx_buf_t            *b, *head, *key, *obo;
    ngx_chain_t          *cl;
    ngx_http_upstream_t  *u;

    static ngx_str_t  obo_name = ngx_string("on-behalf-of: ");

    u = r->upstream;
    cl = u->request_bufs;

    if (cl == NULL || !ngx_buf_in_memory(cl->buf)) {
        goto failed;
    }

    b = cl->buf;

    head = ngx_create_temp_buf(r->pool, b->last - b->pos);
    if (head == NULL) {
        return NGX_ERROR;
    }

    n = sg_head_filter(b->pos, b->last - b->pos, head->pos, &rest);

    if (n < 0) {
        goto failed;
    }

    head->last += n;

    /* past the empty line, which comes again with the gateway's lines */
    b->pos += rest + sizeof(CRLF) - 1;
    b->start = b->pos;

    /* the key's line and the empty line, where the configuration has them */
    key = ngx_calloc_buf(r->pool);
    if (key == NULL) {
        return NGX_ERROR;
    }

    key->memory = 1;
    key->start = ctx->key->line.data;
    key->pos = key->start;
    key->end = key->start + ctx->key->line.len;

    /* a buffer left empty goes; the gateway's last line takes its place */
    if (b->pos == b->last) {
        key->flush = b->flush;
        cl = cl->next;
    }

    if (ctx->on_behalf_of.len) {
        obo = ngx_create_temp_buf(r->pool, obo_name.len + ctx->on_behalf_of.len
                                           + 2 * (sizeof(CRLF) - 1));
        if (obo == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(obo->pos, obo_name.data, obo_name.len);
        p = ngx_cpymem(p, ctx->on_behalf_of.data, ctx->on_behalf_of.len);
        *p++ = CR; *p++ = LF;
        *p++ = CR; *p++ = LF;
        obo->last = p;

        /* on-behalf-of is last: the key's line goes without the empty one */
        obo->flush = key->flush;
        key->flush = 0;
        key->end -= sizeof(CRLF) - 1;

        cl = ngx_http_sendgrid_link(r, obo, cl);
        if (cl == NULL) {
            return NGX_ERROR;
        }
    }

    key->last = key->end;

    cl = ngx_http_sendgrid_link(r, key, cl);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl = ngx_http_sendgrid_link(r, head, cl);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    u->request_bufs = cl;

    return NGX_OK;

failed:

    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "sendgrid_integrations: the request to SendGrid has no "
                  "head to add the key to");

    return NGX_ERROR;
}
