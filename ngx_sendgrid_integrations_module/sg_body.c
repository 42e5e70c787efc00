/*
 * The single-pass request body validator of sg_body.h: a byte-level JSON
 * scanner that knows the two schemas.  It reads the body once, in pieces
 * of any size, builds no tree and keeps only what the rules need: a stack
 * of the open containers, the decoded member names of the open objects
 * (for duplicates, within the limits of sg_body.h) and a few facts about
 * the members the schema names.  Every allocation is counted against
 * SG_BODY_MEMORY_MAX, and what reading needed is freed at the verdict.
 *
 * Most tokens lie whole in the buffer fed and need no closer look:
 * strings without escapes, integers that fit, literals, runs of email
 * events.  sg_body_tokens() takes those at once; the states of the lexer
 * read the others byte by byte, across buffers.
 *
 * Valid JSON is what jansson 2.14's json_loadb() accepts with
 * JSON_REJECT_DUPLICATES, and an error is reported at the position
 * jansson reports (load.c), which the scanner reproduces byte for byte:
 *
 *   - jansson counts the bytes its lexer has read; a number or a literal
 *     ends on the byte after it, which is put back, so an error found at
 *     the end of such a token is at the offset of that byte;
 *   - an error in a token that the parser did not expect comes after the
 *     whole token has been read (a string to its closing quote);
 *   - a multi-byte character is checked whole when its first byte is
 *     read: a malformed one is reported at its first byte, a well-formed
 *     one that is not allowed there after one byte (a bad escape or \u
 *     digit) or after the whole character (a stray character);
 *   - lone surrogates and \u0000 are found when the string is decoded,
 *     after its closing quote;
 *   - a NUL byte right after a number or a literal is put back and then
 *     lost by jansson's lexer: it accepts "[1\0]" and counts one byte less
 *     from there on (the "drift" below).
 */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sg_body.h"


/*
 * The hash key's random bytes: arc4random_buf() on the BSDs and macOS,
 * getrandom() on Linux where the C library has it, /dev/urandom otherwise
 * (and on a kernel without getrandom()).
 */
#if (defined __APPLE__ || defined __FreeBSD__ || defined __OpenBSD__       \
     || defined __NetBSD__ || defined __DragonFly__)
#define SG_BODY_ARC4RANDOM  1
#elif (defined __linux__ && defined __has_include)
#if (__has_include(<sys/random.h>))
#define SG_BODY_GETRANDOM   1
#include <sys/random.h>
#endif
#endif

#ifndef O_CLOEXEC
#define O_CLOEXEC  0
#endif


/* a spare validator is out of bounds to AddressSanitizer until reused */
#if (defined __SANITIZE_ADDRESS__)
#define SG_BODY_ASAN  1
#elif (defined __has_feature)
#if (__has_feature(address_sanitizer))
#define SG_BODY_ASAN  1
#endif
#endif

#ifdef SG_BODY_ASAN
#include <sanitizer/asan_interface.h>
#define sg_body_poison(p, n)    ASAN_POISON_MEMORY_REGION(p, n)
#define sg_body_unpoison(p, n)  ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define sg_body_poison(p, n)
#define sg_body_unpoison(p, n)
#endif


/* strings are scanned 16 bytes at a time where SSE2 is there (x86-64) */
#if (defined __SSE2__ && defined __GNUC__)
#define SG_BODY_SSE2  1
#include <emmintrin.h>
#else
#define SG_BODY_SSE2  0
#endif


/*
 * The failures, out of the way of the code that reads a valid body: the
 * compiler moves the branches that call them out of line, and the hot
 * code takes fewer instruction-cache lines (callgrind's cache simulation:
 * about 55 fewer misses a request).
 */
#if (defined __GNUC__)
#define sg_body_cold  __attribute__((cold))
#else
#define sg_body_cold
#endif


#define SG_BODY_MAX_DEPTH  2048     /* jansson's JSON_PARSER_MAX_DEPTH */

/* an object's names are compared in turn up to this many, then hashed */
#define SG_BODY_LINEAR     16

/* what sg_body_name_slot() finds besides a free slot */
#define SG_BODY_NO_SLOT    ((size_t) -1)
#define SG_BODY_FAR_SLOT   ((size_t) -2)

/* a name record's slot when its object is not hashed */
#define SG_BODY_UNHASHED   0xffff

/* a probe of more groups with the fast hash switches to SipHash */
#define SG_BODY_PROBES_MAX  4

/* the slots of the hash table: it is at most half full */
#define SG_BODY_TABLE_SIZE  (2 * SG_BODY_NAMES_MAX)

/* the slots of the hash table are probed in groups of 8 */
#define SG_BODY_GROUP      8
#define SG_BODY_BYTES      0x0101010101010101ULL

/* the largest exponent kept while reading a number: far beyond a double */
#define SG_BODY_EXP_MAX    1000000000000000LL

/*
 * The arena holds the names of the open objects (SG_BODY_NAMES_BYTES at
 * most) and, above them, the value being read of a member whose text
 * matters, kept up to SG_BODY_WRITE_KEY_KEPT bytes (longer, no such value
 * is valid).  Offsets in it, name indexes and the ends of the kept
 * failures of names are 16-bit.
 *
 * What the limits allow at most, against SG_BODY_MEMORY_MAX: this
 * structure (1 KB), the levels (12 KB at jansson's depth), the arena
 * (17 KB), the name records (6 KB), the hash table (6 KB), the write_key
 * (1 KB), the failures of member names (3 KB) and the message (3 KB); and
 * while one of them grows, its old storage (8 KB at most, the arena's).
 * 57 KB in all; t/unit/test_body.c measures a body near the worst.
 */
#define SG_BODY_ARENA_MAX  (SG_BODY_NAMES_BYTES + SG_BODY_WRITE_KEY_KEPT)

/* the longest failure of a member name, the kept texts of all, a message */
#define SG_BODY_NAME_FAILURE_MAX                                              \
    (sizeof("properties.") - 1 + SG_BODY_NAME_MAX + sizeof("...") - 1         \
     + sizeof(" differs from properties.destination_region only in letter "  \
              "case") - 1)

#define SG_BODY_NAME_FAILURES_MAX                                             \
    (SG_BODY_LISTED_MAX * SG_BODY_NAME_FAILURE_MAX)

#define SG_BODY_MESSAGE_MAX                                                   \
    (SG_BODY_LISTED_MAX * (SG_BODY_NAME_FAILURE_MAX + sizeof(", ") - 1)      \
     + sizeof("and  more failures") + 20)

typedef char  sg_body_16_bits[(SG_BODY_ARENA_MAX <= 0xffff
                               && SG_BODY_TABLE_SIZE < SG_BODY_UNHASHED
                               && SG_BODY_NAME_FAILURES_MAX <= 0xffff)
                              ? 1 : -1];


/* what the lexer is in the middle of */
enum {
    sw_space = 0,           /* between tokens */
    sw_string,              /* in a string */
    sw_escape,              /* after a backslash */
    sw_hex,                 /* in the four digits of \u */
    sw_string_utf8,         /* in a multi-byte character of a string */
    sw_error_utf8,          /* a multi-byte character places the error */
    sw_minus,               /* after the '-' of a number */
    sw_zero,                /* after a leading 0 */
    sw_int,                 /* in the integer digits */
    sw_dot,                 /* after '.' */
    sw_frac,                /* in the fraction digits */
    sw_exp,                 /* after 'e' */
    sw_exp_sign,            /* after the sign of the exponent */
    sw_exp_digits,          /* in the exponent digits */
    sw_word,                /* in a bare word: true, false, null or junk */
    sw_done                 /* the verdict is known */
};

/* what the parser takes next */
enum {
    ex_document = 0,        /* the top-level value: '{' or '[' */
    ex_first_key,           /* after '{': a name or '}' */
    ex_key,                 /* after ',' in an object: a name */
    ex_colon,
    ex_value,               /* a member value, or an element after ',' */
    ex_first_item,          /* after '[': a value or ']' */
    ex_next,                /* ',' or the end of the container */
    ex_end                  /* nothing but white space */
};

/* what a value is to the schema; also the context of a container */
enum {
    sg_role_other = 0,
    sg_role_unknown,        /* a member the schema does not name */
    sg_role_top,
    sg_role_destination,
    sg_role_filters,
    sg_role_email_events,
    sg_role_event,          /* an element of filters.email_events */
    sg_role_properties,
    sg_role_write_key,
    sg_role_region,
    sg_role_label
};

enum {
    sg_type_string = 0,
    sg_type_object,
    sg_type_array,
    sg_type_scalar          /* number, true, false, null */
};

/* the facts about a member */
enum {
    sg_missing = 0,
    sg_good,
    sg_wrong,               /* wrong type or value */
    sg_wrong_length         /* write_key: a string of the wrong length */
};


typedef struct {
    unsigned char  *data;
    size_t          len;
    size_t          size;
    size_t          max;        /* the most it grows to */
    unsigned char  *fixed;      /* storage inside sg_body_t, or NULL */
    size_t          fixed_size;
} sg_body_buf_t;

/*
 * An open container.  An object's names are the records from keys on; at
 * its end the arena ends where the name before them ends.
 */
typedef struct {
    uint16_t        keys;       /* its first name record */
    unsigned char   array;
    unsigned char   ctx;        /* sg_role_* */
    unsigned char   hashed;     /* its names are in the hash table */
} sg_body_level_t;

typedef struct {
    uint16_t        off;        /* decoded name in the arena */
    uint16_t        len;
    uint16_t        slot;       /* in the hash table, or SG_BODY_UNHASHED */
} sg_body_key_t;


struct sg_body_s {
    unsigned            state;
    unsigned            expect;
    int                 status;
    unsigned            rules;          /* SG_BODY_RULE_* broken */
    unsigned            name_rules;     /* those of the names, so far */
    unsigned            create:1;
    unsigned            strict:1;
    unsigned            finished:1;
    unsigned            siphash:1;      /* names collided: hashed safely */

    /* the current token */
    unsigned            bad:1;          /* not expected here: fails at end */
    unsigned            key:1;          /* the string is a member name */
    unsigned            sink:1;         /* its decoded text is kept */
    unsigned            over:1;         /* a name past SG_BODY_NAMES_BYTES */
    unsigned            str_err:1;      /* lone surrogate or \u0000 */
    unsigned            after_hi:1;     /* a high surrogate was decoded */
    unsigned            neg:1;
    unsigned            exp_neg:1;
    unsigned            role;           /* of the value being read */
    unsigned            member;         /* role of the next value */
    unsigned            comma;          /* what a ',' leads to */

    size_t              base;           /* offset of the byte fed next */
    size_t              drift;          /* NUL bytes jansson loses */

    size_t              str_start;      /* decoded string in the arena */
    size_t              sink_end;       /* where its text may reach */
    uint32_t            hex;
    uint32_t            hi;
    unsigned            hex_n;

    unsigned            u_need;         /* continuation bytes to come */
    unsigned char       u_lo;           /* range of the next one */
    unsigned char       u_hi;
    size_t              u_lead;         /* offset of the first byte */
    size_t              err_pos;        /* error when well-formed */

    const char         *word;           /* literal a bare word may be */
    size_t              word_n;

    uint64_t            ival;           /* the integer, up to 19 digits */
    size_t              int_digits;
    size_t              zeros;          /* leading zeros of the fraction */
    size_t              sig;            /* significant digits */
    int                 cmp;            /* them against sg_body_dbl_limit */
    int64_t             exp;

    /* open containers */
    sg_body_level_t    *levels;
    size_t              depth;
    size_t              levels_size;

    /* the decoded names of the open objects */
    sg_body_buf_t       arena;
    sg_body_key_t      *keys;
    size_t              nkeys;
    size_t              keys_size;

    /* the hash table of the names of hashed objects */
    unsigned char      *tags;           /* of the slots, 0: free */
    uint16_t           *slot_keys;      /* the name records in the slots */
    size_t              probes_max;     /* before SipHash is used */

