
/*
 * ngx_http_sendgrid_integrations_module: directives, key files and the
 * subuser -> region table.
 */


#include "ngx_http_sendgrid_integrations_module.h"
#include "sg_key.h"


/* a key file is a few dozen bytes; anything this large is not one */
#define NGX_HTTP_SENDGRID_KEY_FILE_MAX  4096


static char *ngx_http_sendgrid_integrations(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_sendgrid_default_region(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_sendgrid_api_key_file(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_sendgrid_subuser_region(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_sendgrid_upstream_host(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_sendgrid_error_log(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_conf_enum_t  ngx_http_sendgrid_enable[] = {
    { ngx_string("off"), NGX_HTTP_SENDGRID_OFF },
    { ngx_string("on"), NGX_HTTP_SENDGRID_ON },
    { ngx_string("report_only"), NGX_HTTP_SENDGRID_REPORT_ONLY },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_sendgrid_regions[] = {
    { ngx_string("global"), NGX_HTTP_SENDGRID_GLOBAL },
    { ngx_string("eu"), NGX_HTTP_SENDGRID_EU },
    { ngx_null_string, 0 }
};


static ngx_str_t  ngx_http_sendgrid_log_levels[] = {
    ngx_null_string,
    ngx_string("emerg"),
    ngx_string("alert"),
    ngx_string("crit"),
    ngx_string("error"),
    ngx_string("warn"),
    ngx_string("notice"),
    ngx_string("info"),
    ngx_string("debug")
};


ngx_command_t  ngx_http_sendgrid_commands[] = {

    { ngx_string("sendgrid_integrations"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_sendgrid_integrations,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sendgrid_api_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_sendgrid_api_key_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sendgrid_subuser"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sendgrid_loc_conf_t, subuser),
      NULL },

    { ngx_string("sendgrid_subuser_region"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE23,
      ngx_http_sendgrid_subuser_region,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sendgrid_default_region"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_sendgrid_default_region,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sendgrid_upstream_host"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_sendgrid_upstream_host,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sendgrid_strict"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sendgrid_loc_conf_t, strict),
      NULL },

    { ngx_string("sendgrid_error_log"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_sendgrid_error_log,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sendgrid_error_body_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sendgrid_loc_conf_t, error_body_max),
      NULL },

      ngx_null_command
};


/*
 * Looks word up in values; an unknown word fails naming the directive and
 * what it accepts ("what" is e.g. "region", "value").
 */
static ngx_int_t
ngx_http_sendgrid_parse_word(ngx_conf_t *cf, ngx_str_t *word,
    ngx_conf_enum_t *values, const char *what, const char *accepted,
    ngx_uint_t *value)
{
    ngx_conf_enum_t  *e;

    for (e = values; e->name.len; e++) {
        if (e->name.len == word->len
            && ngx_strncmp(e->name.data, word->data, word->len) == 0)
        {
            *value = e->value;
            return NGX_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid %s \"%V\" in \"%V\", it must be %s",
                       what, word, (ngx_str_t *) cf->args->elts, accepted);

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_sendgrid_parse_region(ngx_conf_t *cf, ngx_str_t *word,
    ngx_uint_t *region)
{
    return ngx_http_sendgrid_parse_word(cf, word, ngx_http_sendgrid_regions,
                                        "region", "\"global\" or \"eu\"",
                                        region);
}


static char *
ngx_http_sendgrid_integrations(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sendgrid_loc_conf_t *slcf = conf;

    if (slcf->enable != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    if (ngx_http_sendgrid_parse_word(cf, (ngx_str_t *) cf->args->elts + 1,
                                     ngx_http_sendgrid_enable, "value",
                                     "\"on\", \"off\" or \"report_only\"",
                                     &slcf->enable)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_sendgrid_default_region(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_sendgrid_loc_conf_t *slcf = conf;

    if (slcf->default_region != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    if (ngx_http_sendgrid_parse_region(cf, (ngx_str_t *) cf->args->elts + 1,
                                       &slcf->default_region)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void
ngx_http_sendgrid_forget_key(void *data)
{
    ngx_str_t  *key = data;

    ngx_explicit_memzero(key->data, key->len);
}


/*
 * Reads and checks a key file.  What is kept is the Authorization value
 * "Bearer <key>", in the configuration's pool, wiped when that pool goes;
 * the key itself is remembered for redaction.
 */
static ngx_int_t
ngx_http_sendgrid_read_key(ngx_conf_t *cf, ngx_str_t *path,
    ngx_str_t *authorization)
{
    u_char                          buf[NGX_HTTP_SENDGRID_KEY_FILE_MAX + 1];
    size_t                          len;
    ssize_t                         n;
    ngx_fd_t                        fd;
    ngx_str_t                      *copy;
    const char                     *err;
    sg_secret_t                    *secret;
    ngx_pool_cleanup_t             *cln;
    const unsigned char            *data;
    ngx_http_sendgrid_main_conf_t  *smcf;

    len = 0;

    if (ngx_conf_full_name(cf->cycle, path, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(path->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open API key file \"%V\"", path);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, buf, sizeof(buf));

    if (n == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot read API key file \"%V\"", path);
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    (void) ngx_close_file(fd);

    err = (n > NGX_HTTP_SENDGRID_KEY_FILE_MAX)
          ? "is too large" : sg_key_parse(buf, n, &data, &len);

    if (err != NULL) {
        ngx_explicit_memzero(buf, sizeof(buf));
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "API key file \"%V\" %s", path, err);
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, sizeof(ngx_str_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    copy = cln->data;
    copy->len = sizeof("Bearer ") - 1 + len;
    copy->data = ngx_pnalloc(cf->pool, copy->len);
    if (copy->data == NULL) {
        copy->len = 0;
        return NGX_ERROR;
    }

    ngx_memcpy(ngx_cpymem(copy->data, "Bearer ", sizeof("Bearer ") - 1),
               data, len);
    ngx_explicit_memzero(buf, sizeof(buf));

    cln->handler = ngx_http_sendgrid_forget_key;

    smcf = ngx_http_conf_get_module_main_conf(cf,
                                         ngx_http_sendgrid_integrations_module);

    secret = ngx_array_push(&smcf->secrets);
    if (secret == NULL) {
        return NGX_ERROR;
    }

    secret->data = copy->data + sizeof("Bearer ") - 1;
    secret->len = len;

    *authorization = *copy;

    return NGX_OK;
}


static char *
ngx_http_sendgrid_api_key_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sendgrid_loc_conf_t *slcf = conf;

    ngx_str_t   *value, path;
    ngx_uint_t   region;

    value = cf->args->elts;
    region = NGX_HTTP_SENDGRID_GLOBAL;

    if (cf->args->nelts == 3
        && ngx_http_sendgrid_parse_region(cf, &value[2], &region) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (slcf->authorization[region].data) {
        return "is duplicate";
    }

    path = value[1];

    if (ngx_http_sendgrid_read_key(cf, &path, &slcf->authorization[region])
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_http_sendgrid_subusers_t *
ngx_http_sendgrid_subusers_create(ngx_conf_t *cf)
{
    ngx_http_sendgrid_subusers_t  *t;

    t = ngx_pcalloc(cf->pool, sizeof(ngx_http_sendgrid_subusers_t));
    if (t == NULL) {
        return NULL;
    }

    if (ngx_array_init(&t->entries, cf->pool, 4,
                       sizeof(ngx_http_sendgrid_subuser_t))
        != NGX_OK
        || ngx_array_init(&t->regexes, cf->pool, 4,
                          sizeof(ngx_http_sendgrid_subuser_t *))
           != NGX_OK)
    {
        return NULL;
    }

    return t;
}


static ngx_int_t
ngx_http_sendgrid_compile_regex(ngx_conf_t *cf,
    ngx_http_sendgrid_subuser_t *entry)
{
    u_char               errstr[NGX_MAX_CONF_ERRSTR];
    ngx_regex_compile_t  rc;

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern = entry->name;
    rc.pool = cf->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    if (rc.pattern.len && rc.pattern.data[0] == '*') {
        rc.pattern.data++;
        rc.pattern.len--;
        rc.options = NGX_REGEX_CASELESS;
    }

    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "sendgrid_subuser_region: %V", &rc.err);
        return NGX_ERROR;
    }

    entry->regex = rc.regex;
    entry->name = rc.pattern;

    return NGX_OK;
}


static char *
ngx_http_sendgrid_subuser_region(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_sendgrid_loc_conf_t *slcf = conf;

    ngx_str_t                     *value, path;
    ngx_uint_t                     i;
    ngx_http_sendgrid_subuser_t   *entry, *e;
    ngx_http_sendgrid_subusers_t  *t;

    value = cf->args->elts;

    if (slcf->subusers == NGX_CONF_UNSET_PTR) {
        slcf->subusers = ngx_http_sendgrid_subusers_create(cf);
        if (slcf->subusers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    t = slcf->subusers;

    entry = ngx_array_push(&t->entries);
    if (entry == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(entry, sizeof(ngx_http_sendgrid_subuser_t));

    if (ngx_http_sendgrid_parse_region(cf, &value[2], &entry->region)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (value[1].len == 0) {
        return "has an empty subuser name";
    }

    if (value[1].data[0] == '~') {
        entry->name.data = value[1].data + 1;
        entry->name.len = value[1].len - 1;

        if (ngx_http_sendgrid_compile_regex(cf, entry) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

    } else {
        entry->name = value[1];

        e = t->entries.elts;

        for (i = 0; i < t->entries.nelts - 1; i++) {
            if (e[i].regex == NULL
                && e[i].name.len == entry->name.len
                && ngx_strncmp(e[i].name.data, entry->name.data,
                               entry->name.len) == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "duplicate subuser \"%V\" in "
                                   "\"sendgrid_subuser_region\"",
                                   &entry->name);
                return NGX_CONF_ERROR;
            }
        }
    }

    if (cf->args->nelts == 4) {
        path = value[3];

        if (ngx_http_sendgrid_read_key(cf, &path, &entry->authorization)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_sendgrid_upstream_host(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_sendgrid_loc_conf_t *slcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   region;

    value = cf->args->elts;

    if (ngx_http_sendgrid_parse_region(cf, &value[1], &region) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (slcf->host[region].data) {
        return "is duplicate";
    }

    if (value[2].len == 0) {
        return "has an empty host";
    }

    slcf->host[region] = value[2];

    return NGX_CONF_OK;
}


static char *
ngx_http_sendgrid_error_log(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sendgrid_loc_conf_t *slcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   n;

    if (slcf->error_log_level != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        slcf->error_log_level = NGX_HTTP_SENDGRID_LOG_OFF;
        return NGX_CONF_OK;
    }

    for (n = NGX_LOG_EMERG; n <= NGX_LOG_DEBUG; n++) {
        if (ngx_strcmp(value[1].data, ngx_http_sendgrid_log_levels[n].data)
            == 0)
        {
            slcf->error_log_level = n;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid level \"%V\" in \"sendgrid_error_log\"",
                       &value[1]);

    return NGX_CONF_ERROR;
}


/*
 * Once a level's table is complete (its entries no longer move): regexes
 * are listed in configuration order, and exact names go into a hash of
 * their lower-cased forms; names that differ only in letter case are
 * chained, and a lookup confirms the exact bytes.
 */
static ngx_int_t
ngx_http_sendgrid_subusers_init(ngx_conf_t *cf,
    ngx_http_sendgrid_subusers_t *t)
{
    ngx_int_t                      rc;
    ngx_str_t                      name;
    ngx_uint_t                     i, j;
    ngx_hash_init_t                hash;
    ngx_hash_keys_arrays_t         ha;
    ngx_http_sendgrid_subuser_t   *e, **re;

    ngx_memzero(&ha, sizeof(ngx_hash_keys_arrays_t));

    ha.temp_pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, cf->log);
    if (ha.temp_pool == NULL) {
        return NGX_ERROR;
    }

    ha.pool = cf->pool;

    if (ngx_hash_keys_array_init(&ha, NGX_HASH_SMALL) != NGX_OK) {
        goto failed;
    }

    e = t->entries.elts;

    for (i = 0; i < t->entries.nelts; i++) {
        if (e[i].regex) {
            re = ngx_array_push(&t->regexes);
            if (re == NULL) {
                goto failed;
            }

            *re = &e[i];
            continue;
        }

        name.len = e[i].name.len;
        name.data = ngx_pnalloc(ha.temp_pool, name.len);
        if (name.data == NULL) {
            goto failed;
        }

        ngx_memcpy(name.data, e[i].name.data, name.len);

        rc = ngx_hash_add_key(&ha, &name, &e[i], 0);

        if (rc == NGX_ERROR) {
            goto failed;
        }

        if (rc == NGX_BUSY) {
            /* the same name in another letter case: chain it */
            for (j = 0; j < i; j++) {
                if (e[j].regex == NULL && e[j].next == NULL
                    && e[j].name.len == e[i].name.len
                    && ngx_strncasecmp(e[j].name.data, e[i].name.data,
                                       e[i].name.len) == 0)
                {
                    e[j].next = &e[i];
                    break;
                }
            }
        }
    }

    hash.hash = &t->exact;
    hash.key = ngx_hash_key_lc;
    hash.max_size = 1024;
    hash.bucket_size = ngx_align(64, ngx_cacheline_size);
    hash.name = "sendgrid_subuser_region_hash";
    hash.pool = cf->pool;
    hash.temp_pool = NULL;

    if (ngx_hash_init(&hash, ha.keys.elts, ha.keys.nelts) != NGX_OK) {
        goto failed;
    }

    ngx_destroy_pool(ha.temp_pool);

    return NGX_OK;

failed:

    ngx_destroy_pool(ha.temp_pool);

    return NGX_ERROR;
}


char *
ngx_http_sendgrid_merge_regions(ngx_conf_t *cf,
    ngx_http_sendgrid_loc_conf_t *prev, ngx_http_sendgrid_loc_conf_t *conf)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_SENDGRID_REGIONS; i++) {
        if (conf->authorization[i].data == NULL) {
            conf->authorization[i] = prev->authorization[i];
        }
    }

    ngx_conf_merge_ptr_value(conf->subusers, prev->subusers, NULL);

    if (conf->subusers && conf->subusers->exact.buckets == NULL
        && ngx_http_sendgrid_subusers_init(cf, conf->subusers) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
