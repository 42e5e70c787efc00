/*
 * API key file contents.
 */

#include "sg_key.h"


static int
sg_key_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}


const char *
sg_key_parse(const unsigned char *data, size_t len, const unsigned char **key,
    size_t *key_len)
{
    size_t  i;

    while (len && sg_key_is_space(data[0])) {
        data++;
        len--;
    }

    while (len && sg_key_is_space(data[len - 1])) {
        len--;
    }

    if (len == 0) {
        return "is empty";
    }

    for (i = 0; i < len; i++) {
        if (data[i] < 0x21 || data[i] > 0x7e) {
            return "contains whitespace, control or non-ASCII bytes";
        }
    }

    *key = data;
    *key_len = len;

    return NULL;
}
