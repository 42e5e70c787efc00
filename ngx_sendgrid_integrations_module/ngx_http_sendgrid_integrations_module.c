
/*
 * ngx_http_sendgrid_integrations_module: the module, its configuration
 * and its variables.
 */


#include "ngx_http_sendgrid_integrations_module.h"

#if (nginx_version >= 1029004)
/* the proxy module's configuration, public since it speaks HTTP/2 too */
#include <ngx_http_proxy_module.h>
#endif


static ngx_int_t ngx_http_sendgrid_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_sendgrid_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_sendgrid_init_process(ngx_cycle_t *cycle);
static void ngx_http_sendgrid_exit_process(ngx_cycle_t *cycle);
static void *ngx_http_sendgrid_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_sendgrid_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_sendgrid_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
#if (nginx_version >= 1029004)
static ngx_uint_t ngx_http_sendgrid_proxy_http2(ngx_conf_t *cf);
#endif

static ngx_int_t ngx_http_sendgrid_request_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_sendgrid_error_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


/* what ngx_http_sendgrid_request_variable() yields */
#define NGX_HTTP_SENDGRID_VAR_OPERATION      0
#define NGX_HTTP_SENDGRID_VAR_SUBUSER        1
#define NGX_HTTP_SENDGRID_VAR_REGION         2
#define NGX_HTTP_SENDGRID_VAR_UPSTREAM_HOST  3


static ngx_http_module_t  ngx_http_sendgrid_integrations_module_ctx = {
    ngx_http_sendgrid_add_variables,       /* preconfiguration */
    ngx_http_sendgrid_init,                /* postconfiguration */

    ngx_http_sendgrid_create_main_conf,    /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_sendgrid_create_loc_conf,     /* create location configuration */
    ngx_http_sendgrid_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_sendgrid_integrations_module = {
    NGX_MODULE_V1,
    &ngx_http_sendgrid_integrations_module_ctx, /* module context */
    ngx_http_sendgrid_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_sendgrid_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_sendgrid_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_sendgrid_vars[] = {

    { ngx_string("sendgrid_operation"), NULL,
      ngx_http_sendgrid_request_variable, NGX_HTTP_SENDGRID_VAR_OPERATION,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("sendgrid_subuser"), NULL,
      ngx_http_sendgrid_request_variable, NGX_HTTP_SENDGRID_VAR_SUBUSER,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("sendgrid_region"), NULL,
      ngx_http_sendgrid_request_variable, NGX_HTTP_SENDGRID_VAR_REGION,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("sendgrid_upstream_host"), NULL,
      ngx_http_sendgrid_request_variable, NGX_HTTP_SENDGRID_VAR_UPSTREAM_HOST,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("sendgrid_error"), NULL,
      ngx_http_sendgrid_error_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_sendgrid_region_names[] = {
    ngx_string("global"),
    ngx_string("eu")
};


/* what sendgrid_upstream_host is for each region unless set */
ngx_str_t  ngx_http_sendgrid_default_hosts[] = {
    ngx_string("api.sendgrid.com"),
    ngx_string("api.eu.sendgrid.com")
};


ngx_str_t *
ngx_http_sendgrid_region_name(ngx_uint_t region)
{
    return &ngx_http_sendgrid_region_names[region];
}


static ngx_int_t
ngx_http_sendgrid_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_sendgrid_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_sendgrid_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_sendgrid_precontent_handler;

    ngx_http_sendgrid_next_request_body = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_sendgrid_request_body_filter;

    if (ngx_http_sendgrid_init_secrets(cf) != NGX_OK
        || ngx_http_sendgrid_upstream_init(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_sendgrid_filter_init(cf);
}


/* the body validator's hash key, from random bytes, in each process */
static ngx_int_t
ngx_http_sendgrid_init_process(ngx_cycle_t *cycle)
{
    if (sg_body_init() != 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "sendgrid_integrations: the system gave no random "
                      "bytes for the body validator's hash key");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The validators kept for reuse go before nginx unloads the module, and
 * with it the only pointers to them.
 */
static void
ngx_http_sendgrid_exit_process(ngx_cycle_t *cycle)
{
    sg_body_free_spares();
}


static void *
ngx_http_sendgrid_create_main_conf(ngx_conf_t *cf)
{
    ngx_uint_t                      i;
    ngx_http_sendgrid_main_conf_t  *smcf;

    smcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_sendgrid_main_conf_t));
    if (smcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&smcf->keys, cf->pool, 4,
                       sizeof(ngx_http_sendgrid_key_t *))
        != NGX_OK
        || ngx_array_init(&smcf->hosts, cf->pool, 4, sizeof(ngx_str_t))
           != NGX_OK
        || ngx_array_init(&smcf->peers, cf->pool, 4,
                          sizeof(ngx_http_sendgrid_peer_t))
           != NGX_OK)
    {
        return NULL;
    }

    /* found by name: nginx may be built without it */
    for (i = 0; cf->cycle->modules[i]; i++) {
        if (ngx_strcmp(cf->cycle->modules[i]->name, "ngx_http_proxy_module")
            == 0)
        {
            smcf->proxy = cf->cycle->modules[i];
            break;
        }
    }

    return smcf;
}


static void *
ngx_http_sendgrid_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_sendgrid_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_sendgrid_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->key[] = NULL;
     *     conf->host[] = { 0, NULL };
     *     conf->subuser = NULL;
     *     conf->subuser_header = { 0, NULL };
     *     conf->metrics = NULL;
     */

    conf->enable = NGX_CONF_UNSET_UINT;
    conf->default_region = NGX_CONF_UNSET_UINT;
    conf->subusers = NGX_CONF_UNSET_PTR;
    conf->strict = NGX_CONF_UNSET;
    conf->error_log_level = NGX_CONF_UNSET_UINT;
    conf->error_body_max = NGX_CONF_UNSET_SIZE;
    conf->metrics_count = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_sendgrid_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_sendgrid_loc_conf_t *prev = parent;
    ngx_http_sendgrid_loc_conf_t *conf = child;

    ngx_uint_t  i;

    ngx_conf_merge_uint_value(conf->enable, prev->enable,
                              NGX_HTTP_SENDGRID_OFF);
    ngx_conf_merge_uint_value(conf->default_region, prev->default_region,
                              NGX_HTTP_SENDGRID_GLOBAL);
    ngx_conf_merge_value(conf->strict, prev->strict, 0);
    ngx_conf_merge_uint_value(conf->error_log_level, prev->error_log_level,
                              NGX_LOG_ERR);
    ngx_conf_merge_size_value(conf->error_body_max, prev->error_body_max,
                              16 * 1024);
    ngx_conf_merge_value(conf->metrics_count, prev->metrics_count, 1);

    /* each region's key and host are inherited on their own */
    for (i = 0; i < NGX_HTTP_SENDGRID_REGIONS; i++) {
        if (conf->key[i] == NULL) {
            conf->key[i] = prev->key[i];
        }

        if (conf->host[i].data == NULL) {
            conf->host[i] = prev->host[i];
        }

        if (conf->host[i].data == NULL) {
            conf->host[i] = ngx_http_sendgrid_default_hosts[i];
        }
    }

#if (nginx_version >= 1029004)
    if (conf->enable != NGX_HTTP_SENDGRID_OFF
        && ngx_http_sendgrid_proxy_http2(cf))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "sendgrid_integrations sends its key only over "
                           "HTTP/1.x: use \"proxy_http_version 1.1\" in "
                           "this location");
        return NGX_CONF_ERROR;
    }
#endif

    return ngx_http_sendgrid_merge_subusers(cf, prev, conf);
}


