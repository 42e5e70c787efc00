/*
 * sg_head: guarded header names and the head of the request to SendGrid.
 */

#include <stdlib.h>

#include "tap.h"
#include "../../ngx_sendgrid_integrations_module/sg_head.h"


static sg_header_t
kind(const char *name)
{
    return sg_header_kind((const unsigned char *) name, strlen(name));
}


/* the filtered head of in, or "(none)"; *rest as an offset from in */
static const char *
filter(const char *in, size_t *rest)
{
    static char  out[1024];
    ssize_t      n;

    n = sg_head_filter((const unsigned char *) in, strlen(in),
                       (unsigned char *) out, rest);

    if (n < 0) {
        return "(none)";
    }

    out[n] = '\0';
    return out;
}


static void
test_names(void)
{
    is_int(kind("Authorization"), SG_HEADER_AUTHORIZATION, "Authorization");
    is_int(kind("AUTHORIZATION"), SG_HEADER_AUTHORIZATION, "upper case");
    is_int(kind("authorizatio"), SG_HEADER_OTHER, "a prefix is another");
    is_int(kind("authorizations"), SG_HEADER_OTHER, "a longer name too");
    is_int(kind("On-Behalf-Of"), SG_HEADER_ON_BEHALF_OF, "On-Behalf-Of");
    is_int(kind("on_behalf_of"), SG_HEADER_ON_BEHALF_OF, "underscores");
    is_int(kind("on-behalf_OF"), SG_HEADER_ON_BEHALF_OF, "mixed");
    is_int(kind("onbehalfof"), SG_HEADER_OTHER, "no separators");
    is_int(kind("on.behalf.of"), SG_HEADER_OTHER, "other separators");
    is_int(kind("X_SG_ELAS_ACL"), SG_HEADER_ELAS_ACL, "x-sg-elas-acl");
    is_int(kind("x_http_method_override"), SG_HEADER_METHOD_OVERRIDE,
           "x-http-method-override");
    is_int(kind("X-HTTP-Method"), SG_HEADER_METHOD_OVERRIDE,
           "x-http-method");
    is_int(kind("x-method_override"), SG_HEADER_METHOD_OVERRIDE,
           "x-method-override");
    is_int(kind("x-http-methods"), SG_HEADER_OTHER, "x-http-methods");
    is_int(kind(""), SG_HEADER_OTHER, "empty name");
    is_int(kind("Content-Type"), SG_HEADER_OTHER,
           "another name of on-behalf-of's length");
    is_int(kind("Cache-Control"), SG_HEADER_OTHER,
           "another name of authorization's length");
    is_int(kind("x-sg-elas-acm"), SG_HEADER_OTHER,
           "x-sg-elas-acl but its last letter");
    is_int(kind("x-method-overrida"), SG_HEADER_OTHER,
           "x-method-override but its last letter");
    is_int(kind("x-http-method-overrid_"), SG_HEADER_OTHER,
           "x-http-method-override but its last letter");

    ok(sg_header_name_is((const unsigned char *) "X-Team_Id", 9,
                         (const unsigned char *) "x_team-id", 9),
       "names compared with - and _ as one");
    ok(!sg_header_name_is((const unsigned char *) "x-team", 6,
                          (const unsigned char *) "x-teams", 7),
       "names of other lengths differ");
    ok(!sg_header_name_is((const unsigned char *) "x-tea\x0d", 6,
                          (const unsigned char *) "x-team", 6),
       "a control byte is not a letter");
}


static void
test_filter(void)
{
    size_t       rest;
    const char  *in;

    in = "GET /v3/marketing/integrations HTTP/1.0\r\n"
         "Host: sendgrid_global\r\n"
         "Authorization: Basic Y2xpZW50\r\n"
         "X-Team: a\r\n"
         "on_behalf_of: acme\r\n"
         "ON-BEHALF-OF: other\r\n"
         "x-sg-elas-acl: 1\r\n"
         "X-Authorization: kept\r\n"
         "\r\n";
    is_str(filter(in, &rest),
           "GET /v3/marketing/integrations HTTP/1.0\r\n"
           "Host: sendgrid_global\r\n"
           "X-Team: a\r\n"
           "X-Authorization: kept\r\n",
           "guarded lines left out, the others kept in order");
    is_int(rest, strlen(in) - 2, "the head ends at the empty line");

    in = "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab\r\n\r\n";
    is_str(filter(in, &rest), "POST / HTTP/1.1\r\nContent-Length: 4\r\n",
           "a body after the head is not read");
    is_int(rest, 36, "the first empty line ends the head");

    in = "GET / HTTP/1.0\r\n\r\n";
    is_str(filter(in, &rest), "GET / HTTP/1.0\r\n", "no header lines");
    is_int(rest, 16, "rest after the request line");

    in = "GET / HTTP/1.0\r\nX: a\rb\r\nAuthorization\r\n\r\n";
    is_str(filter(in, &rest),
           "GET / HTTP/1.0\r\nX: a\rb\r\nAuthorization\r\n",
           "a bare CR does not end a line; a line without a colon is kept");

    in = "GET / HTTP/1.0\r\nauthorization:x\r\nAuthorization : y\r\n\r\n";
    is_str(filter(in, &rest), "GET / HTTP/1.0\r\nAuthorization : y\r\n",
           "the name is what comes before the colon");

    in = "GET / HTTP/1.0\r\nX: 1\r\nY: 2\r\nAuthorization: k\r\n\r\n";
    is_str(filter(in, &rest), "GET / HTTP/1.0\r\nX: 1\r\nY: 2\r\n",
           "a guarded line last");
    is_int(rest, strlen(in) - 2, "rest after a guarded line last");

    is_str(filter("GET / HTTP/1.0\r\nX: a\r\n", &rest), "(none)",
           "no empty line: no head");
    is_str(filter("GET / HTTP/1.0\r\nX: a\r\n\r", &rest), "(none)",
           "a CR alone at the end: no head");
    is_str(filter("GET / HTTP/1.0", &rest), "(none)", "no line end");
    is_str(filter("", &rest), "(none)", "nothing");
}


int
main(void)
{
    test_names();
    test_filter();

    return done_testing();
}
