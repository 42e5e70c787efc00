/*
 * sg_key: key file contents.
 */

#include "tap.h"
#include "../../ngx_sendgrid_integrations_module/sg_key.h"


static const char *
parse(const char *data, char *out)
{
    size_t                len;
    const char           *err;
    const unsigned char  *key;

    err = sg_key_parse((const unsigned char *) data, strlen(data), &key, &len);

    if (err == NULL) {
        memcpy(out, key, len);
        out[len] = '\0';
    }

    return err;
}


int
main(void)
{
    char  key[128];

    ok(parse("SG.abc.def", key) == NULL, "plain key accepted");
    is_str(key, "SG.abc.def", "plain key");

    ok(parse(" \t\r\nSG.x\r\n\n", key) == NULL, "surrounding space trimmed");
    is_str(key, "SG.x", "trimmed key");

    is_str(parse("", key), "is empty", "empty file");
    is_str(parse(" \n\t\r", key), "is empty", "whitespace only");
    ok(parse("SG.a b", key) != NULL, "interior space refused");
    ok(parse("SG.a\tb", key) != NULL, "interior tab refused");
    ok(parse("SG.a\x01", key) != NULL, "control byte refused");
    ok(parse("SG.\xc3\xa9", key) != NULL, "non-ASCII refused");
    ok(parse("SG.a\x7f", key) != NULL, "DEL refused");

    return done_testing();
}