#if (nginx_version >= 1029004)

/*
 * Whether the proxy module (merged before this one: it comes first in the
 * list of modules) speaks HTTP/2 to the upstream of the location being
 * merged.
 */
static ngx_uint_t
ngx_http_sendgrid_proxy_http2(ngx_conf_t *cf)
{
    ngx_http_proxy_loc_conf_t      *plcf;
    ngx_http_sendgrid_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf,
                                         ngx_http_sendgrid_integrations_module);

    if (smcf->proxy == NULL) {
        return 0;
    }

    plcf = ((ngx_http_conf_ctx_t *) cf->ctx)->loc_conf[smcf->proxy->ctx_index];

    return plcf->http_version == NGX_HTTP_VERSION_20;
}

#endif


static void
ngx_http_sendgrid_set_value(ngx_http_variable_value_t *v, ngx_str_t *s)
{
    /* never a NULL pointer, even when empty: log formats copy it */
    v->data = s->len ? s->data : (u_char *) "";
    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
}


/*
 * Until the gateway location's handler has resolved them, the subuser,
 * region and host are not found (empty), whoever reads them: a read never
 * resolves them early with another level's configuration.
 */
static ngx_int_t
ngx_http_sendgrid_request_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                 value;
    const char               *op;
    ngx_http_sendgrid_ctx_t  *ctx;

    ctx = ngx_http_sendgrid_get_ctx(r);

    if (ctx == NULL
        || (!ctx->resolved && data != NGX_HTTP_SENDGRID_VAR_OPERATION))
    {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {

    case NGX_HTTP_SENDGRID_VAR_OPERATION:
        op = sg_op_name(ctx->route.op);
        value.data = (u_char *) op;
        value.len = ngx_strlen(op);
        break;

    case NGX_HTTP_SENDGRID_VAR_SUBUSER:
        value = ctx->subuser;
        break;

    case NGX_HTTP_SENDGRID_VAR_REGION:
        value = *ngx_http_sendgrid_region_name(ctx->region);
        break;

    default: /* NGX_HTTP_SENDGRID_VAR_UPSTREAM_HOST */
        value = ctx->conf->host[ctx->region];
    }

    ngx_http_sendgrid_set_value(v, &value);

    return NGX_OK;
}


static ngx_int_t
ngx_http_sendgrid_error_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_sendgrid_ctx_t  *ctx;

    ctx = ngx_http_sendgrid_get_ctx(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    /* a line no log needed is made now; when it cannot be, the one
     * before it stays, as when it is logged */
    if (ctx->error_pending) {
        (void) ngx_http_sendgrid_error_line(r, ctx);
    }

    ngx_http_sendgrid_set_value(v, &ctx->error_line);

    return NGX_OK;
}