    /* bytes allocated, this structure included, and the most at once */
    size_t              mem;
    size_t              mem_peak;

    /* facts */
    unsigned char       top_array;
    unsigned char       destination;
    unsigned char       filters;
    unsigned char       email_events;
    unsigned char       properties;
    unsigned char       write_key;
    unsigned char       region;
    unsigned char       label;
    size_t              events_n;       /* elements of email_events */

    sg_body_buf_t       wkey;           /* properties.write_key, decoded */

    /* failures of email_events elements: the first ones by index */
    size_t              bad_events_n;
    size_t              bad_events[SG_BODY_LISTED_MAX];

    /*
     * failures of member names (shadowing, and unknown in strict mode):
     * the first ones' texts, one after another
     */
    size_t              name_fails_n;
    uint16_t            name_fails_end[SG_BODY_LISTED_MAX];
    sg_body_buf_t       name_fails;

    /* the message, its failures listed and not */
    sg_body_buf_t       msg;
    size_t              listed;
    size_t              unlisted;

    /*
     * Room for what a real Integrations body keeps: 3 levels open, 7
     * names and their text with a write_key's; more is allocated.  The
     * structure stays within 1 KB, which the C library's allocator
     * serves from a per-thread cache (glibc's tcache: up to 1032 bytes)
     * rather than by searching its bins, as it did at 2 KB (about 500
     * instructions a request for the malloc() and the free()).
     */
    sg_body_level_t     levels_fixed[8];
    sg_body_key_t       keys_fixed[16];
    unsigned char       arena_fixed[112];
    unsigned char       wkey_fixed[64];
};

typedef char  sg_body_1_kb[sizeof(struct sg_body_s) <= 1024 ? 1 : -1];


static int sg_body_scan(sg_body_t *v, const unsigned char *start,
    const unsigned char *end);
static const unsigned char *sg_body_tokens(sg_body_t *v,
    const unsigned char *start, const unsigned char *p,
    const unsigned char *end);
static const unsigned char *sg_body_whole_events(sg_body_t *v,
    const unsigned char *p, const unsigned char *end);
static const unsigned char *sg_body_whole_scalar(unsigned char c,
    const unsigned char *p, const unsigned char *end);
static const unsigned char *sg_body_whole_word(const unsigned char *p,
    const unsigned char *end, const char *rest, size_t n);
static int sg_body_open(sg_body_t *v, unsigned array, size_t pos);
static int sg_body_close(sg_body_t *v, unsigned array, size_t pos);
static void sg_body_inside(sg_body_t *v);
static int sg_body_string(sg_body_t *v, const unsigned char *s, size_t len,
    size_t pos);
static int sg_body_scalar(sg_body_t *v, size_t pos);
static void sg_body_string_start(sg_body_t *v);
static int sg_body_string_end(sg_body_t *v, size_t pos);
static int sg_body_code_point(sg_body_t *v);
static void sg_body_scalar_start(sg_body_t *v);
static int sg_body_scalar_end(sg_body_t *v, size_t pos);
static int sg_body_real_overflows(sg_body_t *v);
static int sg_body_name(sg_body_t *v, size_t pos);
static int sg_body_name_among(sg_body_t *v, sg_body_level_t *lvl,
    const unsigned char *name, size_t len);
static size_t sg_body_name_slot(sg_body_t *v, sg_body_level_t *lvl,
    const unsigned char *name, size_t len, uint32_t hash);
static int sg_body_keep_name(sg_body_t *v, uint32_t hash, size_t slot);
static sg_body_cold int sg_body_name_failure(sg_body_t *v, unsigned ctx,
    const unsigned char *name, size_t len, const char *shadowed);
static sg_body_cold int sg_body_fail_duplicate(sg_body_t *v,
    const unsigned char *name, size_t len, size_t pos);
static size_t sg_body_put_name(char *dst, const unsigned char *name,
    size_t len);
static int sg_body_hash_names(sg_body_t *v, sg_body_level_t *lvl);
static void sg_body_table_siphash(sg_body_t *v);
static void sg_body_table_add(sg_body_t *v, size_t i);
static size_t sg_body_table_free(sg_body_t *v, uint32_t hash);
static void sg_body_table_set(sg_body_t *v, size_t slot, size_t i,
    uint32_t hash);
static uint64_t sg_body_group(const unsigned char *p);
static uint64_t sg_body_zero_bytes(uint64_t w);
static size_t sg_body_first_byte(uint64_t mask);
static size_t sg_body_code_points(const unsigned char *s, size_t len);
static unsigned sg_body_member_role(unsigned ctx, const unsigned char *name,
    size_t len);
static const char *sg_body_shadowed(unsigned ctx, const unsigned char *name,
    size_t len);
static int sg_body_folds_to(const unsigned char *name, size_t len,
    const char *lit);
static int sg_body_fact(sg_body_t *v, unsigned role, unsigned type,
    const unsigned char *s, size_t len);
static int sg_body_is_event(const unsigned char *s, size_t len);
static size_t sg_body_event_prefix(const unsigned char *s, size_t len);
static void sg_body_event(sg_body_t *v, int valid);
static int sg_body_verdict(sg_body_t *v);
static int sg_body_tell_events(sg_body_t *v);
static int sg_body_tell_name_failures(sg_body_t *v);
static int sg_body_tell_unlisted(sg_body_t *v);
static int sg_body_part(sg_body_t *v, const char *text, size_t len);
static int sg_body_utf8_start(sg_body_t *v, unsigned char c, size_t lead);
static int sg_body_utf8_next(sg_body_t *v, unsigned char c);
static const unsigned char *sg_body_plain_run(const unsigned char *p,
    const unsigned char *end);
static const unsigned char *sg_body_plain_ascii(const unsigned char *p,
    const unsigned char *end);
#if !(SG_BODY_SSE2)
static int sg_body_special(const unsigned char *p);
#endif
static size_t sg_body_utf8_whole(const unsigned char *p,
    const unsigned char *end);
static sg_body_cold int sg_body_fail(sg_body_t *v, size_t pos);
static sg_body_cold int sg_body_fail_utf8(sg_body_t *v, unsigned char c,
    size_t lead, size_t pos);
static sg_body_cold int sg_body_fail_limit(sg_body_t *v, unsigned bytes,
    size_t pos);
static sg_body_cold int sg_body_fail_text(sg_body_t *v, const char *text,
    size_t len);
static sg_body_cold int sg_body_nomem(sg_body_t *v);
static int sg_body_sink(sg_body_t *v, const void *data, size_t len);
static int sg_body_add(sg_body_t *v, sg_body_buf_t *b, const void *data,
    size_t len);
static int sg_body_say(sg_body_t *v, sg_body_buf_t *b, const char *text,
    size_t len);
static int sg_body_grow(sg_body_t *v, sg_body_buf_t *b, size_t need);
static void sg_body_buf_init(sg_body_buf_t *b, unsigned char *fixed,
    size_t size, size_t max);
static void sg_body_buf_free(sg_body_t *v, sg_body_buf_t *b);
static size_t sg_body_whole_chars(const unsigned char *s, size_t len);
static void sg_body_release(sg_body_t *v);
static void *sg_body_alloc(sg_body_t *v, size_t size);
static void sg_body_free(sg_body_t *v, void *p, size_t size);
static uint32_t sg_body_hash(sg_body_t *v, const unsigned char *p,
    size_t len);
static uint32_t sg_body_fast_hash(const unsigned char *p, size_t len);
static uint64_t sg_body_mix(uint64_t x);
static uint64_t sg_body_tail(const unsigned char *p, size_t n);
static uint32_t sg_body_siphash(const unsigned char *p, size_t len);
static int sg_body_random(unsigned char *buf, size_t len);
#if !(SG_BODY_ARC4RANDOM)
static int sg_body_fill(int fd, unsigned char *buf, size_t len);
#endif


/* bytes that stand for themselves inside a string */
static const unsigned char  sg_body_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

/*
 * 2^1024 - 2^970, the smallest decimal that strtod() rounds to infinity:
 * halfway between DBL_MAX and 2^1024, where rounding to even goes up.
 */
static const char  sg_body_dbl_limit[] =
    "1797693134862315807937289714053034150799341327100378269361737789804449"
    "6829276475094664901797758720709633028641669288791094655554785194040263"
    "0657488671505820681908902000708383676273854845817711531764475730270069"
    "8555713669596228429148198608349364752927190741684443655107043427115596"
    "99508093042880177904174497792";

#define SG_BODY_DBL_DIGITS  (sizeof(sg_body_dbl_limit) - 1)
#define SG_BODY_DBL_EXP     308          /* of the first digit */

static uint64_t  sg_body_k0;
static uint64_t  sg_body_k1;
static int       sg_body_seeded;

/*
 * Validators destroyed, kept for the next ones.  Over HTTP/2 a connection
 * has more requests in flight than the C library's per-thread cache keeps
 * blocks of one size (glibc: 7), and every other validator came from
 * malloc()'s bins.  One list a process, without a lock: an nginx worker
 * makes and destroys validators in its event loop only (thread pools
 * never see them), and the command-line validator has one thread.
 */
#define SG_BODY_SPARES_MAX  64

static sg_body_t  *sg_body_spares[SG_BODY_SPARES_MAX];
static size_t      sg_body_spares_n;


#define sg_body_is(s, len, lit)                                               \
    ((len) == sizeof(lit) - 1 && memcmp(s, lit, sizeof(lit) - 1) == 0)

/* the tag of a name's hash in the hash table: never 0, which is free */
#define sg_body_tag(hash)    ((unsigned char) (0x80 | ((hash) >> 25)))

#define sg_body_is_space(c)                                                   \
    ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')

#define sg_body_is_alpha(c)  ((unsigned char) (((c) | 0x20) - 'a') < 26)

/* the text of the string just read, when kept */
#define sg_body_text(v)       ((v)->arena.data + (v)->str_start)
#define sg_body_text_len(v)   ((v)->arena.len - (v)->str_start)


sg_body_t *
sg_body_create(sg_body_schema_t schema, unsigned flags)
{
    sg_body_t  *v;

    if (!sg_body_seeded) {
        /* sg_body_init() first: no hash without a random key */
        return NULL;
    }

    if (sg_body_spares_n) {
        v = sg_body_spares[--sg_body_spares_n];
        sg_body_unpoison(v, sizeof(sg_body_t));

    } else {
        v = malloc(sizeof(sg_body_t));
        if (v == NULL) {
            return NULL;
        }
    }

    /* only the head: the inline storage is written before it is read */
    memset(v, 0, offsetof(sg_body_t, levels_fixed));

    v->create = (schema == SG_BODY_CREATE);
    v->strict = (flags & SG_BODY_STRICT) ? 1 : 0;
    v->probes_max = (flags & SG_BODY_SIPHASH) ? 0 : SG_BODY_PROBES_MAX;
    v->member = sg_role_top;
    v->mem = sizeof(sg_body_t);
    v->mem_peak = v->mem;

    v->levels = v->levels_fixed;
    v->levels_size = sizeof(v->levels_fixed) / sizeof(v->levels_fixed[0]);
    v->keys = v->keys_fixed;
    v->keys_size = sizeof(v->keys_fixed) / sizeof(v->keys_fixed[0]);

    sg_body_buf_init(&v->arena, v->arena_fixed, sizeof(v->arena_fixed),
                     SG_BODY_ARENA_MAX);
    sg_body_buf_init(&v->wkey, v->wkey_fixed, sizeof(v->wkey_fixed),
                     SG_BODY_WRITE_KEY_KEPT);
    sg_body_buf_init(&v->msg, NULL, 0, SG_BODY_MESSAGE_MAX);
    sg_body_buf_init(&v->name_fails, NULL, 0, SG_BODY_NAME_FAILURES_MAX);

    return v;
}


