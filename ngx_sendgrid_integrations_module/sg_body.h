/*
 * Request body rules of the Integrations API (IntegrationInput for POST,
 * IntegrationPatch for PATCH).  No nginx headers.
 *
 * sg_body_t is the single-pass validator used on the hot path: a byte-level
 * JSON scanner that knows the two schemas and is fed the body buffer by
 * buffer as it arrives.  sg_body_reference_validate() implements the same
 * rules in the plainest way on top of jansson; the fuzz target holds the
 * two to the same verdict and message.
 */

#ifndef SG_BODY_H
#define SG_BODY_H

#include <stddef.h>


typedef enum {
    SG_BODY_CREATE = 0,     /* POST: IntegrationInput */
    SG_BODY_UPDATE          /* PATCH: IntegrationPatch */
} sg_body_schema_t;

/*
 * Unknown members of the top level, filters and properties are failures.
 * Without it they pass, except names that differ from a schema member's
 * only in letter case, as Go's encoding/json folds names (ASCII letters,
 * and U+017F for 's' and U+212A for 'k'): a decoder that folds them would
 * read the member where the gateway did not look.
 */
#define SG_BODY_STRICT  0x01

/*
 * The member names of a large object are hashed with a fast keyed hash,
 * and with SipHash once names are seen to collide in it; with this flag
 * from the first name looked up, which tests use to reach that path.
 */
#define SG_BODY_SIPHASH 0x02

/* properties.write_key: length in Unicode code points */
#define SG_BODY_WRITE_KEY_MIN  6
#define SG_BODY_WRITE_KEY_MAX  51

/*
 * A member name in a message is cut after this many bytes of its decoded
 * text (at a character boundary) and then ends with "...".
 */
#define SG_BODY_NAME_MAX  64

/*
 * A message lists at most this many schema failures; the ones after them
 * are counted in a last part, "and N more failures" ("and 1 more
 * failure").
 */
#define SG_BODY_LISTED_MAX  20

/*
 * The validator's memory is bounded whatever the body.  It keeps the
 * decoded member names of the objects that are open (a name from its
 * closing quote until its object closes, to find duplicates): a body
 * whose open objects hold more than SG_BODY_NAMES_MAX names, or more than
 * SG_BODY_NAMES_BYTES bytes of decoded names, at any point is refused at
 * the name that goes past the limit (the count is checked first):
 *
 *     request body exceeds the limit of 1024 member names open at once
 *     at byte N
 *     request body exceeds the limit of 16384 bytes of member names open
 *     at once at byte N
 *
 * N is the offset after that name, as for a duplicate; the limit is
 * checked before the name is compared with the others.  Within these
 * limits and jansson's nesting depth (2048), everything the validator
 * allocates, itself included, stays under SG_BODY_MEMORY_MAX bytes.
 */
#define SG_BODY_NAMES_MAX     1024
#define SG_BODY_NAMES_BYTES   16384
#define SG_BODY_MEMORY_MAX    65536

/*
 * At most this many bytes of properties.write_key are kept for
 * sg_body_write_key(): a longer one is not a valid write_key, and only its
 * first whole characters are kept.
 */
#define SG_BODY_WRITE_KEY_KEPT  1024

#define SG_BODY_OK       0     /* valid */
#define SG_BODY_INVALID  1     /* invalid: see the message */
#define SG_BODY_NOMEM   -1

typedef struct sg_body_s  sg_body_t;


/*
 * Makes the key of the hash of member names from the system's random
 * bytes: arc4random_buf() on the BSDs and macOS, getrandom() on Linux
 * (which waits, at boot only, for the kernel's pool to be ready),
 * /dev/urandom elsewhere.  Called once in each process before any
 * validator is made (nginx: in every worker's init_process; a later call
 * keeps the key); returns 0, or -1 with errno set when the system gives
 * no random bytes, and then no validator can be made.  There is no fallback: names chosen to collide
 * under a key that can be guessed would make a body cost quadratic time.
 */
int sg_body_init(void);

/*
 * Allocates a validator; NULL when out of memory, or when sg_body_init()
 * has not succeeded in this process.
 */
sg_body_t *sg_body_create(sg_body_schema_t schema, unsigned flags);

/*
 * Feeds the next len bytes of the body, in pieces of any size: one byte at
 * a time gives the same result as the whole body at once.  Returns
 * SG_BODY_OK while the body may still turn out valid, SG_BODY_INVALID as
 * soon as the final message is known (the body is not valid JSON, or has
 * a duplicate member; later feeds are then ignored), or SG_BODY_NOMEM.
 * Schema failures are only reported by sg_body_finish(): a syntax error
 * further on would replace them.
 */
int sg_body_feed(sg_body_t *v, const unsigned char *data, size_t len);

/* Ends the body: returns SG_BODY_OK, SG_BODY_INVALID or SG_BODY_NOMEM. */
int sg_body_finish(sg_body_t *v);

