
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
static char *ngx_http_sendgrid_subuser(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_sendgrid_subuser_once(ngx_conf_t *cf,
    ngx_http_sendgrid_loc_conf_t *slcf);
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
      ngx_http_sendgrid_subuser,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
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

    { ngx_string("sendgrid_metrics_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_sendgrid_metrics_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("sendgrid_metrics_count"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_sendgrid_loc_conf_t, metrics_count),
      NULL },

    { ngx_string("sendgrid_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_sendgrid_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
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
    ngx_str_t  *line = data;

    ngx_explicit_memzero(line->data, line->len);
}


/*
 * Reads and checks the key file at path (a full name).  What is kept is
 * the header line "Authorization: Bearer <key>" CRLF, and an empty line
 * after it, in the configuration's pool, wiped when that pool goes.
 */
static ngx_http_sendgrid_key_t *
ngx_http_sendgrid_read_key(ngx_conf_t *cf, ngx_str_t *path)
{
    u_char                   buf[NGX_HTTP_SENDGRID_KEY_FILE_MAX + 1];
    u_char                  *p;
    size_t                   len;
    ssize_t                  n;
    ngx_fd_t                 fd;
    const char              *err;
    ngx_pool_cleanup_t      *cln;
    const unsigned char     *data;
    ngx_http_sendgrid_key_t *key;

    static ngx_str_t  bearer = ngx_string("Authorization: Bearer ");

    len = 0;

    fd = ngx_open_file(path->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open API key file \"%V\"", path);
        return NULL;
    }

    n = ngx_read_fd(fd, buf, sizeof(buf));

    if (n == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot read API key file \"%V\"", path);
        (void) ngx_close_file(fd);
        return NULL;
    }

    (void) ngx_close_file(fd);

    err = (n > NGX_HTTP_SENDGRID_KEY_FILE_MAX)
          ? "is too large" : sg_key_parse(buf, n, &data, &len);

    if (err != NULL) {
        ngx_explicit_memzero(buf, sizeof(buf));
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "API key file \"%V\" %s", path, err);
        return NULL;
    }

    key = ngx_pcalloc(cf->pool, sizeof(ngx_http_sendgrid_key_t));
    if (key == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    /* the line, and the empty line that ends a head where it is last */
    key->line.len = bearer.len + len + 2 * (sizeof(CRLF) - 1);
    key->line.data = ngx_pnalloc(cf->pool, key->line.len);
    if (key->line.data == NULL) {
        return NULL;
    }

    p = ngx_cpymem(key->line.data, bearer.data, bearer.len);
    p = ngx_cpymem(p, data, len);
    *p++ = CR; *p++ = LF;
    *p++ = CR; *p = LF;

    ngx_explicit_memzero(buf, sizeof(buf));

    cln->handler = ngx_http_sendgrid_forget_key;
    cln->data = &key->line;

    key->key.data = key->line.data + bearer.len;
    key->key.len = len;
    key->path = *path;
    key->loaded = ngx_time();

    return key;
}


/* the key of the file name names, read when it is first named */
static ngx_http_sendgrid_key_t *
ngx_http_sendgrid_key(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_str_t                       path;
    ngx_uint_t                      i;
    ngx_http_sendgrid_key_t       **keys, *key;
    ngx_http_sendgrid_main_conf_t  *smcf;

    path = *name;

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NULL;
    }

    smcf = ngx_http_conf_get_module_main_conf(cf,
                                         ngx_http_sendgrid_integrations_module);

    keys = smcf->keys.elts;

    for (i = 0; i < smcf->keys.nelts; i++) {
        if (keys[i]->path.len == path.len
            && ngx_strncmp(keys[i]->path.data, path.data, path.len) == 0)
        {
            return keys[i];
        }
    }

    key = ngx_http_sendgrid_read_key(cf, &path);
    if (key == NULL) {
        return NULL;
    }

    keys = ngx_array_push(&smcf->keys);
    if (keys == NULL) {
        return NULL;
    }

    *keys = key;

    return key;
}


/* every key, for redaction: once every key file has been read */
ngx_int_t
ngx_http_sendgrid_init_secrets(ngx_conf_t *cf)
{
    ngx_uint_t                      i;
    ngx_http_sendgrid_key_t       **keys;
    ngx_http_sendgrid_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf,
                                         ngx_http_sendgrid_integrations_module);

    smcf->nsecrets = smcf->keys.nelts;
    smcf->secrets = ngx_palloc(cf->pool,
                               (smcf->nsecrets + 1) * sizeof(sg_secret_t));
    if (smcf->secrets == NULL) {
        return NGX_ERROR;
    }

    keys = smcf->keys.elts;

    for (i = 0; i < smcf->nsecrets; i++) {
        smcf->secrets[i].data = keys[i]->key.data;
        smcf->secrets[i].len = keys[i]->key.len;
    }

    return NGX_OK;
}