int
sg_body_feed(sg_body_t *v, const unsigned char *data, size_t len)
{
    if (v->status != SG_BODY_OK || v->finished || len == 0) {
        return v->status;
    }

    (void) sg_body_scan(v, data, data + len);

    v->base += len;

    return v->status;
}


int
sg_body_finish(sg_body_t *v)
{
    if (v->status != SG_BODY_OK || v->finished) {
        return v->status;
    }

    v->finished = 1;

    if (v->base == 0) {
        v->rules = SG_BODY_RULE_EMPTY;
        return sg_body_fail_text(v, "request body is empty",
                                 sizeof("request body is empty") - 1);
    }

    switch (v->state) {

    case sw_string_utf8:
    case sw_error_utf8:
        /* jansson reads a missing byte as 0xff */
        return sg_body_fail(v, v->u_lead);

    case sw_space:
        if (v->expect == ex_end) {
            return sg_body_verdict(v);
        }

        /* fall through */

    default:
        /* a token the end cuts short, or the end comes too soon */
        return sg_body_fail(v, v->base);
    }
}


const char *
sg_body_message(const sg_body_t *v, size_t *len)
{
    if (v->status != SG_BODY_INVALID) {
        *len = 0;
        return NULL;
    }

    *len = v->msg.len;

    return (const char *) v->msg.data;
}


unsigned
sg_body_rules(const sg_body_t *v)
{
    return (v->status == SG_BODY_INVALID) ? v->rules : 0;
}


const unsigned char *
sg_body_write_key(const sg_body_t *v, size_t *len)
{
    if (v->write_key != sg_good && v->write_key != sg_wrong_length) {
        *len = 0;
        return NULL;
    }

    *len = v->wkey.len;

    return v->wkey.data;
}


size_t
sg_body_memory(const sg_body_t *v)
{
    return v->mem_peak;
}


void
sg_body_destroy(sg_body_t *v)
{
    if (v == NULL) {
        return;
    }

    sg_body_release(v);

    sg_body_buf_free(v, &v->wkey);
    sg_body_buf_free(v, &v->msg);

    if (sg_body_spares_n == SG_BODY_SPARES_MAX) {
        free(v);
        return;
    }

    sg_body_poison(v, sizeof(sg_body_t));
    sg_body_spares[sg_body_spares_n++] = v;
}


void
sg_body_free_spares(void)
{
    sg_body_t  *v;

    while (sg_body_spares_n) {
        v = sg_body_spares[--sg_body_spares_n];
        sg_body_unpoison(v, sizeof(sg_body_t));
        free(v);
    }
}


/*
 * The lexer.  Each state takes what it can of the buffer at once; a token
 * that continues into the next buffer leaves its state behind.
 */
static int
sg_body_scan(sg_body_t *v, const unsigned char *start,
    const unsigned char *end)
{
    unsigned              d;
    unsigned char         c;
    const unsigned char  *p, *q;

#define sg_off(p)  (v->base + (size_t) ((p) - start))

    p = start;

    while (p < end) {

        switch (v->state) {

        case sw_space:
            p = sg_body_tokens(v, start, p, end);

            if (p == NULL) {
                return v->status;
            }

            continue;

        case sw_string:
            q = p;

            if (!v->after_hi) {
                p = sg_body_plain_run(p, end);

                if (v->sink && sg_body_sink(v, q, p - q) != 0) {
                    return sg_body_nomem(v);
                }

                if (p == end) {
                    return SG_BODY_OK;
                }
            }

            c = *p++;

            if (v->after_hi && c != '\\') {
                /* a high surrogate not followed by \u */
                v->after_hi = 0;
                v->str_err = 1;
                v->sink = 0;
            }

            if (c == '"') {
                if (sg_body_string_end(v, sg_off(p)) != SG_BODY_OK) {
                    return v->status;
                }
                continue;
            }

            if (c == '\\') {
                v->state = sw_escape;
                continue;
            }

            if (c < 0x20) {
                /* jansson puts the control byte back */
                return sg_body_fail(v, sg_off(p) - 1);
            }

            if (c >= 0x80) {
                /* a character that goes on in the next buffer, or bad */
                if (sg_body_utf8_start(v, c, sg_off(p) - 1) != 0) {
                    return sg_body_fail(v, sg_off(p) - 1);
                }

                v->state = sw_string_utf8;
            }

            if (v->sink && sg_body_sink(v, &c, 1) != 0) {
                return sg_body_nomem(v);
            }

            continue;

        case sw_string_utf8:
            c = *p++;

            if (sg_body_utf8_next(v, c) != 0) {
                return sg_body_fail(v, v->u_lead);
            }

            if (v->u_need == 0) {
                v->state = sw_string;
            }

            if (v->sink && sg_body_sink(v, &c, 1) != 0) {
                return sg_body_nomem(v);
            }

            continue;

        case sw_error_utf8:
            c = *p++;

            if (sg_body_utf8_next(v, c) != 0) {
                return sg_body_fail(v, v->u_lead);
            }

            if (v->u_need == 0) {
                return sg_body_fail(v, v->err_pos);
            }

            continue;

        case sw_escape:
            c = *p++;

            if (v->after_hi && c != 'u') {
                v->after_hi = 0;
                v->str_err = 1;
                v->sink = 0;
            }

            switch (c) {
            case '"':
            case '\\':
            case '/':
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;

            case 'u':
                v->hex = 0;
                v->hex_n = 0;
                v->state = sw_hex;
                continue;

            default:
                /* the error follows the byte jansson read */
                if (sg_body_fail_utf8(v, c, sg_off(p) - 1, sg_off(p))
                    != SG_BODY_OK)
                {
                    return v->status;
                }
                continue;
            }

            v->state = sw_string;

            if (v->sink && sg_body_sink(v, &c, 1) != 0) {
                return sg_body_nomem(v);
            }

            continue;

        case sw_hex:
            c = *p++;

            if (c >= '0' && c <= '9') {
                d = c - '0';

            } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
                d = (c | 0x20) - 'a' + 10;

            } else {
                if (sg_body_fail_utf8(v, c, sg_off(p) - 1, sg_off(p))
                    != SG_BODY_OK)
                {
                    return v->status;
                }
                continue;
            }

            v->hex = (v->hex << 4) | d;

            if (++v->hex_n == 4) {
                v->state = sw_string;

                if (sg_body_code_point(v) != 0) {
                    return sg_body_nomem(v);
                }
            }

            continue;

        case sw_minus:
            c = *p;

            if (c == '0') {
                v->state = sw_zero;
                p++;
                continue;
            }

            if (c >= '1' && c <= '9') {
                v->ival = c - '0';
                v->int_digits = 1;
                v->cmp = (int) c - sg_body_dbl_limit[0];
                v->sig = 1;
                v->state = sw_int;
                p++;
                continue;
            }

            return sg_body_fail(v, sg_off(p));

        case sw_zero:
            c = *p;

            if (c >= '0' && c <= '9') {
                return sg_body_fail(v, sg_off(p));
            }

            goto int_end;

        case sw_int:
            while ((c = *p) >= '0' && c <= '9') {
                if (++v->int_digits <= 19) {
                    v->ival = v->ival * 10 + (c - '0');
                }

                if (v->cmp == 0) {
                    v->cmp = (v->sig < SG_BODY_DBL_DIGITS)
                             ? (int) c - sg_body_dbl_limit[v->sig]
                             : (c != '0');
                }

                v->sig++;

                if (++p == end) {
                    return SG_BODY_OK;
                }
            }

        int_end:

            if (c == '.') {
                v->state = sw_dot;
                p++;
                continue;
            }

            if (c == 'e' || c == 'E') {
                v->state = sw_exp;
                p++;
                continue;
            }

            goto scalar_end;

        case sw_dot:
            c = *p;

            if (c < '0' || c > '9') {
                return sg_body_fail(v, sg_off(p));
            }

            v->state = sw_frac;

            /* fall through */

        case sw_frac:
            while ((c = *p) >= '0' && c <= '9') {
                if (v->sig == 0 && c == '0') {
                    v->zeros++;

                } else {
                    if (v->cmp == 0) {
                        v->cmp = (v->sig < SG_BODY_DBL_DIGITS)
                                 ? (int) c - sg_body_dbl_limit[v->sig]
                                 : (c != '0');
                    }

                    v->sig++;
                }

                if (++p == end) {
                    return SG_BODY_OK;
                }
            }

            if (c == 'e' || c == 'E') {
                v->state = sw_exp;
                p++;
                continue;
            }

            goto scalar_end;

        case sw_exp:
            c = *p;

            if (c == '+' || c == '-') {
                v->exp_neg = (c == '-');
                v->state = sw_exp_sign;
                p++;
                continue;
            }

            /* fall through */

        case sw_exp_sign:
            c = *p;

            if (c < '0' || c > '9') {
                return sg_body_fail(v, sg_off(p));
            }

            v->state = sw_exp_digits;

            /* fall through */

        case sw_exp_digits:
            while ((c = *p) >= '0' && c <= '9') {
                if (v->exp < SG_BODY_EXP_MAX) {
                    v->exp = v->exp * 10 + (c - '0');
                }

                if (++p == end) {
                    return SG_BODY_OK;
                }
            }

            goto scalar_end;

        case sw_word:
            while (sg_body_is_alpha(c = *p)) {
                if (v->word && v->word[v->word_n] == (char) c) {
                    v->word_n++;

                } else {
                    v->word = NULL;
                }

                if (++p == end) {
                    return SG_BODY_OK;
                }
            }

        scalar_end:

            /* the token ends before p, the byte jansson puts back */
            if (sg_body_scalar_end(v, sg_off(p)) != SG_BODY_OK) {
                return v->status;
            }

            if (*p == '\0') {
                v->drift++;
                p++;
            }

            continue;

        default: /* sw_done */
            return v->status;
        }
    }

    return SG_BODY_OK;

#undef sg_off
}


/*
 * Between tokens.  A token that lies whole in the buffer and needs no
 * closer look (a string without escapes, an integer that fits, a
 * literal) is taken at once; any other is left to the lexer's states,
 * where it may go on into the next buffer.  Returns where it stopped,
 * or NULL when the verdict is known.
 */
static const unsigned char *
sg_body_tokens(sg_body_t *v, const unsigned char *start,
    const unsigned char *p, const unsigned char *end)
{
    size_t                n;
    unsigned char         c;
    const unsigned char  *q;

#define sg_off(p)  (v->base + (size_t) ((p) - start))

    while (p < end) {
        c = *p++;

        switch (c) {

        case ' ':
        case '\n':
        case '\r':
        case '\t':
            continue;

        case '"':
            if (v->member == sg_role_event) {
                q = sg_body_whole_events(v, p, end);

                if (q != NULL) {
                    p = q;
                    continue;
                }
            }

            q = sg_body_plain_run(p, end);

            if (q < end && *q == '"') {
                if (sg_body_string(v, p, q - p, sg_off(q + 1)) != SG_BODY_OK) {
                    return NULL;
                }

                p = q + 1;
                continue;
            }

            /* escapes, odd bytes or the end of the buffer: byte by byte */
            sg_body_string_start(v);

            if (v->sink && sg_body_sink(v, p, q - p) != 0) {
                sg_body_nomem(v);
                return NULL;
            }

            v->state = sw_string;
            return q;

        case ',':
            if (v->expect != ex_next) {
                sg_body_fail(v, sg_off(p));
                return NULL;
            }

            v->expect = v->comma;
            continue;

        case ':':
            if (v->expect != ex_colon) {
                sg_body_fail(v, sg_off(p));
                return NULL;
            }

            v->expect = ex_value;
            continue;

        case '{':
        case '[':
            if (sg_body_open(v, c == '[', sg_off(p)) != SG_BODY_OK) {
                return NULL;
            }
            continue;

        case '}':
        case ']':
            if (sg_body_close(v, c == ']', sg_off(p)) != SG_BODY_OK) {
                return NULL;
            }
            continue;

        default:
            break;
        }

        q = sg_body_whole_scalar(c, p, end);

        if (q != NULL) {
            if (sg_body_scalar(v, sg_off(q)) != SG_BODY_OK) {
                return NULL;
            }

            p = q;

            if (*p == '\0') {
                /* see sw_word */
                v->drift++;
                p++;
            }

            continue;
        }

        if (c == '-') {
            sg_body_scalar_start(v);
            v->neg = 1;
            v->state = sw_minus;
            return p;
        }

        if (c == '0') {
            sg_body_scalar_start(v);
            v->state = sw_zero;
            return p;
        }

        if (c >= '1' && c <= '9') {
            sg_body_scalar_start(v);
            v->ival = c - '0';
            v->int_digits = 1;
            v->cmp = (int) c - sg_body_dbl_limit[0];
            v->sig = 1;
            v->state = sw_int;
            return p;
        }

        if (sg_body_is_alpha(c)) {
            sg_body_scalar_start(v);
            v->word = (c == 't') ? "true"
                      : (c == 'f') ? "false"
                      : (c == 'n') ? "null" : NULL;
            v->word_n = 1;
            v->state = sw_word;
            return p;
        }

        if (c >= 0x80) {
            /* a stray character: the error follows it whole */
            n = sg_off(p) - 1;

            if (sg_body_utf8_start(v, c, n) != 0) {
                sg_body_fail(v, n);
                return NULL;
            }

            v->err_pos = n + 1 + v->u_need;
            v->state = sw_error_utf8;
            return p;
        }

        /* any other byte, NUL and control bytes included */
        sg_body_fail(v, sg_off(p));
        return NULL;
    }

    return p;

#undef sg_off
}


