/*
 * The reference body validator: the rules of sg_body.h in the plainest
 * way, on the tree that jansson builds.  The tests and the fuzz target
 * hold the single-pass validator of sg_body.c to its verdicts and
 * messages.
 */

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sg_body.h"


typedef struct {
    char    *data;
    size_t   len;
    size_t   size;
    size_t   listed;        /* failures in the text */
    size_t   unlisted;      /* failures past SG_BODY_LISTED_MAX */
    int      nomem;
} sg_ref_text_t;


static void sg_ref_say(sg_ref_text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sg_ref_append(sg_ref_text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sg_ref_add(sg_ref_text_t *t, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static size_t sg_ref_cut(const char *name, size_t len, char *cut);
static int sg_ref_is(json_t *value, const char *text);
static size_t sg_ref_chars(const char *s, size_t len);
static json_t *sg_ref_duplicate(const unsigned char *data, size_t len,
    size_t position);
static int sg_ref_names_limit(const unsigned char *data, size_t len,
    size_t *at);
static size_t sg_ref_string_end(const unsigned char *data, size_t len,
    size_t i);
static void sg_ref_schema(sg_ref_text_t *t, json_t *root, int create);
static void sg_ref_names(sg_ref_text_t *t, json_t *object,
    const char *prefix, const char *const *known, int strict);
static const char *sg_ref_shadowed(const char *key, size_t len,
    const char *const *known);
static size_t sg_ref_fold(const char *s, size_t len, uint32_t *folded,
    size_t max);


static const char *const  sg_ref_events[] = {
    "drop", "processed", "deferred", "group_unsubscribe", "bounce",
    "delivered", "click", "unsubscribe", "open", "group_resubscribe",
    "spamreport", "machine_opened", NULL
};

static const char *const  sg_ref_top_members[] = {
    "destination", "filters", "properties", "label", NULL
};

static const char *const  sg_ref_filters_members[] = {
    "email_events", NULL
};

static const char *const  sg_ref_properties_members[] = {
    "write_key", "destination_region", NULL
};


int
sg_body_reference_validate(sg_body_schema_t schema, unsigned flags,
    const unsigned char *data, size_t len, char **message)
{
    int             limit;
    char            cut[SG_BODY_NAME_MAX + sizeof("...")];
    size_t          n, at;
    json_t         *root, *name;
    json_error_t    error;
    sg_ref_text_t   t;

    memset(&t, 0, sizeof(t));
    *message = NULL;

    if (len == 0) {
        sg_ref_say(&t, "request body is empty");
        goto invalid;
    }

    limit = sg_ref_names_limit(data, len, &at);
    if (limit == -1) {
        return SG_BODY_NOMEM;
    }

    root = json_loadb((const char *) data, len, JSON_REJECT_DUPLICATES,
                      &error);

    if (root == NULL) {
        if (error.text[0] == '\0'
            || json_error_code(&error) == json_error_out_of_memory)
        {
            return SG_BODY_NOMEM;
        }

        /*
         * a limit passed before the error wins, and at the same name as
         * a duplicate: a name is counted before it is compared
         */
        if (limit
            && (at < (size_t) error.position
                || (at == (size_t) error.position
                    && json_error_code(&error) == json_error_duplicate_key)))
        {
            goto limit;
        }

        if (json_error_code(&error) != json_error_duplicate_key) {
            sg_ref_say(&t, "request body is not valid JSON at byte %d",
                       error.position);
            goto invalid;
        }

        name = sg_ref_duplicate(data, len, error.position);
        if (name == NULL) {
            return SG_BODY_NOMEM;
        }

        n = sg_ref_cut(json_string_value(name), json_string_length(name),
                       cut);
        json_decref(name);

        sg_ref_say(&t, "request body has duplicate member \"%.*s\" "
                   "at byte %d", (int) n, cut, error.position);
        goto invalid;
    }

    if (limit) {
        json_decref(root);
        goto limit;
    }

    if (!json_is_object(root)) {
        sg_ref_say(&t, "request body must be a JSON object");
        json_decref(root);
        goto invalid;
    }

    sg_ref_schema(&t, root, schema == SG_BODY_CREATE);

    sg_ref_names(&t, root, "", sg_ref_top_members, flags & SG_BODY_STRICT);

    json_decref(root);

    if (t.unlisted) {
        sg_ref_append(&t, "and %zu more failure%s", t.unlisted,
                      (t.unlisted == 1) ? "" : "s");
    }

    if (t.nomem) {
        free(t.data);
        return SG_BODY_NOMEM;
    }

    if (t.len == 0) {
        return SG_BODY_OK;
    }

    goto invalid;

limit:

    if (limit == 1) {
        sg_ref_say(&t, "request body exceeds the limit of %d member names "
                   "open at once at byte %zu", SG_BODY_NAMES_MAX, at);

    } else {
        sg_ref_say(&t, "request body exceeds the limit of %d bytes of member "
                   "names open at once at byte %zu", SG_BODY_NAMES_BYTES, at);
    }

invalid:

    if (t.nomem) {
        free(t.data);
        return SG_BODY_NOMEM;
    }

    *message = t.data;

    return SG_BODY_INVALID;
}


/* Every rule on the members' values, in order. */
static void
sg_ref_schema(sg_ref_text_t *t, json_t *root, int create)
{
    size_t       i, n;
    json_t      *value, *events, *item;
    const char  *const  *e;

    value = json_object_get(root, "destination");

    if (value == NULL) {
        if (create) {
            sg_ref_say(t, "destination is required");
        }

    } else if (!sg_ref_is(value, "Segment")) {
        sg_ref_say(t, "destination must be Segment");
    }

    value = json_object_get(root, "filters");

    if (value == NULL) {
        if (create) {
            sg_ref_say(t, "filters is required");
        }

    } else if (!json_is_object(value)) {
        sg_ref_say(t, "filters must be an object");

    } else {
        events = json_object_get(value, "email_events");

        if (events == NULL) {
            if (create) {
                sg_ref_say(t, "filters.email_events is required");
            }

        } else if (!json_is_array(events)) {
            sg_ref_say(t, "filters.email_events must be an array");

        } else {
            json_array_foreach(events, i, item) {
                for (e = sg_ref_events; *e; e++) {
                    if (sg_ref_is(item, *e)) {
                        break;
                    }
                }

                if (*e == NULL) {
                    sg_ref_say(t, "filters.email_events[%zu] is not a valid "
                               "email event", i);
                }
            }
        }
    }

    value = json_object_get(root, "properties");

    if (value == NULL) {
        if (create) {
            sg_ref_say(t, "properties is required");
        }

    } else if (!json_is_object(value)) {
        sg_ref_say(t, "properties must be an object");

    } else {
        item = json_object_get(value, "write_key");

        if (item == NULL) {
            if (create) {
                sg_ref_say(t, "properties.write_key is required");
            }

        } else if (!json_is_string(item)) {
            sg_ref_say(t, "properties.write_key must be a string");

        } else {
            n = sg_ref_chars(json_string_value(item),
                             json_string_length(item));

            if (n < SG_BODY_WRITE_KEY_MIN || n > SG_BODY_WRITE_KEY_MAX) {
                sg_ref_say(t, "properties.write_key must be between %d and "
                           "%d characters", SG_BODY_WRITE_KEY_MIN,
                           SG_BODY_WRITE_KEY_MAX);
            }
        }

        item = json_object_get(value, "destination_region");

        if (item == NULL) {
            if (create) {
                sg_ref_say(t, "properties.destination_region is required");
            }

        } else if (!sg_ref_is(item, "EU") && !sg_ref_is(item, "US")) {
            sg_ref_say(t, "properties.destination_region must be EU or US");
        }
    }

    value = json_object_get(root, "label");

    if (value != NULL && !json_is_string(value)) {
        sg_ref_say(t, "label must be a string");
    }
}


/*
 * The members of object that are not in known, in document order (jansson
 * keeps insertion order), descending into filters and properties of the
 * top level where they are objects: a failure each when it folds to a
 * known name as Go's encoding/json folds names, or in strict mode.
 */
static void
sg_ref_names(sg_ref_text_t *t, json_t *object, const char *prefix,
    const char *const *known, int strict)
{
    char                cut[SG_BODY_NAME_MAX + sizeof("...")];
    void               *iter;
    size_t              len, n;
    json_t             *value;
    const char         *key, *shadowed;
    const char *const  *k;

    for (iter = json_object_iter(object);
         iter;
         iter = json_object_iter_next(object, iter))
    {
        key = json_object_iter_key(iter);
        len = json_object_iter_key_len(iter);
        value = json_object_iter_value(iter);

        for (k = known; *k; k++) {
            if (strlen(*k) == len && memcmp(*k, key, len) == 0) {
                break;
            }
        }

        if (*k == NULL) {
            n = sg_ref_cut(key, len, cut);
            shadowed = sg_ref_shadowed(key, len, known);

            if (shadowed != NULL) {
                sg_ref_say(t, "%s%.*s differs from %s%s only in letter case",
                           prefix, (int) n, cut, prefix, shadowed);

            } else if (strict) {
                sg_ref_say(t, "%s%.*s is not allowed", prefix, (int) n, cut);
            }

            continue;
        }

        if (prefix[0] != '\0' || !json_is_object(value)) {
            continue;
        }

        if (strcmp(key, "filters") == 0) {
            sg_ref_names(t, value, "filters.", sg_ref_filters_members,
                         strict);

        } else if (strcmp(key, "properties") == 0) {
            sg_ref_names(t, value, "properties.", sg_ref_properties_members,
                         strict);
        }
    }
}


/* The known name that key equals after folding, or NULL. */
static const char *
sg_ref_shadowed(const char *key, size_t len, const char *const *known)
{
    size_t              n, m;
    uint32_t            a[SG_BODY_NAME_MAX], b[SG_BODY_NAME_MAX];
    const char *const  *k;

    n = sg_ref_fold(key, len, a, SG_BODY_NAME_MAX);

    for (k = known; *k; k++) {
        m = sg_ref_fold(*k, strlen(*k), b, SG_BODY_NAME_MAX);

        if (n == m && n <= SG_BODY_NAME_MAX
            && memcmp(a, b, n * sizeof(uint32_t)) == 0)
        {
            return *k;
        }
    }

    return NULL;
}


/*
 * The code points of the UTF-8 text s, each folded as Go's encoding/json
 * folds names (to the smallest code point of its simple case folding
 * orbit): 'a' to 'z' become upper case, U+017F LATIN SMALL LETTER LONG S
 * becomes 'S' and U+212A KELVIN SIGN 'K'; the other orbits hold no ASCII
 * letter, and the names compared with are ASCII.  Writes at most max of
 * them to folded; returns how many there are.
 */
static size_t
sg_ref_fold(const char *s, size_t len, uint32_t *folded, size_t max)
{
    size_t          i, n, more;
    uint32_t        cp;
    unsigned char   c;

    n = 0;

    for (i = 0; i < len; n++) {
        c = (unsigned char) s[i++];

        if (c < 0x80) {
            cp = c;
            more = 0;

        } else if (c < 0xe0) {
            cp = c & 0x1f;
            more = 1;

        } else if (c < 0xf0) {
            cp = c & 0x0f;
            more = 2;

        } else {
            cp = c & 0x07;
            more = 3;
        }

        while (more-- && i < len) {
            cp = (cp << 6) | ((unsigned char) s[i++] & 0x3f);
        }

        if (cp >= 'a' && cp <= 'z') {
            cp -= 'a' - 'A';

        } else if (cp == 0x017f) {
            cp = 'S';

        } else if (cp == 0x212a) {
            cp = 'K';
        }

        if (n < max) {
            folded[n] = cp;
        }
    }

    return n;
}


/* Whether value is the string text, compared after decoding. */
static int
sg_ref_is(json_t *value, const char *text)
{
    return json_is_string(value)
           && json_string_length(value) == strlen(text)
           && memcmp(json_string_value(value), text, strlen(text)) == 0;
}


/* Unicode code points in the UTF-8 text s: the bytes that start one. */
static size_t
sg_ref_chars(const char *s, size_t len)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            n++;
        }
    }

    return n;
}


