
/*
 * ngx_http_sendgrid_integrations_module: the SendGrid Integrations API
 * behind nginx.  The shared types of the module's nginx glue; the rules
 * themselves live in the plain-C sg_*.c files.
 */

#ifndef _NGX_HTTP_SENDGRID_INTEGRATIONS_MODULE_H_INCLUDED_
#define _NGX_HTTP_SENDGRID_INTEGRATIONS_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "sg_json.h"
#include "sg_route.h"
#include "sg_body.h"
#include "sg_errlog.h"
#include "sg_metrics.h"


#define NGX_HTTP_SENDGRID_OFF          0
#define NGX_HTTP_SENDGRID_ON           1
#define NGX_HTTP_SENDGRID_REPORT_ONLY  2

#define NGX_HTTP_SENDGRID_GLOBAL       0
#define NGX_HTTP_SENDGRID_EU           1
#define NGX_HTTP_SENDGRID_REGIONS      2

#define NGX_HTTP_SENDGRID_LOG_OFF      (NGX_LOG_DEBUG + 1)

/* flags of ngx_http_sendgrid_log_error() */
#define NGX_HTTP_SENDGRID_FROM_GATEWAY 0x01
#define NGX_HTTP_SENDGRID_REPORTED     0x02
#define NGX_HTTP_SENDGRID_BODY_CUT     0x04


/*
 * A key file, read once however many directives name it.  The key's bytes
 * are kept here only, inside the header line the request to SendGrid
 * carries; that request points at this line, it does not copy it.
 */
typedef struct {
    ngx_str_t                       path;     /* full name */
    ngx_str_t                       line;     /* "Authorization: Bearer <key>"
                                                 CRLF CRLF */
    ngx_str_t                       key;      /* the key, inside line */
    time_t                          loaded;   /* when the file was read */
} ngx_http_sendgrid_key_t;


/* one sendgrid_subuser_region entry */
typedef struct {
    ngx_str_t                       name;     /* exact name or regex */
    ngx_regex_t                    *regex;    /* NULL for an exact name */
    ngx_uint_t                      region;
    ngx_http_sendgrid_key_t        *key;      /* the subuser's own, or NULL */
} ngx_http_sendgrid_subuser_t;


/* the subuser -> region table of one configuration level */
typedef struct {
    ngx_array_t                     entries;  /* of subuser_t, in order */
    ngx_array_t                     exact;    /* of subuser_t *, by name */
    ngx_array_t                     regexes;  /* of subuser_t *, in order */
} ngx_http_sendgrid_subusers_t;


typedef struct {
    ngx_uint_t                      enable;
    ngx_http_sendgrid_key_t        *key[NGX_HTTP_SENDGRID_REGIONS];
    ngx_str_t                       host[NGX_HTTP_SENDGRID_REGIONS];
    ngx_uint_t                      default_region;

    ngx_http_complex_value_t       *subuser;
    /* the variable's index when sendgrid_subuser is exactly one, else
     * NGX_ERROR */
    ngx_int_t                       subuser_index;
    /* the request header sendgrid_subuser reads when it is one $http_
     * variable ("on_behalf_of" by default), else empty, and the message
     * that refuses more than one such header */
    ngx_str_t                       subuser_header;
    ngx_str_t                       subuser_once;

    ngx_http_sendgrid_subusers_t   *subusers;
    ngx_flag_t                      strict;
    ngx_uint_t                      error_log_level;
    size_t                          error_body_max;

    ngx_flag_t                      metrics_count;
    ngx_shm_zone_t                 *metrics;  /* sendgrid_metrics' zone */
} ngx_http_sendgrid_loc_conf_t;


/* an upstream{} block that requests to SendGrid may go to */
typedef struct {
    ngx_http_upstream_srv_conf_t   *upstream;
    ngx_http_upstream_init_peer_pt  init;     /* the block's own */
} ngx_http_sendgrid_peer_t;


typedef struct {
    ngx_array_t                     keys;     /* of ngx_http_sendgrid_key_t *,
                                                 every key file read */
    sg_secret_t                    *secrets;  /* the keys, for redaction */
    ngx_uint_t                      nsecrets;

    ngx_array_t                     hosts;    /* of ngx_str_t: the hosts of
                                                 sendgrid_upstream_host */
    ngx_array_t                     peers;    /* of ngx_http_sendgrid_peer_t */

    /* the proxy module, whose requests alone carry a key */
    ngx_module_t                   *proxy;

    ngx_shm_zone_t                 *metrics_zone;
} ngx_http_sendgrid_main_conf_t;