/*
 * Elements of filters.email_events that are email events written as they
 * are, one after the other ("open", "click"), from the one whose opening
 * quote ends before p: taken at once, up to the closing quote of the last
 * of them, which is returned; else NULL.  An event's length comes from
 * which event it is, not from a search for its closing quote, so the
 * bytes after it are read before the comparisons are done.
 */
static const unsigned char *
sg_body_whole_events(sg_body_t *v, const unsigned char *p,
    const unsigned char *end)
{
    size_t                n;
    const unsigned char  *q, *last;

    if (v->expect != ex_value && v->expect != ex_first_item) {
        return NULL;
    }

    last = NULL;

    for ( ;; ) {
        n = sg_body_event_prefix(p, end - p);

        if (n == 0 || (size_t) (end - p) <= n || p[n] != '"') {
            break;
        }

        sg_body_event(v, 1);
        last = p + n + 1;

        if (last == end || *last != ',') {
            break;
        }

        for (q = last + 1; q < end && sg_body_is_space(*q); q++) {
            /* void */
        }

        if (q == end || *q != '"') {
            break;
        }

        p = q + 1;
    }

    if (last != NULL) {
        v->expect = ex_next;
    }

    return last;
}


/*
 * The end of a number or literal that starts with c, before p, when it
 * lies whole before end and needs no closer look: an integer of at most
 * 18 digits, which fits any json_int_t, or true, false or null.  Else
 * NULL.
 */
static const unsigned char *
sg_body_whole_scalar(unsigned char c, const unsigned char *p,
    const unsigned char *end)
{
    const unsigned char  *q;

    switch (c) {

    case '-':
        if (p == end || *p < '1' || *p > '9') {
            return NULL;
        }

        p++;
        break;

    case '1': case '2': case '3': case '4': case '5':
    case '6': case '7': case '8': case '9':
        break;

    case 't':
        return sg_body_whole_word(p, end, "rue", 3);

    case 'f':
        return sg_body_whole_word(p, end, "alse", 4);

    case 'n':
        return sg_body_whole_word(p, end, "ull", 3);

    default:
        return NULL;
    }

    for (q = p; q < end && (unsigned char) (*q - '0') < 10; q++) {
        /* void */
    }

    if (q == end || q - p > 17 || *q == '.' || *q == 'e' || *q == 'E') {
        return NULL;
    }

    return q;
}


/* The rest of a literal, whole before end and not followed by a letter. */
static const unsigned char *
sg_body_whole_word(const unsigned char *p, const unsigned char *end,
    const char *rest, size_t n)
{
    if ((size_t) (end - p) <= n || memcmp(p, rest, n) != 0
        || sg_body_is_alpha(p[n]))
    {
        return NULL;
    }

    return p + n;
}


/* '{' or '[' ends before pos */
static int
sg_body_open(sg_body_t *v, unsigned array, size_t pos)
{
    unsigned          role, ctx;
    sg_body_level_t  *lvl;

    if (v->expect != ex_document && v->expect != ex_value
        && v->expect != ex_first_item)
    {
        return sg_body_fail(v, pos);
    }

    if (v->depth == SG_BODY_MAX_DEPTH) {
        return sg_body_fail(v, pos);
    }

    role = v->member;
    ctx = sg_role_other;

    if (role == sg_role_top) {
        ctx = array ? sg_role_other : sg_role_top;
        v->top_array = array;

    } else if ((role == sg_role_filters || role == sg_role_properties)
               && !array)
    {
        ctx = role;

    } else if (role == sg_role_email_events && array) {
        ctx = role;
    }

    if (sg_body_fact(v, role, array ? sg_type_array : sg_type_object, NULL, 0)
        != 0)
    {
        return sg_body_nomem(v);
    }

    if (v->depth == v->levels_size) {
        /* deeper than the inline levels: room for jansson's depth at once */
        lvl = sg_body_alloc(v, SG_BODY_MAX_DEPTH * sizeof(sg_body_level_t));
        if (lvl == NULL) {
            return sg_body_nomem(v);
        }

        memcpy(lvl, v->levels, v->depth * sizeof(sg_body_level_t));

        v->levels = lvl;
        v->levels_size = SG_BODY_MAX_DEPTH;
    }

    lvl = &v->levels[v->depth++];

    lvl->keys = (uint16_t) v->nkeys;
    lvl->array = array;
    lvl->ctx = ctx;
    lvl->hashed = 0;

    v->expect = array ? ex_first_item : ex_first_key;

    sg_body_inside(v);

    return SG_BODY_OK;
}


/* '}' or ']' ends before pos */
static int
sg_body_close(sg_body_t *v, unsigned array, size_t pos)
{
    size_t            i;
    sg_body_key_t    *k;
    sg_body_level_t  *lvl;

    if (v->expect != (array ? ex_first_item : ex_first_key)
        && (v->expect != ex_next || v->levels[v->depth - 1].array != array))
    {
        return sg_body_fail(v, pos);
    }

    lvl = &v->levels[--v->depth];

    if (lvl->hashed) {
        /* last in, first out: clearing the slots undoes the insertions */
        for (i = v->nkeys; i-- > lvl->keys; /* void */) {
            v->tags[v->keys[i].slot] = 0;
        }
    }

    /* the names are one after the other in the arena, nothing above */
    v->nkeys = lvl->keys;

    if (v->nkeys) {
        k = &v->keys[v->nkeys - 1];
        v->arena.len = k->off + k->len;

    } else {
        v->arena.len = 0;
    }

    if (v->depth == 0) {
        v->expect = ex_end;
        return SG_BODY_OK;
    }

    v->expect = ex_next;

    sg_body_inside(v);

    return SG_BODY_OK;
}


/*
 * The innermost container has changed: what a ',' leads to in it, and
 * the role of its elements when it is an array (an object's members get
 * theirs from their names).
 */
static void
sg_body_inside(sg_body_t *v)
{
    sg_body_level_t  *lvl;

    lvl = &v->levels[v->depth - 1];

    if (!lvl->array) {
        v->comma = ex_key;
        return;
    }

    v->comma = ex_value;
    v->member = (lvl->ctx == sg_role_email_events) ? sg_role_event
                                                   : sg_role_other;
}


/*
 * A whole string without escapes, the len bytes at s; its closing quote
 * ends before pos.
 */
static int
sg_body_string(sg_body_t *v, const unsigned char *s, size_t len, size_t pos)
{
    switch (v->expect) {

    case ex_first_key:
    case ex_key:
        v->str_start = v->arena.len;

        if (len > SG_BODY_NAMES_BYTES - v->arena.len) {
            /* past the limit: sg_body_name() fails */
            v->over = 1;

        } else if (sg_body_add(v, &v->arena, s, len) != 0) {
            return sg_body_nomem(v);
        }

        return sg_body_name(v, pos);

    case ex_value:
    case ex_first_item:
        if (v->depth >= SG_BODY_MAX_DEPTH) {
            return sg_body_fail(v, pos);
        }

        v->expect = ex_next;

        if (v->member == sg_role_other) {
            return SG_BODY_OK;
        }

        if (v->member == sg_role_event) {
            sg_body_event(v, sg_body_is_event(s, len));
            return SG_BODY_OK;
        }

        if (sg_body_fact(v, v->member, sg_type_string, s, len) != 0) {
            return sg_body_nomem(v);
        }

        return SG_BODY_OK;

    default:
        return sg_body_fail(v, pos);
    }
}


/*
 * A whole number or literal that needs no closer look ends before pos.
 */
static int
sg_body_scalar(sg_body_t *v, size_t pos)
{
    if ((v->expect != ex_value && v->expect != ex_first_item)
        || v->depth >= SG_BODY_MAX_DEPTH)
    {
        return sg_body_fail(v, pos);
    }

    if (v->member != sg_role_other
        && sg_body_fact(v, v->member, sg_type_scalar, NULL, 0) != 0)
    {
        return sg_body_nomem(v);
    }

    v->expect = ex_next;

    return SG_BODY_OK;
}


static void
sg_body_string_start(sg_body_t *v)
{
    v->bad = 0;
    v->key = 0;
    v->sink = 0;
    v->over = 0;
    v->str_err = 0;
    v->after_hi = 0;
    v->str_start = v->arena.len;

    switch (v->expect) {

    case ex_first_key:
    case ex_key:
        v->key = 1;
        v->sink = 1;
        v->sink_end = SG_BODY_NAMES_BYTES;
        return;

    case ex_value:
    case ex_first_item:
        if (v->depth >= SG_BODY_MAX_DEPTH) {
            v->bad = 1;
            return;
        }

        v->role = v->member;

        switch (v->role) {
        case sg_role_destination:
        case sg_role_event:
        case sg_role_write_key:
        case sg_role_region:
            v->sink = 1;
            v->sink_end = v->str_start + SG_BODY_WRITE_KEY_KEPT;
            break;
        }

        return;

    default:
        v->bad = 1;
    }
}


/* the closing quote ends before pos */
static int
sg_body_string_end(sg_body_t *v, size_t pos)
{
    v->state = sw_space;

    if (v->bad || v->str_err) {
        return sg_body_fail(v, pos);
    }

    if (v->key) {
        return sg_body_name(v, pos);
    }

    if (sg_body_fact(v, v->role, sg_type_string, sg_body_text(v),
                     sg_body_text_len(v))
        != 0)
    {
        return sg_body_nomem(v);
    }

    v->arena.len = v->str_start;
    v->expect = ex_next;

    return SG_BODY_OK;
}


/*
 * The four digits of a \u escape are in v->hex.  The rules are those of
 * jansson's decoding: a high surrogate must be followed at once by a \u
 * escape of a low one; a lone surrogate or \u0000 fails the string.
 */