/*
 * The decoded name of the duplicate member jansson stopped at, as a JSON
 * string.  jansson's position counts the bytes it read up to the closing
 * quote of that name, except NUL bytes that directly follow a number or a
 * literal (its lexer puts them back and then loses them; it accepts
 * "[1\0]").  Every NUL before a duplicate is one of those, since any other
 * is an error, so the closing quote is the position-th byte that is not
 * NUL.  The opening quote is the nearest quote before it that is not
 * escaped, i.e. not preceded by an odd run of backslashes.
 */
static json_t *
sg_ref_duplicate(const unsigned char *data, size_t len, size_t position)
{
    size_t   end, start, seen, run;
    json_t  *name;

    seen = 0;

    for (end = 0; end < len; end++) {
        if (data[end] != '\0' && ++seen == position) {
            break;
        }
    }

    if (end == len) {
        return NULL;
    }

    start = end;

    for ( ;; ) {
        if (start == 0) {
            return NULL;
        }

        start--;

        if (data[start] != '"') {
            continue;
        }

        for (run = 0; run < start && data[start - 1 - run] == '\\'; run++) {
            /* void */
        }

        if (run % 2 == 0) {
            break;
        }
    }

    name = json_loadb((const char *) data + start, end - start + 1,
                      JSON_DECODE_ANY, NULL);

    if (name != NULL && !json_is_string(name)) {
        json_decref(name);
        return NULL;
    }

    return name;
}


