/*
 * The single-pass body validator against the jansson reference: the same
 * verdict and the same message for every input, whatever the pieces the
 * body arrives in; the same properties.write_key as jansson decodes (its
 * first SG_BODY_WRITE_KEY_KEPT bytes, whole characters); and never more
 * memory than SG_BODY_MEMORY_MAX.
 *
 * Input layout:
 *   [0]      bit 0: PATCH schema (else POST), bit 1: strict,
 *            bit 2: SipHash for member names from the first lookup
 *   [1]      seed of the piece sizes (0: the whole body in one piece)
 *   rest     the body
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../ngx_sendgrid_integrations_module/sg_body.h"


static void check_rules(const sg_body_t *v, int rc);
static void check_write_key(const sg_body_t *v, const uint8_t *data,
    size_t size);


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    if (sg_body_init() != 0) {
        abort();
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                   rc, ref;
    char                 *message;
    size_t                off, piece, len;
    uint32_t              seed;
    unsigned              flags;
    sg_body_t            *v;
    const char           *got;
    sg_body_schema_t      schema;

    if (size < 2) {
        return 0;
    }

    schema = (data[0] & 1) ? SG_BODY_UPDATE : SG_BODY_CREATE;
    flags = ((data[0] & 2) ? SG_BODY_STRICT : 0)
            | ((data[0] & 4) ? SG_BODY_SIPHASH : 0);
    seed = data[1];
    data += 2;
    size -= 2;

    ref = sg_body_reference_validate(schema, flags, data, size, &message);

    v = sg_body_create(schema, flags);
    if (v == NULL) {
        abort();
    }

    rc = SG_BODY_OK;
    off = 0;

    while (off < size && rc == SG_BODY_OK) {
        piece = size - off;

        if (seed) {
            /* a small xorshift: short pieces, now and then a long one */
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            piece = (seed & 0x100) ? 1 + seed % 97 : 1 + seed % 5;

            if (piece > size - off) {
                piece = size - off;
            }
        }

        rc = sg_body_feed(v, data + off, piece);
        off += piece;
    }

    if (rc == SG_BODY_OK) {
        rc = sg_body_finish(v);
    }

    if (rc != ref || rc == SG_BODY_NOMEM
        || sg_body_memory(v) > SG_BODY_MEMORY_MAX)
    {
        abort();
    }

    if (rc == SG_BODY_INVALID) {
        got = sg_body_message(v, &len);

        if (got == NULL || message == NULL || strlen(message) != len
            || memcmp(got, message, len) != 0 || got[len] != '\0')
        {
            abort();
        }
    }

    check_rules(v, rc);
    check_write_key(v, data, size);

    free(message);
    sg_body_destroy(v);

    return 0;
}


/*
 * A refused body broke at least one rule, a valid one none; a message of
 * the JSON level goes with its rule alone, a list of schema failures
 * with schema rules only.  Told apart by their whole form: a schema
 * failure may name a member "request body is empty".
 */
static void
check_rules(const sg_body_t *v, int rc)
{
    size_t       len;
    unsigned     rules, want;
    const char  *m;

#define SG_BODY_JSON_RULES                                                    \
    (SG_BODY_RULE_EMPTY | SG_BODY_RULE_SYNTAX | SG_BODY_RULE_DUPLICATE        \
     | SG_BODY_RULE_OBJECT | SG_BODY_RULE_LIMIT)

#define starts(s, prefix)  (strncmp(s, prefix, sizeof(prefix) - 1) == 0)

    rules = sg_body_rules(v);

    if (rc != SG_BODY_INVALID) {
        if (rules != 0) {
            abort();
        }

        return;
    }

    m = sg_body_message(v, &len);

    if (strcmp(m, "request body is empty") == 0) {
        want = SG_BODY_RULE_EMPTY;

    } else if (strcmp(m, "request body must be a JSON object") == 0) {
        want = SG_BODY_RULE_OBJECT;

    } else if (starts(m, "request body is not valid JSON at byte ")
               && m[len - 1] >= '0' && m[len - 1] <= '9')
    {
        want = SG_BODY_RULE_SYNTAX;

    } else if (starts(m, "request body has duplicate member \"")
               && m[len - 1] >= '0' && m[len - 1] <= '9')
    {
        want = SG_BODY_RULE_DUPLICATE;

    } else if (starts(m, "request body exceeds the limit of ")
               && strstr(m, " open at once at byte ") != NULL
               && m[len - 1] >= '0' && m[len - 1] <= '9')
    {
        want = SG_BODY_RULE_LIMIT;

    } else {
        want = 0;
    }

    if (want ? (rules != want)
             : (rules == 0 || (rules & SG_BODY_JSON_RULES) != 0))
    {
        abort();
    }

#undef starts
#undef SG_BODY_JSON_RULES
}


/*
 * When jansson takes the body, the validator must give what it decodes
 * as properties.write_key of a top-level object, byte for byte, up to
 * the last character that ends within SG_BODY_WRITE_KEY_KEPT bytes.
 */
static void
check_write_key(const sg_body_t *v, const uint8_t *data, size_t size)
{
    size_t                len, want;
    json_t               *root, *key;
    const char           *text;
    const unsigned char  *got;

    root = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                      NULL);
    if (root == NULL) {
        return;
    }

    key = json_object_get(json_object_get(root, "properties"), "write_key");
    got = sg_body_write_key(v, &len);

    if (!json_is_object(root) || !json_is_string(key)) {
        if (got != NULL) {
            abort();
        }

    } else {
        text = json_string_value(key);
        want = json_string_length(key);

        if (want > SG_BODY_WRITE_KEY_KEPT) {
            want = SG_BODY_WRITE_KEY_KEPT;

            while ((text[want] & 0xc0) == 0x80) {
                want--;
            }
        }

        if (got == NULL || len != want || memcmp(got, text, len) != 0) {
            abort();
        }
    }

    json_decref(root);
}