static int
sg_body_code_point(sg_body_t *v)
{
    size_t          n;
    uint32_t        cp;
    unsigned char   utf8[4];

    cp = v->hex;

    if (v->after_hi) {
        v->after_hi = 0;

        if (cp < 0xdc00 || cp > 0xdfff) {
            v->str_err = 1;
            v->sink = 0;
            return 0;
        }

        cp = 0x10000 + ((v->hi - 0xd800) << 10) + (cp - 0xdc00);

    } else if (cp >= 0xd800 && cp <= 0xdbff) {
        v->hi = cp;
        v->after_hi = 1;
        return 0;

    } else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0) {
        v->str_err = 1;
        v->sink = 0;
        return 0;
    }

    if (!v->sink) {
        return 0;
    }

    if (cp < 0x80) {
        utf8[0] = (unsigned char) cp;
        n = 1;

    } else if (cp < 0x800) {
        utf8[0] = 0xc0 | (cp >> 6);
        utf8[1] = 0x80 | (cp & 0x3f);
        n = 2;

    } else if (cp < 0x10000) {
        utf8[0] = 0xe0 | (cp >> 12);
        utf8[1] = 0x80 | ((cp >> 6) & 0x3f);
        utf8[2] = 0x80 | (cp & 0x3f);
        n = 3;

    } else {
        utf8[0] = 0xf0 | (cp >> 18);
        utf8[1] = 0x80 | ((cp >> 12) & 0x3f);
        utf8[2] = 0x80 | ((cp >> 6) & 0x3f);
        utf8[3] = 0x80 | (cp & 0x3f);
        n = 4;
    }

    return sg_body_sink(v, utf8, n);
}


/* a number or a bare word starts */
static void
sg_body_scalar_start(sg_body_t *v)
{
    v->bad = 0;

    if ((v->expect != ex_value && v->expect != ex_first_item)
        || v->depth >= SG_BODY_MAX_DEPTH)
    {
        v->bad = 1;

    } else {
        v->role = v->member;
    }

    v->neg = 0;
    v->exp_neg = 0;
    v->ival = 0;
    v->int_digits = 0;
    v->zeros = 0;
    v->sig = 0;
    v->cmp = 0;
    v->exp = 0;
}


/* a number or a bare word ends before pos */
static int
sg_body_scalar_end(sg_body_t *v, size_t pos)
{
    unsigned  state;

    state = v->state;
    v->state = sw_space;

    if (v->bad) {
        return sg_body_fail(v, pos);
    }

    switch (state) {

    case sw_word:
        if (v->word == NULL || v->word[v->word_n] != '\0') {
            return sg_body_fail(v, pos);
        }
        break;

    case sw_zero:
    case sw_int:
        /* strtoll() range, as json_int_t is long long */
        if (v->int_digits > 19
            || v->ival > (v->neg ? (uint64_t) INT64_MAX + 1 : INT64_MAX))
        {
            return sg_body_fail(v, pos);
        }
        break;

    default: /* sw_frac, sw_exp_digits */
        if (sg_body_real_overflows(v)) {
            return sg_body_fail(v, pos);
        }
    }

    if (sg_body_fact(v, v->role, sg_type_scalar, NULL, 0) != 0) {
        return sg_body_nomem(v);
    }

    v->expect = ex_next;

    return SG_BODY_OK;
}


/*
 * Whether strtod() overflows on the number read: its value, d.ddd * 10^k
 * with d the first significant digit, reaches sg_body_dbl_limit.
 */
static int
sg_body_real_overflows(sg_body_t *v)
{
    int64_t  k, exp;

    if (v->sig == 0) {
        return 0;
    }

    exp = v->exp_neg ? -v->exp : v->exp;

    if (v->int_digits) {
        k = exp + (int64_t) v->int_digits - 1;

    } else {
        k = exp - (int64_t) v->zeros - 1;
    }

    if (k != SG_BODY_DBL_EXP) {
        return k > SG_BODY_DBL_EXP;
    }

    return v->cmp > 0 || (v->cmp == 0 && v->sig >= SG_BODY_DBL_DIGITS);
}


/*
 * A member name, decoded at the top of the arena, ends before pos: it
 * must keep the names open within their limits, then differ from the
 * other names of its object, compared in turn while the object has few,
 * through the hash table beyond.
 */
static int
sg_body_name(sg_body_t *v, size_t pos)
{
    size_t                len, slot;
    uint32_t              hash;
    const char           *shadowed;
    sg_body_level_t      *lvl;
    const unsigned char  *name;

    if (v->nkeys == SG_BODY_NAMES_MAX || v->over) {
        return sg_body_fail_limit(v, v->nkeys < SG_BODY_NAMES_MAX, pos);
    }

    lvl = &v->levels[v->depth - 1];
    name = sg_body_text(v);
    len = sg_body_text_len(v);
    hash = 0;
    slot = SG_BODY_NO_SLOT;

    if (!lvl->hashed && v->nkeys - lvl->keys < SG_BODY_LINEAR) {
        if (sg_body_name_among(v, lvl, name, len)) {
            return sg_body_fail_duplicate(v, name, len, pos);
        }

    } else {
        if (!lvl->hashed && sg_body_hash_names(v, lvl) != 0) {
            return sg_body_nomem(v);
        }

        hash = sg_body_hash(v, name, len);
        slot = sg_body_name_slot(v, lvl, name, len, hash);

        if (slot == SG_BODY_FAR_SLOT) {
            /* names chosen to collide in the fast hash */
            sg_body_table_siphash(v);

            hash = sg_body_hash(v, name, len);
            slot = sg_body_name_slot(v, lvl, name, len, hash);
        }

        if (slot == SG_BODY_NO_SLOT) {
            return sg_body_fail_duplicate(v, name, len, pos);
        }
    }

    if (sg_body_keep_name(v, hash, slot) != 0) {
        return sg_body_nomem(v);
    }

    v->expect = ex_colon;

    if (lvl->ctx == sg_role_other) {
        v->member = sg_role_other;
        return SG_BODY_OK;
    }

    v->member = sg_body_member_role(lvl->ctx, name, len);

    if (v->member != sg_role_unknown) {
        return SG_BODY_OK;
    }

    v->member = sg_role_other;

    shadowed = sg_body_shadowed(lvl->ctx, name, len);

    if ((shadowed != NULL || v->strict)
        && sg_body_name_failure(v, lvl->ctx, name, len, shadowed) != 0)
    {
        return sg_body_nomem(v);
    }

    return SG_BODY_OK;
}


