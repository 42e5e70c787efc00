/*
 * The Content-Type rule: application/json, optionally charset=utf-8.
 */

#include <string.h>

#include "sg_content_type.h"


typedef struct {
    const unsigned char  *p;
    const unsigned char  *end;
} sg_cursor_t;


static void
sg_skip_space(sg_cursor_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) {
        c->p++;
    }
}


/* Consumes word (lower case ASCII) in any letter case. */
static int
sg_take_word(sg_cursor_t *c, const char *word)
{
    unsigned char         ch;
    const unsigned char  *p;

    for (p = c->p; *word; p++, word++) {
        if (p == c->end) {
            return 0;
        }

        ch = *p;

        if (ch >= 'A' && ch <= 'Z') {
            ch |= 0x20;
        }

        if (ch != (unsigned char) *word) {
            return 0;
        }
    }

    c->p = p;

    return 1;
}


static int
sg_take_byte(sg_cursor_t *c, unsigned char ch)
{
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }

    return 0;
}


static int
sg_take_charset_value(sg_cursor_t *c)
{
    if (sg_take_byte(c, '"')) {
        return sg_take_word(c, "utf-8") && sg_take_byte(c, '"');
    }

    return sg_take_word(c, "utf-8");
}


int
sg_content_type_is_json(const unsigned char *value, size_t len)
{
    sg_cursor_t  c;

    /* what nearly every client sends */
    if (len == sizeof("application/json") - 1
        && memcmp(value, "application/json", len) == 0)
    {
        return 1;
    }

    c.p = value;
    c.end = value + len;

    sg_skip_space(&c);

    if (!sg_take_word(&c, "application/json")) {
        return 0;
    }

    sg_skip_space(&c);

    if (sg_take_byte(&c, ';')) {
        sg_skip_space(&c);

        if (!sg_take_word(&c, "charset")
            || !sg_take_byte(&c, '=')
            || !sg_take_charset_value(&c))
        {
            return 0;
        }

        sg_skip_space(&c);
    }

    return c.p == c.end;
}