/*
 * The failures, comma-separated ("a, b"), after SG_BODY_INVALID: UTF-8
 * text that names members by dotted path; the caller JSON-escapes it.
 * The text is NUL-terminated and stays valid until sg_body_destroy().
 * One of:
 *
 *     request body is empty
 *     request body is not valid JSON at byte N
 *     request body has duplicate member "NAME" at byte N
 *     request body exceeds the limit of ... at byte N
 *     request body must be a JSON object
 *     <schema failures>
 *
 * What is valid JSON is what jansson 2.14 accepts from json_loadb() with
 * JSON_REJECT_DUPLICATES, and N is its error.position: the bytes its
 * lexer had read when it stopped, i.e. the offset just after the token
 * that failed (after the member name, for a duplicate), less any NUL
 * bytes that directly followed a number or literal (jansson skips them
 * without counting them, and accepts them).  Schema failures come in a
 * fixed order (destination, filters, filters.email_events and each of its
 * elements, properties, properties.write_key,
 * properties.destination_region, label), each naming its member by path
 * ("filters.email_events[2]").  The failures of member names of the top
 * level, filters and properties follow, in document order: a name that
 * differs from a schema member's only in letter case
 *
 *     properties.Write_Key differs from properties.write_key only in
 *     letter case
 *
 * and, with SG_BODY_STRICT, any other name the schema does not know
 * ("properties.x is not allowed").  The first SG_BODY_LISTED_MAX
 * failures are listed, then "and N more failures" counts the rest,
 * whatever their kind.
 */
const char *sg_body_message(const sg_body_t *v, size_t *len);

/*
 * The rules a body broke, after SG_BODY_INVALID (0 otherwise): one
 * SG_BODY_RULE_* bit for each kind of failure, whether the message lists
 * it or only counts it in "and N more failures".  An empty body, a body
 * that is not valid JSON, one with a duplicate member and one past a
 * limit on member names break that one rule alone; the others are the
 * schema's, any number of them.
 */
unsigned sg_body_rules(const sg_body_t *v);

#define SG_BODY_RULE_EMPTY                 0x00001  /* request body is empty */
#define SG_BODY_RULE_SYNTAX                0x00002  /* not valid JSON */
#define SG_BODY_RULE_DUPLICATE             0x00004  /* duplicate member */
#define SG_BODY_RULE_OBJECT                0x00008  /* must be a JSON object */
#define SG_BODY_RULE_DESTINATION_REQUIRED  0x00010
#define SG_BODY_RULE_DESTINATION_VALUE     0x00020  /* must be Segment */
#define SG_BODY_RULE_FILTERS_REQUIRED      0x00040
#define SG_BODY_RULE_FILTERS_TYPE          0x00080  /* must be an object */
#define SG_BODY_RULE_EVENTS_REQUIRED       0x00100  /* filters.email_events */
#define SG_BODY_RULE_EVENTS_TYPE           0x00200  /* must be an array */
#define SG_BODY_RULE_EVENT_VALUE           0x00400  /* not an email event */
#define SG_BODY_RULE_PROPERTIES_REQUIRED   0x00800
#define SG_BODY_RULE_PROPERTIES_TYPE       0x01000  /* must be an object */
#define SG_BODY_RULE_WRITE_KEY_REQUIRED    0x02000
#define SG_BODY_RULE_WRITE_KEY_TYPE        0x04000  /* must be a string */
#define SG_BODY_RULE_WRITE_KEY_LENGTH      0x08000  /* 6 to 51 characters */
#define SG_BODY_RULE_REGION_REQUIRED       0x10000  /* destination_region */
#define SG_BODY_RULE_REGION_VALUE          0x20000  /* must be EU or US */
#define SG_BODY_RULE_LABEL_TYPE            0x40000  /* must be a string */
#define SG_BODY_RULE_UNKNOWN_MEMBER        0x80000  /* SG_BODY_STRICT */
#define SG_BODY_RULE_NAME_CASE            0x100000  /* a schema member's name
                                                       in another case */
#define SG_BODY_RULE_LIMIT                0x200000  /* names open at once */

/*
 * The decoded value of properties.write_key when the body had one as a
 * string (for redaction in logs), else NULL: at most its first
 * SG_BODY_WRITE_KEY_KEPT bytes, cut at a character boundary.  It is known
 * once that string has been read whole, even when the body later turns
 * out invalid.
 */
const unsigned char *sg_body_write_key(const sg_body_t *v, size_t *len);

/*
 * The most bytes the validator has held allocated at once, itself
 * included: at most SG_BODY_MEMORY_MAX.  (An allocation that would go past
 * it fails as out of memory; the limits on names keep any body short of
 * it.)
 */
size_t sg_body_memory(const sg_body_t *v);

/*
 * Frees what the validator holds; its structure is kept, up to 64 in a
 * process, for the validators created next.  A process creates and
 * destroys its validators on one thread.
 */
void sg_body_destroy(sg_body_t *v);

/*
 * Frees the validators kept for reuse; later ones are kept again.  For a
 * process about to unload the code that holds them (nginx: a worker's
 * exit_process).
 */
void sg_body_free_spares(void);


/*
 * The reference validator: the whole body at once, through jansson.
 * Returns SG_BODY_OK or SG_BODY_INVALID (with *message set to a malloc()ed
 * NUL-terminated string the caller frees), or SG_BODY_NOMEM.
 */
int sg_body_reference_validate(sg_body_schema_t schema, unsigned flags,
    const unsigned char *data, size_t len, char **message);

#endif /* SG_BODY_H */