/* Whether the object at lvl, not hashed, has the name already. */
static int
sg_body_name_among(sg_body_t *v, sg_body_level_t *lvl,
    const unsigned char *name, size_t len)
{
    size_t                i;
    const unsigned char  *other;

    for (i = lvl->keys; i < v->nkeys; i++) {
        if (v->keys[i].len != len) {
            continue;
        }

        other = v->arena.data + v->keys[i].off;

        /* most names that differ do so at one end */
        if (len == 0
            || (other[0] == name[0] && other[len - 1] == name[len - 1]
                && memcmp(other, name, len) == 0))
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The free slot of the hash table where the name goes, or SG_BODY_NO_SLOT
 * when the hashed object at lvl has it already, or SG_BODY_FAR_SLOT when
 * the fast hash made the probe too long.  The table holds the names of
 * every hashed object open, those of lvl from lvl->keys on.
 */
static size_t
sg_body_name_slot(sg_body_t *v, sg_body_level_t *lvl,
    const unsigned char *name, size_t len, uint32_t hash)
{
    size_t          g, i, mask, slot, probes;
    uint64_t        tags, same;
    sg_body_key_t  *k;

    mask = SG_BODY_TABLE_SIZE / SG_BODY_GROUP - 1;
    probes = 0;

    for (g = hash & mask; /* void */; g = (g + 1) & mask) {
        if (++probes > v->probes_max && !v->siphash) {
            return SG_BODY_FAR_SLOT;
        }

        tags = sg_body_group(v->tags + g * SG_BODY_GROUP);
        same = sg_body_zero_bytes(tags ^ (sg_body_tag(hash) * SG_BODY_BYTES));

        for ( /* void */ ; same; same &= same - 1) {
            slot = g * SG_BODY_GROUP + sg_body_first_byte(same);
            i = v->slot_keys[slot];

            if (i < lvl->keys) {
                continue;
            }

            k = &v->keys[i];

            if (k->len == len
                && memcmp(v->arena.data + k->off, name, len) == 0)
            {
                return SG_BODY_NO_SLOT;
            }
        }

        if (sg_body_zero_bytes(tags)) {
            return g * SG_BODY_GROUP
                   + sg_body_first_byte(sg_body_zero_bytes(tags));
        }
    }
}


/*
 * Records the name just read as one of the innermost object, and puts it
 * in the free slot of the hash table when the object is hashed.
 */
static int
sg_body_keep_name(sg_body_t *v, uint32_t hash, size_t slot)
{
    size_t          size;
    sg_body_key_t  *k;

    if (v->nkeys == v->keys_size) {
        size = v->keys_size * 2;

        if (size > SG_BODY_NAMES_MAX) {
            size = SG_BODY_NAMES_MAX;
        }

        k = sg_body_alloc(v, size * sizeof(sg_body_key_t));
        if (k == NULL) {
            return -1;
        }

        memcpy(k, v->keys, v->nkeys * sizeof(sg_body_key_t));

        if (v->keys != v->keys_fixed) {
            sg_body_free(v, v->keys, v->keys_size * sizeof(sg_body_key_t));
        }

        v->keys = k;
        v->keys_size = size;
    }

    k = &v->keys[v->nkeys++];

    k->off = (uint16_t) v->str_start;
    k->len = (uint16_t) sg_body_text_len(v);
    k->slot = SG_BODY_UNHASHED;

    if (slot != SG_BODY_NO_SLOT) {
        sg_body_table_set(v, slot, v->nkeys - 1, hash);
    }

    return 0;
}


/*
 * A member of the top level, filters or properties that the schema does
 * not name: a failure when it shadows a schema member (see
 * sg_body_shadowed()), or in strict mode.  The first ones' texts are kept,
 * in document order.
 */
static int
sg_body_name_failure(sg_body_t *v, unsigned ctx, const unsigned char *name,
    size_t len, const char *shadowed)
{
    char         text[SG_BODY_NAME_FAILURE_MAX + 1];
    size_t       n;
    const char  *prefix;

    v->name_rules |= shadowed ? SG_BODY_RULE_NAME_CASE
                              : SG_BODY_RULE_UNKNOWN_MEMBER;

    if (v->name_fails_n++ >= SG_BODY_LISTED_MAX) {
        /* counted only */
        return 0;
    }

    prefix = (ctx == sg_role_filters) ? "filters."
             : (ctx == sg_role_properties) ? "properties." : "";

    n = strlen(prefix);
    memcpy(text, prefix, n);

    n += sg_body_put_name(text + n, name, len);

    if (shadowed == NULL) {
        memcpy(text + n, " is not allowed", sizeof(" is not allowed") - 1);
        n += sizeof(" is not allowed") - 1;

    } else {
        n += sprintf(text + n, " differs from %s%s only in letter case",
                     prefix, shadowed);
    }

    if (sg_body_add(v, &v->name_fails, text, n) != 0) {
        return -1;
    }

    v->name_fails_end[v->name_fails_n - 1] = (uint16_t) v->name_fails.len;

    return 0;
}


static int
sg_body_fail_duplicate(sg_body_t *v, const unsigned char *name, size_t len,
    size_t pos)
{
    char    text[sizeof("request body has duplicate member \"\"")
                 + SG_BODY_NAME_MAX + sizeof("...")
                 + sizeof(" at byte ") + 20];
    size_t  n;

    n = sizeof("request body has duplicate member \"") - 1;
    memcpy(text, "request body has duplicate member \"", n);

    n += sg_body_put_name(text + n, name, len);

    n += snprintf(text + n, sizeof(text) - n, "\" at byte %zu",
                  pos - v->drift);

    v->rules = SG_BODY_RULE_DUPLICATE;

    return sg_body_fail_text(v, text, n);
}


/*
 * Writes a member name for a message: at most SG_BODY_NAME_MAX bytes,
 * not splitting a character, then "..." when it was cut.
 */
static size_t
sg_body_put_name(char *dst, const unsigned char *name, size_t len)
{
    size_t  n;

    n = len;

    if (n > SG_BODY_NAME_MAX) {
        for (n = SG_BODY_NAME_MAX; (name[n] & 0xc0) == 0x80; n--) {
            /* void */
        }
    }

    memcpy(dst, name, n);

    if (n == len) {
        return n;
    }

    memcpy(dst + n, "...", 3);

    return n + 3;
}


/*
 * The hash table: open addressing, at most half full (it has room for
 * twice the names that may be open), made when an object is first hashed
 * and kept for the body.  A slot has a tag, the top 7 bits of its name's
 * hash with bit 7 set, and the tags of a group of 8 slots are compared at
 * once; a name goes to the first free slot of the groups from the one its
 * hash chooses on.  Names leave the table in the reverse order of their
 * arrival (their object closes), which restores every group exactly, so
 * no tombstones are needed; hashing again re-inserts in the order of
 * arrival to keep that true.  A slot holds a name's record, not its hash,
 * which is computed again when SipHash takes over.
 *
 * The object at lvl has too many names to compare in turn: hash them.
 */
static int
sg_body_hash_names(sg_body_t *v, sg_body_level_t *lvl)
{
    size_t  i;

    if (v->tags == NULL) {
        v->tags = sg_body_alloc(v, SG_BODY_TABLE_SIZE
                                   * (1 + sizeof(uint16_t)));
        if (v->tags == NULL) {
            return -1;
        }

        memset(v->tags, 0, SG_BODY_TABLE_SIZE);
        v->slot_keys = (uint16_t *) (v->tags + SG_BODY_TABLE_SIZE);
    }

    lvl->hashed = 1;

    for (i = lvl->keys; i < v->nkeys; i++) {
        sg_body_table_add(v, i);
    }

    return 0;
}


/* Names collide in the fast hash: all are hashed again with SipHash. */
static void
sg_body_table_siphash(sg_body_t *v)
{
    size_t  i;

    v->siphash = 1;

    memset(v->tags, 0, SG_BODY_TABLE_SIZE);

    for (i = 0; i < v->nkeys; i++) {
        if (v->keys[i].slot != SG_BODY_UNHASHED) {
            sg_body_table_add(v, i);
        }
    }
}


/* Puts name record i in the first free slot for its hash. */
static void
sg_body_table_add(sg_body_t *v, size_t i)
{
    uint32_t        hash;
    sg_body_key_t  *k;

    k = &v->keys[i];
    hash = sg_body_hash(v, v->arena.data + k->off, k->len);

    sg_body_table_set(v, sg_body_table_free(v, hash), i, hash);
}


/* The first free slot for hash. */
static size_t
sg_body_table_free(sg_body_t *v, uint32_t hash)
{
    size_t    g, mask;
    uint64_t  free;

    mask = SG_BODY_TABLE_SIZE / SG_BODY_GROUP - 1;

    for (g = hash & mask; /* void */; g = (g + 1) & mask) {
        free = sg_body_zero_bytes(sg_body_group(v->tags + g * SG_BODY_GROUP));

        if (free) {
            return g * SG_BODY_GROUP + sg_body_first_byte(free);
        }
    }
}


/* Puts name record i, of that hash, in the free slot. */
static void
sg_body_table_set(sg_body_t *v, size_t slot, size_t i, uint32_t hash)
{
    v->tags[slot] = sg_body_tag(hash);
    v->slot_keys[slot] = (uint16_t) i;
    v->keys[i].slot = (uint16_t) slot;
}


/* The tags of the 8 slots at p, that of p[i] in byte i of the word. */
static uint64_t
sg_body_group(const unsigned char *p)
{
    return (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16
           | (uint64_t) p[3] << 24 | (uint64_t) p[4] << 32
           | (uint64_t) p[5] << 40 | (uint64_t) p[6] << 48
           | (uint64_t) p[7] << 56;
}


/* Bit 7 set in the bytes of w that are 0, and in no other. */
static uint64_t
sg_body_zero_bytes(uint64_t w)
{
    /* a byte's low 7 bits plus 0x7f carry into bit 7 unless all are 0 */
    return ~(((w & (0x7f * SG_BODY_BYTES)) + 0x7f * SG_BODY_BYTES) | w)
           & (0x80 * SG_BODY_BYTES);
}


/*
 * The code points of UTF-8 text: its bytes but the continuation bytes
 * (10xxxxxx), eight at a time.
 */
static size_t
sg_body_code_points(const unsigned char *s, size_t len)
{
    size_t    i, n;
    uint64_t  w, cont;

    n = len;

    for (i = 0; len - i >= 8; i += 8) {
        w = sg_body_group(s + i);

        /* bit 7 of a byte set, and its bit 6, shifted there, clear */
        cont = w & ~(w << 1) & (0x80 * SG_BODY_BYTES);

        /* one bit per byte, summed into the top byte */
        n -= (size_t) (((cont >> 7) * SG_BODY_BYTES) >> 56);
    }

    for ( /* void */ ; i < len; i++) {
        n -= ((s[i] & 0xc0) == 0x80);
    }

    return n;
}


/* The lowest byte with bit 7 set of a mask that has one. */
static size_t
sg_body_first_byte(uint64_t mask)
{
#if (defined __GNUC__)
    return __builtin_ctzll(mask) / 8;
#else
    size_t  i;

    for (i = 0; (mask & 0x80) == 0; i++) {
        mask >>= 8;
    }

    return i;
#endif
}


static unsigned
sg_body_member_role(unsigned ctx, const unsigned char *name, size_t len)
{
    switch (ctx) {

    case sg_role_top:
        if (sg_body_is(name, len, "destination")) {
            return sg_role_destination;
        }

        if (sg_body_is(name, len, "filters")) {
            return sg_role_filters;
        }

        if (sg_body_is(name, len, "properties")) {
            return sg_role_properties;
        }

        if (sg_body_is(name, len, "label")) {
            return sg_role_label;
        }

        return sg_role_unknown;

    case sg_role_filters:
        if (sg_body_is(name, len, "email_events")) {
            return sg_role_email_events;
        }

        return sg_role_unknown;

    case sg_role_properties:
        if (sg_body_is(name, len, "write_key")) {
            return sg_role_write_key;
        }

        if (sg_body_is(name, len, "destination_region")) {
            return sg_role_region;
        }

        return sg_role_unknown;

    default:
        return sg_role_other;
    }
}


/*
 * The schema member of the object ctx (the top level, filters or
 * properties) that a name the schema does not know shadows: one a
 * decoder that matches names without regard to letter case, as Go's
 * encoding/json does, would read the member as.  NULL when none.
 */
static const char *
sg_body_shadowed(unsigned ctx, const unsigned char *name, size_t len)
{
    static const char *const  top[] = {
        "destination", "filters", "properties", "label", NULL
    };
    static const char *const  filters[] = { "email_events", NULL };
    static const char *const  properties[] = {
        "write_key", "destination_region", NULL
    };

    const char *const  *m;

    m = (ctx == sg_role_top) ? top
        : (ctx == sg_role_filters) ? filters : properties;

    for ( /* void */ ; *m; m++) {
        if (sg_body_folds_to(name, len, *m)) {
            return *m;
        }
    }

    return NULL;
}


/*
 * Whether name equals lit, a schema name (lower-case ASCII letters and
 * '_'), under Go's folding of names (encoding/json's foldName(), which
 * maps each character to the smallest of its Unicode simple case folding
 * orbit): ASCII letters in either case, and the only two other characters
 * whose orbit holds an ASCII letter, U+017F LATIN SMALL LETTER LONG S for
 * 's' and U+212A KELVIN SIGN for 'k'.  Any other byte must be the same.
 */
static int
sg_body_folds_to(const unsigned char *name, size_t len, const char *lit)
{
    unsigned char         c;
    const unsigned char  *end;

    end = name + len;

    for ( /* void */ ; *lit; lit++) {
        if (name == end) {
            return 0;
        }

        c = (unsigned char) *lit;

        if (*name == c || (sg_body_is_alpha(c) && (*name | 0x20) == c)) {
            name++;

        } else if (c == 's' && end - name >= 2
                   && name[0] == 0xc5 && name[1] == 0xbf)
        {
            name += 2;

        } else if (c == 'k' && end - name >= 3
                   && name[0] == 0xe2 && name[1] == 0x84 && name[2] == 0xaa)
        {
            name += 3;

        } else {
            return 0;
        }
    }

    return name == end;
}


/*
 * Notes what a value of a member the schema names is; s is the decoded
 * text of a string.
 */
static int
sg_body_fact(sg_body_t *v, unsigned role, unsigned type,
    const unsigned char *s, size_t len)
{
    size_t  n;

    switch (role) {

    case sg_role_destination:
        v->destination = (type == sg_type_string
                          && sg_body_is(s, len, "Segment"))
                         ? sg_good : sg_wrong;
        break;

    case sg_role_filters:
        v->filters = (type == sg_type_object) ? sg_good : sg_wrong;
        break;

    case sg_role_email_events:
        v->email_events = (type == sg_type_array) ? sg_good : sg_wrong;
        break;

    case sg_role_event:
        sg_body_event(v, type == sg_type_string && sg_body_is_event(s, len));
        break;

    case sg_role_properties:
        v->properties = (type == sg_type_object) ? sg_good : sg_wrong;
        break;

    case sg_role_write_key:
        if (type != sg_type_string) {
            v->write_key = sg_wrong;
            break;
        }

        n = sg_body_code_points(s, len);

        v->write_key = (n >= SG_BODY_WRITE_KEY_MIN
                        && n <= SG_BODY_WRITE_KEY_MAX)
                       ? sg_good : sg_wrong_length;

        v->wkey.len = 0;

        return sg_body_add(v, &v->wkey, s,
                           sg_body_whole_chars(s, (len < SG_BODY_WRITE_KEY_KEPT)
                                                  ? len
                                                  : SG_BODY_WRITE_KEY_KEPT));

    case sg_role_region:
        v->region = (type == sg_type_string
                     && (sg_body_is(s, len, "EU") || sg_body_is(s, len, "US")))
                    ? sg_good : sg_wrong;
        break;

    case sg_role_label:
        v->label = (type == sg_type_string) ? sg_good : sg_wrong;
        break;
    }

    return 0;
}


/* Whether s is one of the twelve email events. */
static int
sg_body_is_event(const unsigned char *s, size_t len)
{
    return len != 0 && sg_body_event_prefix(s, len) == len;
}


/*
 * The length of the email event that the len bytes at s start with, else
 * 0 (no event is the start of another).  The first byte tells the
 * candidates apart, each compared whole with a constant length, which
 * compilers do inline.
 */
static size_t
sg_body_event_prefix(const unsigned char *s, size_t len)
{
#define sg_body_starts(lit)                                                   \
    ((len >= sizeof(lit) - 1 && memcmp(s, lit, sizeof(lit) - 1) == 0)        \
     ? sizeof(lit) - 1 : 0)

    if (len == 0) {
        return 0;
    }

    switch (s[0]) {

    case 'b':
        return sg_body_starts("bounce");

    case 'c':
        return sg_body_starts("click");

    case 'd':
        if (len > 2 && s[1] == 'r') {
            return sg_body_starts("drop");
        }

        if (len > 2 && s[2] == 'f') {
            return sg_body_starts("deferred");
        }

        return sg_body_starts("delivered");

    case 'g':
        if (len > 6 && s[6] == 'u') {
            return sg_body_starts("group_unsubscribe");
        }

        return sg_body_starts("group_resubscribe");

    case 'm':
        return sg_body_starts("machine_opened");

    case 'o':
        return sg_body_starts("open");

    case 'p':
        return sg_body_starts("processed");

    case 's':
        return sg_body_starts("spamreport");

    case 'u':
        return sg_body_starts("unsubscribe");

    default:
        return 0;
    }

#undef sg_body_starts
}


/*
 * An element of filters.email_events ends: notes its index when it is
 * not an email event and is among the first that are not.
 */
static void
sg_body_event(sg_body_t *v, int valid)
{
    size_t  i;

    i = v->events_n++;

    if (!valid && v->bad_events_n++ < SG_BODY_LISTED_MAX) {
        v->bad_events[v->bad_events_n - 1] = i;
    }
}


/* The body is valid JSON: the schema failures, in order. */
static int
sg_body_verdict(sg_body_t *v)
{
    sg_body_buf_t  *m;

#define sg_body_tell(rule, text)                                              \
    v->rules |= (rule);                                                       \
    if (sg_body_part(v, text, sizeof(text) - 1) != 0) {                       \
        return sg_body_nomem(v);                                              \
    }

    m = &v->msg;
    m->len = 0;
    v->listed = 0;
    v->unlisted = 0;
    v->rules = v->name_rules;

    if (v->top_array) {
        sg_body_tell(SG_BODY_RULE_OBJECT,
                     "request body must be a JSON object");
        goto done;
    }

    if (v->destination == sg_missing) {
        if (v->create) {
            sg_body_tell(SG_BODY_RULE_DESTINATION_REQUIRED,
                         "destination is required");
        }

    } else if (v->destination == sg_wrong) {
        sg_body_tell(SG_BODY_RULE_DESTINATION_VALUE,
                     "destination must be Segment");
    }

    if (v->filters == sg_missing) {
        if (v->create) {
            sg_body_tell(SG_BODY_RULE_FILTERS_REQUIRED,
                         "filters is required");
        }

    } else if (v->filters == sg_wrong) {
        sg_body_tell(SG_BODY_RULE_FILTERS_TYPE,
                     "filters must be an object");

    } else if (v->email_events == sg_missing) {
        if (v->create) {
            sg_body_tell(SG_BODY_RULE_EVENTS_REQUIRED,
                         "filters.email_events is required");
        }

    } else if (v->email_events == sg_wrong) {
        sg_body_tell(SG_BODY_RULE_EVENTS_TYPE,
                     "filters.email_events must be an array");

    } else if (sg_body_tell_events(v) != 0) {
        return sg_body_nomem(v);
    }

    if (v->properties == sg_missing) {
        if (v->create) {
            sg_body_tell(SG_BODY_RULE_PROPERTIES_REQUIRED,
                         "properties is required");
        }

    } else if (v->properties == sg_wrong) {
        sg_body_tell(SG_BODY_RULE_PROPERTIES_TYPE,
                     "properties must be an object");

    } else {
        if (v->write_key == sg_missing) {
            if (v->create) {
                sg_body_tell(SG_BODY_RULE_WRITE_KEY_REQUIRED,
                             "properties.write_key is required");
            }

        } else if (v->write_key == sg_wrong) {
            sg_body_tell(SG_BODY_RULE_WRITE_KEY_TYPE,
                         "properties.write_key must be a string");

        } else if (v->write_key == sg_wrong_length) {
            sg_body_tell(SG_BODY_RULE_WRITE_KEY_LENGTH,
                         "properties.write_key must be between 6 and 51 "
                         "characters");
        }

        if (v->region == sg_missing) {
            if (v->create) {
                sg_body_tell(SG_BODY_RULE_REGION_REQUIRED,
                             "properties.destination_region is required");
            }

        } else if (v->region == sg_wrong) {
            sg_body_tell(SG_BODY_RULE_REGION_VALUE,
                         "properties.destination_region must be EU or US");
        }
    }

    if (v->label == sg_wrong) {
        sg_body_tell(SG_BODY_RULE_LABEL_TYPE, "label must be a string");
    }

    if (sg_body_tell_name_failures(v) != 0 || sg_body_tell_unlisted(v) != 0) {
        return sg_body_nomem(v);
    }

done:

    if (m->len == 0) {
        v->state = sw_done;
        sg_body_release(v);
        return SG_BODY_OK;
    }

    if (sg_body_grow(v, m, 1) != 0) {
        return sg_body_nomem(v);
    }

    m->data[m->len] = '\0';

    v->state = sw_done;
    v->status = SG_BODY_INVALID;

    sg_body_release(v);

    return SG_BODY_INVALID;

#undef sg_body_tell
}


/* The failing elements of filters.email_events, in order. */
static int
sg_body_tell_events(sg_body_t *v)
{
    int     n;
    char    text[sizeof("filters.email_events[] is not a valid email event")
                 + 20];
    size_t  i;

    if (v->bad_events_n) {
        v->rules |= SG_BODY_RULE_EVENT_VALUE;
    }

    for (i = 0; i < v->bad_events_n && i < SG_BODY_LISTED_MAX; i++) {
        n = snprintf(text, sizeof(text), "filters.email_events[%zu] is not "
                     "a valid email event", v->bad_events[i]);

        if (sg_body_part(v, text, n) != 0) {
            return -1;
        }
    }

    v->unlisted += v->bad_events_n - i;

    return 0;
}


/* The failures of member names, in document order. */
static int
sg_body_tell_name_failures(sg_body_t *v)
{
    size_t  i, start;

    start = 0;

    for (i = 0; i < v->name_fails_n && i < SG_BODY_LISTED_MAX; i++) {
        if (sg_body_part(v, (char *) v->name_fails.data + start,
                         v->name_fails_end[i] - start)
            != 0)
        {
            return -1;
        }

        start = v->name_fails_end[i];
    }

    v->unlisted += v->name_fails_n - i;

    return 0;
}


/* "and N more failures", when some were not listed */
static int
sg_body_tell_unlisted(sg_body_t *v)
{
    int   n;
    char  text[sizeof("and  more failures") + 20];

    if (v->unlisted == 0) {
        return 0;
    }

    n = snprintf(text, sizeof(text), "and %zu more failure%s", v->unlisted,
                 (v->unlisted == 1) ? "" : "s");

    return sg_body_say(v, &v->msg, text, n);
}


/* One failure: listed while fewer than SG_BODY_LISTED_MAX are, else counted. */
static int
sg_body_part(sg_body_t *v, const char *text, size_t len)
{
    if (v->listed == SG_BODY_LISTED_MAX) {
        v->unlisted++;
        return 0;
    }

    v->listed++;

    return sg_body_say(v, &v->msg, text, len);
}


/*
 * The first byte c, at offset lead, of a multi-byte character: sets up
 * the checks of the bytes that follow, or returns -1 when no well-formed
 * character starts with c (the rules of RFC 3629, as jansson's utf.c).
 */
static int
sg_body_utf8_start(sg_body_t *v, unsigned char c, size_t lead)
{
    v->u_lead = lead;
    v->u_lo = 0x80;
    v->u_hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        v->u_need = 1;

    } else if (c >= 0xe0 && c <= 0xef) {
        v->u_need = 2;

        if (c == 0xe0) {
            v->u_lo = 0xa0;         /* overlong */

        } else if (c == 0xed) {
            v->u_hi = 0x9f;         /* surrogates */
        }

    } else if (c >= 0xf0 && c <= 0xf4) {
        v->u_need = 3;

        if (c == 0xf0) {
            v->u_lo = 0x90;         /* overlong */

        } else if (c == 0xf4) {
            v->u_hi = 0x8f;         /* above U+10FFFF */
        }

    } else {
        return -1;
    }

    return 0;
}


/*
 * A byte c after the first of a multi-byte character, read byte by byte:
 * counted off, or -1 when it is outside the range its place allows.
 */
static int
sg_body_utf8_next(sg_body_t *v, unsigned char c)
{
    if (c < v->u_lo || c > v->u_hi) {
        return -1;
    }

    v->u_lo = 0x80;
    v->u_hi = 0xbf;
    v->u_need--;

    return 0;
}


/*
 * The bytes from p that stand for themselves inside a string: returns
 * the first that does not ('"', '\\', a control byte, the end) and is not
 * the start of a well-formed character lying whole before end.
 */
static const unsigned char *
sg_body_plain_run(const unsigned char *p, const unsigned char *end)
{
    size_t  n;

    for ( ;; ) {
        p = sg_body_plain_ascii(p, end);

        if (p == end || *p < 0x80 || (n = sg_body_utf8_whole(p, end)) == 0) {
            return p;
        }

        p += n;
    }
}


#if (SG_BODY_SSE2)

/*
 * The first byte from p that is not printable ASCII, or is '"' or '\\',
 * else end: 16 bytes at a time.
 */
static const unsigned char *
sg_body_plain_ascii(const unsigned char *p, const unsigned char *end)
{
    unsigned  special;
    __m128i   x, quote, backslash, space;

    quote = _mm_set1_epi8('"');
    backslash = _mm_set1_epi8('\\');
    space = _mm_set1_epi8(0x20);

    while (end - p >= 16) {
        x = _mm_loadu_si128((const __m128i *) p);

        /* a signed comparison: bytes from 0x80 on are below 0x20 too */
        special = _mm_movemask_epi8(
                      _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote),
                                                _mm_cmpeq_epi8(x, backslash)),
                                   _mm_cmpgt_epi8(space, x)));

        if (special) {
            return p + __builtin_ctz(special);
        }

        p += 16;
    }

    while (p < end && sg_body_plain[*p]) {
        p++;
    }

    return p;
}

