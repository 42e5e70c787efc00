/*
 * sg_key_parse() on arbitrary file contents: an accepted key is a non-empty
 * run of printable ASCII inside the input with only spaces, tabs, CR and
 * LF around it; a refusal happens exactly when no such key exists.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../ngx_sendgrid_integrations_module/sg_key.h"


static int
is_trimmed(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}


/* An independent statement of the rule: does the input hold a key? */
static int
holds_key(const uint8_t *data, size_t size)
{
    size_t  first, last, i;

    for (first = 0; first < size && is_trimmed(data[first]); first++) {
        /* void */
    }

    if (first == size) {
        return 0;
    }

    for (last = size - 1; is_trimmed(data[last]); last--) {
        /* void: stops at data[first] at the latest */
    }

    for (i = first; i <= last; i++) {
        if (data[i] <= ' ' || data[i] >= 0x7f) {
            return 0;
        }
    }

    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                key_len, i;
    uint8_t              *copy;
    const char           *err;
    const unsigned char  *key;

    /* an exact heap copy, so that any read outside it is caught */
    copy = malloc(size ? size : 1);

    if (copy == NULL) {
        abort();
    }

    if (size) {
        memcpy(copy, data, size);
    }

    key = NULL;
    key_len = 0;

    err = sg_key_parse(copy, size, &key, &key_len);

    if ((err == NULL) != holds_key(copy, size)) {
        abort();
    }

    if (err != NULL) {
        if (err[0] == '\0') {
            abort();
        }

        free(copy);
        return 0;
    }

    if (key == NULL || key_len == 0 || key < copy
        || key_len > (size_t) (copy + size - key))
    {
        abort();
    }

    for (i = 0; i < key_len; i++) {
        if (key[i] < 0x21 || key[i] > 0x7e) {
            abort();
        }
    }

    /* nothing but the trimmed bytes around the key */
    for (i = 0; copy + i < key; i++) {
        if (!is_trimmed(copy[i])) {
            abort();
        }
    }

    for (i = (size_t) (key - copy) + key_len; i < size; i++) {
        if (!is_trimmed(copy[i])) {
            abort();
        }
    }

    free(copy);

    return 0;
}
