
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


/* one sendgrid_subuser_region entry */
typedef struct ngx_http_sendgrid_subuser_s  ngx_http_sendgrid_subuser_t;

struct ngx_http_sendgrid_subuser_s {
    ngx_str_t                       name;     /* exact name or regex */
    ngx_regex_t                    *regex;    /* NULL for an exact name */
    ngx_uint_t                      region;
    ngx_str_t                       authorization;  /* "Bearer <key>" */
    ngx_http_sendgrid_subuser_t    *next;     /* same name, other case */
};


/* the subuser -> region table of one configuration level */
typedef struct {
    ngx_array_t                     entries;  /* of subuser_t */
    ngx_array_t                     regexes;  /* of subuser_t *, in order */
    ngx_hash_t                      exact;    /* lowercased name -> entry */
} ngx_http_sendgrid_subusers_t;


typedef struct {
    ngx_uint_t                      enable;
    ngx_str_t                       authorization[NGX_HTTP_SENDGRID_REGIONS];
    ngx_str_t                       host[NGX_HTTP_SENDGRID_REGIONS];
    ngx_uint_t                      default_region;
    ngx_http_complex_value_t       *subuser;
    ngx_http_sendgrid_subusers_t   *subusers;
    ngx_flag_t                      strict;
    ngx_uint_t                      error_log_level;
    size_t                          error_body_max;
} ngx_http_sendgrid_loc_conf_t;


typedef struct {
    /* every key configured anywhere, redacted from every log line */
    ngx_array_t                     secrets;  /* of sg_secret_t */
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
    sg_route_t                      route;

    ngx_str_t                       subuser;
    ngx_http_sendgrid_subuser_t    *entry;
    ngx_uint_t                      region;

    /* the gateway's own answer, when err.status is set */
    sg_error_t                      err;
    const char                     *allow;

    sg_body_t                      *body;
    off_t                           body_seen;
    ngx_str_t                       write_key;

    /* nginx's error page, as JSON */
    ngx_buf_t                      *replacement;

    /* $sendgrid_error; with error_pending, the line of the last error is
     * still to be made from error_src, as no log line needed it */
    ngx_str_t                       error_line;
    ngx_http_sendgrid_error_src_t   error_src;

    /* an upstream error body being inspected */
    u_char                         *copy;
    size_t                          copied;
    size_t                          copy_size;
    sg_encoding_t                   encoding;

    unsigned                        body_checked:1;
    unsigned                        body_cut:1;
    unsigned                        own_response:1;
    unsigned                        replace:1;
    unsigned                        inspect:1;
    unsigned                        error_pending:1;
} ngx_http_sendgrid_ctx_t;


extern ngx_module_t  ngx_http_sendgrid_integrations_module;


/* ngx_http_sendgrid_integrations_module.c */
ngx_str_t *ngx_http_sendgrid_region_name(ngx_uint_t region);

/* ngx_http_sendgrid_conf.c */
char *ngx_http_sendgrid_merge_regions(ngx_conf_t *cf,
    ngx_http_sendgrid_loc_conf_t *prev, ngx_http_sendgrid_loc_conf_t *conf);
extern ngx_command_t  ngx_http_sendgrid_commands[];

/* ngx_http_sendgrid_handler.c */
ngx_http_sendgrid_ctx_t *ngx_http_sendgrid_get_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_sendgrid_precontent_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_sendgrid_request_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
extern ngx_http_request_body_filter_pt  ngx_http_sendgrid_next_request_body;

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
