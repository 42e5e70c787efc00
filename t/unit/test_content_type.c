/*
 * sg_content_type: which Content-Type values are JSON.
 */

#include "tap.h"
#include "../../ngx_sendgrid_integrations_module/sg_content_type.h"


static int
is_json(const char *value)
{
    return sg_content_type_is_json((const unsigned char *) value,
                                   strlen(value));
}


int
main(void)
{
    static const char  *accepted[] = {
        "application/json",
        "APPLICATION/JSON",
        "Application/Json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "application/json ; charset=\"utf-8\"",
        "  application/json\t",
        "application/json;\tCHARSET=Utf-8 ",
    };

    static const char  *refused[] = {
        "",
        "text/plain",
        "application/jsonx",
        "application/json-patch+json",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin1",
        "application/json; charset=utf-16",
        "application/json; charset=utf-8; boundary=x",
        "application/json; boundary=x",
        "application/json;",
        "application/json; charset=",
        "application/json; charset=\"utf-8",
        "application/json, text/plain",
        "application /json",
        "multipart/form-data",
        "application\017json",
        "application/json;\rcharset=utf-8",
        "application/json; charset\035utf-8",
        "application/json; charset=utf\r8",
    };

    size_t  i;

    for (i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        ok(is_json(accepted[i]), "accepted: \"%s\"", accepted[i]);
    }

    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        ok(!is_json(refused[i]), "refused: \"%s\"", refused[i]);
    }

    ok(!sg_content_type_is_json((const unsigned char *) "application/json\0",
                                17), "NUL byte refused");

    return done_testing();
}