/* what ngx_http_sendgrid_log_error() was given: what a line is made of */
typedef struct {
    ngx_uint_t                      status;
    ngx_uint_t                      flags;
    u_char                         *body;     /* in the request pool */
    size_t                          len;

    /* the gateway's own error, when err.status is set */
    sg_error_t                      err;

    /* as they were then: write_key is known only once the body is read */
    ngx_str_t                       write_key;
    sg_encoding_t                   encoding;
} ngx_http_sendgrid_error_src_t;


typedef struct {
    /* the gateway location whose rules the request went through */
    ngx_http_sendgrid_loc_conf_t   *conf;

    sg_route_t                      route;

    /* resolved once, by that location, when resolved is set */
    ngx_str_t                       subuser;
    ngx_http_sendgrid_subuser_t    *entry;
    ngx_uint_t                      region;

    /* what the request to SendGrid carries, once forwarded is set */
    ngx_http_sendgrid_key_t        *key;
    ngx_str_t                       on_behalf_of;

    /* the gateway's own answer, when err.status is set, and why */
    sg_error_t                      err;
    const char                     *allow;
    sg_refusal_t                    refusal;

    sg_body_t                      *body;
    off_t                           body_seen;
    ngx_str_t                       write_key;

    /* nginx's error page, as JSON */
    ngx_buf_t                      *replacement;

    /* $sendgrid_error; with error_pending, the line of the last error is
     * still to be made from error_src, as no log line needed it */
    ngx_str_t                       error_line;
    ngx_http_sendgrid_error_src_t   error_src;

    /* an error body being inspected */
    u_char                         *copy;
    size_t                          copied;
    size_t                          copy_size;
    sg_encoding_t                   encoding;
    ngx_uint_t                      inspect_flags;

    unsigned                        resolved:1;
    unsigned                        reading_body:1;
    unsigned                        body_checked:1;
    unsigned                        body_read_before:1;
    unsigned                        no_body:1;
    unsigned                        forwarded:1;
    unsigned                        key_added:1;
    unsigned                        body_cut:1;
    unsigned                        own_response:1;
    unsigned                        replace:1;
    unsigned                        inspect:1;
    unsigned                        error_pending:1;
} ngx_http_sendgrid_ctx_t;


extern ngx_module_t  ngx_http_sendgrid_integrations_module;


/* ngx_http_sendgrid_integrations_module.c */
extern ngx_str_t  ngx_http_sendgrid_default_hosts[];
ngx_str_t *ngx_http_sendgrid_region_name(ngx_uint_t region);

/* ngx_http_sendgrid_conf.c */
extern ngx_command_t  ngx_http_sendgrid_commands[];
char *ngx_http_sendgrid_merge_subusers(ngx_conf_t *cf,
    ngx_http_sendgrid_loc_conf_t *prev, ngx_http_sendgrid_loc_conf_t *conf);
ngx_int_t ngx_http_sendgrid_add_host(ngx_conf_t *cf, ngx_str_t *host);
ngx_int_t ngx_http_sendgrid_init_secrets(ngx_conf_t *cf);

/* ngx_http_sendgrid_handler.c */
ngx_http_sendgrid_ctx_t *ngx_http_sendgrid_get_ctx(ngx_http_request_t *r);
ngx_http_sendgrid_ctx_t *ngx_http_sendgrid_create_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_sendgrid_resolve(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_http_sendgrid_loc_conf_t *slcf);
ngx_int_t ngx_http_sendgrid_uri_intact(ngx_http_request_t *r);
ngx_int_t ngx_http_sendgrid_precontent_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_sendgrid_send(ngx_http_request_t *r, ngx_buf_t *b);
ngx_int_t ngx_http_sendgrid_request_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
extern ngx_http_request_body_filter_pt  ngx_http_sendgrid_next_request_body;

/* ngx_http_sendgrid_upstream.c */
ngx_int_t ngx_http_sendgrid_upstream_init(ngx_conf_t *cf);

/* ngx_http_sendgrid_metrics.c */
char *ngx_http_sendgrid_metrics_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_sendgrid_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_sendgrid_metrics_count(ngx_http_request_t *r);
void ngx_http_sendgrid_metrics_report(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx);

/* ngx_http_sendgrid_filter.c */
ngx_int_t ngx_http_sendgrid_filter_init(ngx_conf_t *cf);
ngx_buf_t *ngx_http_sendgrid_error_buf(ngx_http_request_t *r,
    sg_error_t *err);
ngx_int_t ngx_http_sendgrid_json_headers(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, size_t len);
void ngx_http_sendgrid_log_error(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx, ngx_uint_t status, u_char *body, size_t len,
    ngx_uint_t flags);
ngx_int_t ngx_http_sendgrid_error_line(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx);
void ngx_http_sendgrid_report(ngx_http_request_t *r,
    ngx_http_sendgrid_ctx_t *ctx);


#endif /* _NGX_HTTP_SENDGRID_INTEGRATIONS_MODULE_H_INCLUDED_ */
