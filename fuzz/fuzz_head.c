/*
 * sg_head on arbitrary bytes, against an independent statement of what
 * it must do: sg_header_kind() folds letter case and '_' onto '-' and
 * compares with six names; sg_head_filter() splits the input at CRLF,
 * keeps the first line, then every line up to the first empty one unless
 * the text before its first ':' names Authorization, on-behalf-of or
 * x-sg-elas-acl, and says the head ends at that empty line.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../ngx_sendgrid_integrations_module/sg_head.h"


static int
fold(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c + ('a' - 'A');
    }

    return c == '_' ? '-' : c;
}


static sg_header_t
kind(const uint8_t *name, size_t len)
{
    static const struct {
        const char   *name;
        sg_header_t   kind;
    } names[] = {
        { "authorization", SG_HEADER_AUTHORIZATION },
        { "on-behalf-of", SG_HEADER_ON_BEHALF_OF },
        { "x-sg-elas-acl", SG_HEADER_ELAS_ACL },
        { "x-http-method-override", SG_HEADER_METHOD_OVERRIDE },
        { "x-http-method", SG_HEADER_METHOD_OVERRIDE },
        { "x-method-override", SG_HEADER_METHOD_OVERRIDE }
    };

    size_t  k, i;

    for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        if (strlen(names[k].name) != len) {
            continue;
        }

        for (i = 0; i < len && fold(name[i]) == names[k].name[i]; i++) {
            /* void */
        }

        if (i == len) {
            return names[k].kind;
        }
    }

    return SG_HEADER_OTHER;
}


static int
dropped(const uint8_t *line, size_t len)
{
    const uint8_t  *colon;

    colon = memchr(line, ':', len);

    if (colon == NULL) {
        return 0;
    }

    switch (kind(line, colon - line)) {
    case SG_HEADER_AUTHORIZATION:
    case SG_HEADER_ON_BEHALF_OF:
    case SG_HEADER_ELAS_ACL:
        return 1;
    default:
        return 0;
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int       first, complete;
    size_t    rest, pos, end, o, want_rest;
    ssize_t   n;
    uint8_t  *in, *out, *want;

    /* exact heap copies, so that any access outside them is caught */
    in = malloc(size ? size : 1);
    out = malloc(size ? size : 1);
    want = malloc(size ? size : 1);

    if (in == NULL || out == NULL || want == NULL) {
        abort();
    }

    if (size) {
        memcpy(in, data, size);
    }

    if (sg_header_kind(in, size) != kind(in, size)) {
        abort();
    }

    o = 0;
    pos = 0;
    first = 1;
    complete = 0;
    want_rest = 0;

    for ( ;; ) {
        for (end = pos; end + 1 < size; end++) {
            if (in[end] == '\r' && in[end + 1] == '\n') {
                break;
            }
        }

        if (end + 1 >= size) {
            break;
        }

        if (!first && end == pos) {
            complete = 1;
            want_rest = pos;
            break;
        }

        if (first || !dropped(in + pos, end - pos)) {
            memcpy(want + o, in + pos, end + 2 - pos);
            o += end + 2 - pos;
        }

        first = 0;
        pos = end + 2;
    }

    n = sg_head_filter(in, size, out, &rest);

    if (!complete) {
        if (n != -1) {
            abort();
        }

    } else if (n < 0 || (size_t) n != o || rest != want_rest
               || memcmp(out, want, o) != 0)
    {
        abort();
    }

    free(in);
    free(out);
    free(want);

    return 0;
}