/*
 * Where the member names of the open objects first go past a limit of
 * sg_body.h: 1 for their number, 2 for their decoded bytes, with *at the
 * position after the name (in jansson's count of bytes), or 0 when they
 * never do; -1 when out of memory.  A plain scan: only what comes before
 * jansson's error matters (the caller compares the positions), and there
 * the body is valid JSON so far, every NUL byte outside strings is one
 * that jansson drops, and a string is a member name when it follows '{'
 * or ',' in an object.  jansson decodes each name; one it refuses fails
 * the body where it ends, before any limit it would pass.
 */
static int
sg_ref_names_limit(const unsigned char *data, size_t len, size_t *at)
{
    size_t          i, end, depth, names, bytes, nuls;
    json_t         *name;
    json_error_t    error;
    unsigned char   c, last;
    struct {
        int         object;
        size_t      names;
        size_t      bytes;
    }               open[2048];

    depth = 0;
    names = 0;
    bytes = 0;
    nuls = 0;
    last = '\0';

    for (i = 0; i < len; i++) {
        c = data[i];

        switch (c) {

        case '"':
            end = sg_ref_string_end(data, len, i);
            if (end == len) {
                return 0;
            }

            if (depth && open[depth - 1].object
                && (last == '{' || last == ','))
            {
                name = json_loadb((const char *) data + i, end - i + 1,
                                  JSON_DECODE_ANY, &error);
                if (name == NULL) {
                    return (json_error_code(&error)
                            == json_error_out_of_memory) ? -1 : 0;
                }

                open[depth - 1].names++;
                open[depth - 1].bytes += json_string_length(name);
                names++;
                bytes += json_string_length(name);

                json_decref(name);

                *at = end + 1 - nuls;

                if (names > SG_BODY_NAMES_MAX) {
                    return 1;
                }

                if (bytes > SG_BODY_NAMES_BYTES) {
                    return 2;
                }
            }

            i = end;
            break;

        case '{':
        case '[':
            if (depth == 2048) {
                /* jansson fails here */
                return 0;
            }

            open[depth].object = (c == '{');
            open[depth].names = 0;
            open[depth].bytes = 0;
            depth++;
            break;

        case '}':
        case ']':
            if (depth == 0) {
                return 0;
            }

            depth--;
            names -= open[depth].names;
            bytes -= open[depth].bytes;
            break;

        case ' ':
        case '\t':
        case '\n':
        case '\r':
            continue;

        case '\0':
            nuls++;
            continue;
        }

        last = c;
    }

    return 0;
}