static char *
ngx_http_sendgrid_api_key_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sendgrid_loc_conf_t *slcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   region;

    value = cf->args->elts;
    region = NGX_HTTP_SENDGRID_GLOBAL;

    if (cf->args->nelts == 3
        && ngx_http_sendgrid_parse_region(cf, &value[2], &region) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (slcf->key[region]) {
        return "is duplicate";
    }

    slcf->key[region] = ngx_http_sendgrid_key(cf, &value[1]);

    return slcf->key[region] ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/*
 * The name of the variable that value is, when it is exactly one
 * ("$http_on_behalf_of", "${http_x_team}"), or an empty string; "$1" is
 * a regex capture, as nginx reads a digit after "$".
 */
static void
ngx_http_sendgrid_one_variable(ngx_str_t *value, ngx_str_t *name)
{
    u_char  *p, c;
    size_t   len, i;

    ngx_str_null(name);

    p = value->data;
    len = value->len;

    if (len > 3 && p[0] == '$' && p[1] == '{' && p[len - 1] == '}') {
        p += 2;
        len -= 3;

    } else if (len > 1 && p[0] == '$' && (p[1] < '1' || p[1] > '9')) {
        p++;
        len--;

    } else {
        return;
    }

    for (i = 0; i < len; i++) {
        c = p[i];

        if (c != '_' && (c < '0' || c > '9') && ((c | 0x20) < 'a'
                                                 || (c | 0x20) > 'z'))
        {
            return;
        }
    }

    name->data = p;
    name->len = len;
}


static ngx_int_t
ngx_http_sendgrid_compile_subuser(ngx_conf_t *cf,
    ngx_http_sendgrid_loc_conf_t *slcf, ngx_str_t *value)
{
    ngx_str_t                         name;
    ngx_http_compile_complex_value_t  ccv;

    slcf->subuser = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (slcf->subuser == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = slcf->subuser;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_sendgrid_one_variable(value, &name);

    /* one variable is read as it is, without the script engine's copy */
    slcf->subuser_index = name.len ? ngx_http_get_variable_index(cf, &name)
                                   : NGX_ERROR;

    /* the request header a $http_ variable reads, as the name spells it */
    ngx_str_null(&slcf->subuser_header);

    if (name.len > sizeof("http_") - 1
        && ngx_strncmp(name.data, "http_", sizeof("http_") - 1) == 0)
    {
        slcf->subuser_header.data = name.data + sizeof("http_") - 1;
        slcf->subuser_header.len = name.len - (sizeof("http_") - 1);
    }

    return ngx_http_sendgrid_subuser_once(cf, slcf);
}


/*
 * Where the subuser comes from, as a header name with '-' for '_'
 * ("on-behalf-of"), and the message that refuses it when sent more than
 * once.
 */
static ngx_int_t
ngx_http_sendgrid_subuser_once(ngx_conf_t *cf,
    ngx_http_sendgrid_loc_conf_t *slcf)
{
    u_char     *p;
    ngx_str_t  *h;

    static ngx_str_t  once = ngx_string(" must be sent at most once");

    h = &slcf->subuser_header;

    if (h->len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(cf->pool, h->len + once.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    slcf->subuser_once.data = p;
    slcf->subuser_once.len = h->len + once.len;

    p = ngx_cpymem(p, h->data, h->len);
    ngx_memcpy(p, once.data, once.len);

    /* the name as a header is written, in the message */
    for (p = slcf->subuser_once.data; p < slcf->subuser_once.data + h->len;
         p++)
    {
        if (*p == '_') {
            *p = '-';
        }
    }

    return NGX_OK;
}


static char *
ngx_http_sendgrid_subuser(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_sendgrid_loc_conf_t *slcf = conf;

    ngx_str_t  *value;

    if (slcf->subuser) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_sendgrid_compile_subuser(cf, slcf, &value[1]) != NGX_OK) {
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


/* whether entry, the last one, repeats an exact name listed before it */
static ngx_uint_t
ngx_http_sendgrid_subuser_listed(ngx_http_sendgrid_subusers_t *t,
    ngx_http_sendgrid_subuser_t *entry)
{
    ngx_uint_t                    i;
    ngx_http_sendgrid_subuser_t  *e;

    e = t->entries.elts;

    for (i = 0; &e[i] != entry; i++) {
        if (e[i].regex == NULL
            && e[i].name.len == entry->name.len
            && ngx_memcmp(e[i].name.data, entry->name.data, entry->name.len)
               == 0)
        {
            return 1;
        }
    }

    return 0;
}


static char *
ngx_http_sendgrid_subuser_region(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_sendgrid_loc_conf_t *slcf = conf;

    ngx_str_t                    *value;
    ngx_http_sendgrid_subuser_t  *entry;

    value = cf->args->elts;

    if (slcf->subusers == NGX_CONF_UNSET_PTR) {
        slcf->subusers = ngx_http_sendgrid_subusers_create(cf);
        if (slcf->subusers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    entry = ngx_array_push(&slcf->subusers->entries);
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

    entry->name = value[1];

    if (value[1].data[0] == '~') {
        entry->name.data++;
        entry->name.len--;

        if (ngx_http_sendgrid_compile_regex(cf, entry) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

    } else if (ngx_http_sendgrid_subuser_listed(slcf->subusers, entry)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate subuser \"%V\" in "
                           "\"sendgrid_subuser_region\"", &entry->name);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 4) {
        entry->key = ngx_http_sendgrid_key(cf, &value[3]);
        if (entry->key == NULL) {
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

    if (ngx_http_sendgrid_add_host(cf, &value[2]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* remembers a host that requests to SendGrid may go to */
ngx_int_t
ngx_http_sendgrid_add_host(ngx_conf_t *cf, ngx_str_t *host)
{
    ngx_str_t                      *h;
    ngx_uint_t                      i;
    ngx_http_sendgrid_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf,
                                         ngx_http_sendgrid_integrations_module);

    h = smcf->hosts.elts;

    for (i = 0; i < smcf->hosts.nelts; i++) {
        if (h[i].len == host->len
            && ngx_strncasecmp(h[i].data, host->data, host->len) == 0)
        {
            return NGX_OK;
        }
    }

    h = ngx_array_push(&smcf->hosts);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = *host;

    return NGX_OK;
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


static int ngx_libc_cdecl
ngx_http_sendgrid_cmp_names(const void *one, const void *two)
{
    ngx_http_sendgrid_subuser_t  *a, *b;

    a = *(ngx_http_sendgrid_subuser_t **) one;
    b = *(ngx_http_sendgrid_subuser_t **) two;

    return ngx_memn2cmp(a->name.data, b->name.data, a->name.len, b->name.len);
}


/*
 * Once a level's table is complete (its entries no longer move): regexes
 * are listed in configuration order, exact names sorted by their bytes
 * for a binary search, which needs neither memory nor sizing at run time
 * and takes names of any length.
 */
static ngx_int_t
ngx_http_sendgrid_subusers_init(ngx_conf_t *cf,
    ngx_http_sendgrid_subusers_t *t)
{
    ngx_uint_t                     i;
    ngx_http_sendgrid_subuser_t   *e, **p;

    if (ngx_array_init(&t->exact, cf->pool, t->entries.nelts,
                       sizeof(ngx_http_sendgrid_subuser_t *))
        != NGX_OK
        || ngx_array_init(&t->regexes, cf->pool, t->entries.nelts,
                          sizeof(ngx_http_sendgrid_subuser_t *))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    e = t->entries.elts;

    for (i = 0; i < t->entries.nelts; i++) {
        p = ngx_array_push(e[i].regex ? &t->regexes : &t->exact);
        if (p == NULL) {
            return NGX_ERROR;
        }

        *p = &e[i];
    }

    ngx_qsort(t->exact.elts, t->exact.nelts,
              sizeof(ngx_http_sendgrid_subuser_t *),
              ngx_http_sendgrid_cmp_names);

    return NGX_OK;
}


char *
ngx_http_sendgrid_merge_subusers(ngx_conf_t *cf,
    ngx_http_sendgrid_loc_conf_t *prev, ngx_http_sendgrid_loc_conf_t *conf)
{
    static ngx_str_t  on_behalf_of = ngx_string("$http_on_behalf_of");

    if (conf->subuser == NULL) {
        conf->subuser = prev->subuser;
        conf->subuser_index = prev->subuser_index;
        conf->subuser_header = prev->subuser_header;
        conf->subuser_once = prev->subuser_once;
    }

    if (conf->subuser == NULL) {
        if (ngx_http_sendgrid_compile_subuser(cf, conf, &on_behalf_of)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        /* share the default with the levels below */
        prev->subuser = conf->subuser;
        prev->subuser_index = conf->subuser_index;
        prev->subuser_header = conf->subuser_header;
        prev->subuser_once = conf->subuser_once;
    }

    ngx_conf_merge_ptr_value(conf->subusers, prev->subusers, NULL);

    if (conf->subusers && conf->subusers->exact.elts == NULL
        && ngx_http_sendgrid_subusers_init(cf, conf->subusers) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