#else

/*
 * The first byte from p that is not printable ASCII, or is '"' or '\\',
 * else end: 8 bytes at a time.
 */
static const unsigned char *
sg_body_plain_ascii(const unsigned char *p, const unsigned char *end)
{
    while (end - p >= 8 && !sg_body_special(p)) {
        p += 8;
    }

    while (p < end && sg_body_plain[*p]) {
        p++;
    }

    return p;
}


/*
 * Whether any of the 8 bytes at p needs a look inside a string: '"',
 * '\\', a control byte or a byte of a multi-byte character.  The tests
 * for a zero byte (x - 0x01) & ~x & 0x80 and for a byte below 0x20 may
 * flag wrong bytes above a true hit, never a word with none.
 */
static int
sg_body_special(const unsigned char *p)
{
    uint64_t  w, q, b;

    memcpy(&w, p, 8);

    q = w ^ 0x2222222222222222ULL;
    b = w ^ 0x5c5c5c5c5c5c5c5cULL;

    return (((q - 0x0101010101010101ULL) & ~q)
            | ((b - 0x0101010101010101ULL) & ~b)
            | ((w - 0x2020202020202020ULL) & ~w)
            | w)
           & 0x8080808080808080ULL
           ? 1 : 0;
}

#endif


/* The length of the well-formed character wholly at p, else 0. */
static size_t
sg_body_utf8_whole(const unsigned char *p, const unsigned char *end)
{
    unsigned char  c, lo, hi;

    c = p[0];
    lo = 0x80;
    hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        return (end - p >= 2 && (p[1] & 0xc0) == 0x80) ? 2 : 0;
    }

    if (c >= 0xe0 && c <= 0xef) {
        if (c == 0xe0) {
            lo = 0xa0;

        } else if (c == 0xed) {
            hi = 0x9f;
        }

        return (end - p >= 3 && p[1] >= lo && p[1] <= hi
                && (p[2] & 0xc0) == 0x80)
               ? 3 : 0;
    }

    if (c >= 0xf0 && c <= 0xf4) {
        if (c == 0xf0) {
            lo = 0x90;

        } else if (c == 0xf4) {
            hi = 0x8f;
        }

        return (end - p >= 4 && p[1] >= lo && p[1] <= hi
                && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80)
               ? 4 : 0;
    }

    return 0;
}


/* The body is not valid JSON; jansson would say so at pos. */
static int
sg_body_fail(sg_body_t *v, size_t pos)
{
    int   n;
    char  text[sizeof("request body is not valid JSON at byte ") + 20];

    n = snprintf(text, sizeof(text),
                 "request body is not valid JSON at byte %zu",
                 pos - v->drift);

    v->rules = SG_BODY_RULE_SYNTAX;

    return sg_body_fail_text(v, text, n);
}


/*
 * The byte c at offset lead is not allowed where it is; when it starts a
 * multi-byte character, jansson fails at pos if the character is well
 * formed, at lead if not.
 */