/* The closing quote of the string whose opening quote is at i, or len. */
static size_t
sg_ref_string_end(const unsigned char *data, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (data[i] == '\\') {
            i++;

        } else if (data[i] == '"') {
            return i;
        }
    }

    return len;
}


/*
 * Appends one failure, ", "-separated from the ones before it; past
 * SG_BODY_LISTED_MAX of them, only counts it.
 */
static void
sg_ref_say(sg_ref_text_t *t, const char *fmt, ...)
{
    va_list  ap;

    if (t->listed == SG_BODY_LISTED_MAX) {
        t->unlisted++;
        return;
    }

    t->listed++;

    va_start(ap, fmt);
    sg_ref_add(t, fmt, ap);
    va_end(ap);
}


/* Appends a last part that is not a failure itself. */
static void
sg_ref_append(sg_ref_text_t *t, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    sg_ref_add(t, fmt, ap);
    va_end(ap);
}


static void
sg_ref_add(sg_ref_text_t *t, const char *fmt, va_list ap)
{
    int       n;
    char     *p;
    size_t    size;
    va_list   again;

    if (t->nomem) {
        return;
    }

    va_copy(again, ap);
    n = vsnprintf(NULL, 0, fmt, ap);

    if (n < 0) {
        t->nomem = 1;
        va_end(again);
        return;
    }

    size = t->len + 2 + n + 1;

    if (size > t->size) {
        p = realloc(t->data, size * 2);
        if (p == NULL) {
            t->nomem = 1;
            va_end(again);
            return;
        }

        t->data = p;
        t->size = size * 2;
    }

    if (t->len) {
        memcpy(t->data + t->len, ", ", 2);
        t->len += 2;
    }

    vsnprintf(t->data + t->len, n + 1, fmt, again);
    va_end(again);

    t->len += n;
}


/*
 * A member name chosen by the client, for a message: at most
 * SG_BODY_NAME_MAX bytes of it, cut at a character boundary, then "..."
 * when something was cut.  Returns the length written to cut.
 */
static size_t
sg_ref_cut(const char *name, size_t len, char *cut)
{
    size_t  n;

    n = len;

    if (n > SG_BODY_NAME_MAX) {
        n = SG_BODY_NAME_MAX;

        while (((unsigned char) name[n] & 0xc0) == 0x80) {
            n--;
        }
    }

    memcpy(cut, name, n);

    if (n < len) {
        memcpy(cut + n, "...", 3);
        n += 3;
    }

    return n;
}