static int
sg_body_fail_utf8(sg_body_t *v, unsigned char c, size_t lead, size_t pos)
{
    if (c < 0x80) {
        return sg_body_fail(v, pos);
    }

    if (sg_body_utf8_start(v, c, lead) != 0) {
        return sg_body_fail(v, lead);
    }

    v->err_pos = pos;
    v->state = sw_error_utf8;

    return SG_BODY_OK;
}


/* The names open would go past a limit with the one that ends at pos. */
static int
sg_body_fail_limit(sg_body_t *v, unsigned bytes, size_t pos)
{
    int   n;
    char  text[sizeof("request body exceeds the limit of  bytes of member "
                      "names open at once at byte ") + 40];

    if (bytes) {
        n = snprintf(text, sizeof(text), "request body exceeds the limit of "
                     "%d bytes of member names open at once at byte %zu",
                     SG_BODY_NAMES_BYTES, pos - v->drift);

    } else {
        n = snprintf(text, sizeof(text), "request body exceeds the limit of "
                     "%d member names open at once at byte %zu",
                     SG_BODY_NAMES_MAX, pos - v->drift);
    }

    v->rules = SG_BODY_RULE_LIMIT;

    return sg_body_fail_text(v, text, n);
}


static int
sg_body_fail_text(sg_body_t *v, const char *text, size_t len)
{
    v->msg.len = 0;

    if (sg_body_grow(v, &v->msg, len + 1) != 0) {
        return sg_body_nomem(v);
    }

    memcpy(v->msg.data, text, len);
    v->msg.data[len] = '\0';
    v->msg.len = len;

    v->state = sw_done;
    v->status = SG_BODY_INVALID;

    sg_body_release(v);

    return SG_BODY_INVALID;
}


static int
sg_body_nomem(sg_body_t *v)
{
    v->state = sw_done;
    v->status = SG_BODY_NOMEM;

    sg_body_release(v);

    return SG_BODY_NOMEM;
}


/*
 * Keeps len more bytes of the decoded string being read, up to
 * v->sink_end: a member name that would pass SG_BODY_NAMES_BYTES is not
 * kept further and fails when it ends; a value is kept cut.
 */
static int
sg_body_sink(sg_body_t *v, const void *data, size_t len)
{
    if (len > v->sink_end - v->arena.len) {
        len = v->sink_end - v->arena.len;
        v->sink = 0;
        v->over = v->key;
    }

    return sg_body_add(v, &v->arena, data, len);
}


static int
sg_body_add(sg_body_t *v, sg_body_buf_t *b, const void *data, size_t len)
{
    if (b->size - b->len < len && sg_body_grow(v, b, len) != 0) {
        return -1;
    }

    memcpy(b->data + b->len, data, len);
    b->len += len;

    return 0;
}


/* Appends one failure to a list of them, after ", " unless it is first. */
static int
sg_body_say(sg_body_t *v, sg_body_buf_t *b, const char *text, size_t len)
{
    if (b->len && sg_body_add(v, b, ", ", 2) != 0) {
        return -1;
    }

    return sg_body_add(v, b, text, len);
}


/*
 * Makes room for need more bytes in b: the size doubles, and goes to
 * b->max at once when it would pass half of it, so that no step holds
 * more than half of b->max besides the new storage.
 */
static int
sg_body_grow(sg_body_t *v, sg_body_buf_t *b, size_t need)
{
    size_t          size;
    unsigned char  *p;

    if (b->size - b->len >= need) {
        return 0;
    }

    if (need > b->max - b->len) {
        return -1;
    }

    size = b->size ? b->size : 64;

    while (size - b->len < need) {
        size *= 2;
    }

    if (size > b->max / 2) {
        size = b->max;
    }

    p = sg_body_alloc(v, size);
    if (p == NULL) {
        return -1;
    }

    if (b->len) {
        memcpy(p, b->data, b->len);
    }

    if (b->data != b->fixed) {
        sg_body_free(v, b->data, b->size);
    }

    b->data = p;
    b->size = size;

    return 0;
}


static void
sg_body_buf_init(sg_body_buf_t *b, unsigned char *fixed, size_t size,
    size_t max)
{
    b->data = fixed;
    b->fixed = fixed;
    b->fixed_size = size;
    b->len = 0;
    b->size = size;
    b->max = max;
}


/* Frees what b holds beyond its inline storage; b is then empty. */
static void
sg_body_buf_free(sg_body_t *v, sg_body_buf_t *b)
{
    if (b->data != b->fixed) {
        sg_body_free(v, b->data, b->size);
    }

    sg_body_buf_init(b, b->fixed, b->fixed_size, b->max);
}
/*
 * The longest start of the len bytes of UTF-8 at s that ends at a
 * character boundary.
 */
static size_t
sg_body_whole_chars(const unsigned char *s, size_t len)
{
    size_t         lead, need;
    unsigned char  c;

    for (lead = len; lead > 0 && (s[lead - 1] & 0xc0) == 0x80; lead--) {
        /* void */
    }

    if (lead-- == 0) {
        return 0;
    }

    c = s[lead];
    need = (c < 0x80) ? 1 : (c < 0xe0) ? 2 : (c < 0xf0) ? 3 : 4;

    return (len - lead >= need) ? len : lead;
}


/*
 * The verdict is known: what reading the body needed is freed, the
 * message and properties.write_key are kept.
 */
static void
sg_body_release(sg_body_t *v)
{
    if (v->mem == sizeof(sg_body_t)) {
        /* nothing beyond the inline storage */
        return;
    }

    if (v->levels != v->levels_fixed) {
        sg_body_free(v, v->levels,
                     SG_BODY_MAX_DEPTH * sizeof(sg_body_level_t));
        v->levels = v->levels_fixed;
        v->levels_size = sizeof(v->levels_fixed) / sizeof(v->levels_fixed[0]);
    }

    if (v->keys != v->keys_fixed) {
        sg_body_free(v, v->keys, v->keys_size * sizeof(sg_body_key_t));
        v->keys = v->keys_fixed;
        v->keys_size = sizeof(v->keys_fixed) / sizeof(v->keys_fixed[0]);
    }

    if (v->tags) {
        sg_body_free(v, v->tags, SG_BODY_TABLE_SIZE * (1 + sizeof(uint16_t)));
        v->tags = NULL;
        v->slot_keys = NULL;
    }

    sg_body_buf_free(v, &v->arena);
    sg_body_buf_free(v, &v->name_fails);
}


/* Allocates within SG_BODY_MEMORY_MAX, counted. */
static void *
sg_body_alloc(sg_body_t *v, size_t size)
{
    void  *p;

    if (size > SG_BODY_MEMORY_MAX - v->mem) {
        return NULL;
    }

    p = malloc(size);
    if (p == NULL) {
        return NULL;
    }

    v->mem += size;

    if (v->mem > v->mem_peak) {
        v->mem_peak = v->mem;
    }

    return p;
}


static void
sg_body_free(sg_body_t *v, void *p, size_t size)
{
    free(p);
    v->mem -= size;
}


/*
 * The hash of a name, keyed per process: names come from the client, and
 * a keyed hash keeps them from being chosen to collide.  A fast one is
 * used until a probe runs long (sg_body_name_slot()), then SipHash-1-3,
 * which no choice of names defeats, for the rest of the body.
 */
static uint32_t
sg_body_hash(sg_body_t *v, const unsigned char *p, size_t len)
{
    return v->siphash ? sg_body_siphash(p, len) : sg_body_fast_hash(p, len);
}


/* murmur3's finalizer per 8 bytes: each input bit flips half the output */
static uint32_t
sg_body_fast_hash(const unsigned char *p, size_t len)
{
    size_t    i;
    uint64_t  h, w;

    h = sg_body_k0 ^ len;

    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&w, p + i, 8);
        h = sg_body_mix(h ^ w);
    }

    return (uint32_t) sg_body_mix(h ^ sg_body_tail(p + i, len - i)
                                  ^ sg_body_k1);
}


static uint64_t
sg_body_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;

    return x;
}


/* The last n < 8 bytes of a name, in a word. */
static uint64_t
sg_body_tail(const unsigned char *p, size_t n)
{
    uint64_t  b;

    b = 0;

    switch (n) {
    case 7: b |= (uint64_t) p[6] << 48; /* fall through */
    case 6: b |= (uint64_t) p[5] << 40; /* fall through */
    case 5: b |= (uint64_t) p[4] << 32; /* fall through */
    case 4: b |= (uint64_t) p[3] << 24; /* fall through */
    case 3: b |= (uint64_t) p[2] << 16; /* fall through */
    case 2: b |= (uint64_t) p[1] << 8;  /* fall through */
    case 1: b |= (uint64_t) p[0];
    }

    return b;
}


#define sg_rotl(x, b)  (((x) << (b)) | ((x) >> (64 - (b))))

#define sg_sipround                                                           \
    do {                                                                      \
        v0 += v1; v1 = sg_rotl(v1, 13); v1 ^= v0; v0 = sg_rotl(v0, 32);       \
        v2 += v3; v3 = sg_rotl(v3, 16); v3 ^= v2;                             \
        v0 += v3; v3 = sg_rotl(v3, 21); v3 ^= v0;                             \
        v2 += v1; v1 = sg_rotl(v1, 17); v1 ^= v2; v2 = sg_rotl(v2, 32);       \
    } while (0)

static uint32_t
sg_body_siphash(const unsigned char *p, size_t len)
{
    size_t    i;
    uint64_t  v0, v1, v2, v3, m, b;

    v0 = sg_body_k0 ^ 0x736f6d6570736575ULL;
    v1 = sg_body_k1 ^ 0x646f72616e646f6dULL;
    v2 = sg_body_k0 ^ 0x6c7967656e657261ULL;
    v3 = sg_body_k1 ^ 0x7465646279746573ULL;

    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&m, p + i, 8);
        v3 ^= m;
        sg_sipround;
        v0 ^= m;
    }

    b = (uint64_t) len << 56 | sg_body_tail(p + i, len & 7);

    v3 ^= b;
    sg_sipround;
    v0 ^= b;
    v2 ^= 0xff;
    sg_sipround;
    sg_sipround;
    sg_sipround;

    return (uint32_t) (v0 ^ v1 ^ v2 ^ v3);
}


int
sg_body_init(void)
{
    uint64_t  k[2];

    if (sg_body_seeded) {
        /* validators may be hashing with the key */
        return 0;
    }

    if (sg_body_random((unsigned char *) k, sizeof(k)) != 0) {
        return -1;
    }

    sg_body_k0 = k[0];
    sg_body_k1 = k[1];
    sg_body_seeded = 1;

    return 0;
}


/* len random bytes from the system; -1 with errno set when there are none */
static int
sg_body_random(unsigned char *buf, size_t len)
{
#if (SG_BODY_ARC4RANDOM)

    arc4random_buf(buf, len);

    return 0;

#else

    int  fd, rc, err;

#if (SG_BODY_GETRANDOM)

    rc = sg_body_fill(-1, buf, len);

    if (rc == 0 || errno != ENOSYS) {
        return rc;
    }

    /* a kernel without getrandom() */

#endif

    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return -1;
    }

    rc = sg_body_fill(fd, buf, len);

    err = errno;
    (void) close(fd);
    errno = err;

    return rc;

#endif
}


#if !(SG_BODY_ARC4RANDOM)

/*
 * Fills buf from getrandom() (fd -1), which blocks only until the
 * kernel's pool is first ready, at boot, or from the file fd.
 */
static int
sg_body_fill(int fd, unsigned char *buf, size_t len)
{
    ssize_t  n;

    while (len) {
#if (SG_BODY_GETRANDOM)
        n = (fd == -1) ? getrandom(buf, len, 0) : read(fd, buf, len);
#else
        n = read(fd, buf, len);
#endif

        if (n > 0) {
            buf += n;
            len -= n;
            continue;
        }

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n == 0) {
            errno = EIO;
        }

        return -1;
    }

    return 0;
}

#endif
