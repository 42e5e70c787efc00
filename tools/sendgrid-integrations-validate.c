/*
 * sendgrid-integrations-validate: checks a request body of the SendGrid
 * Integrations API as the gateway does, with the same validator, so that
 * teams can check their payloads in their own CI.
 *
 *     sendgrid-integrations-validate --operation create|update [--strict]
 *                                    [--json] [FILE|-]
 *
 * The body is read from FILE, or from the standard input when FILE is "-"
 * or missing.  A valid body prints nothing and exits 0.  An invalid one
 * prints the message the gateway answers with, on one line, and exits 1:
 * by default the message as it stands in the answer (JSON's escapes for
 * '"', '\\' and control characters, so that it is one line), with --json
 * the gateway's whole answer, {"errors":[{"message":...,"field":"request"}]}.
 * A usage error, a body that cannot be read or no memory exits 2, with a
 * message on the standard error.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ngx_sendgrid_integrations_module/sg_body.h"
#include "../ngx_sendgrid_integrations_module/sg_json.h"


#define SG_VALIDATE_NAME     "sendgrid-integrations-validate"

/* exit codes, and what sg_validate_args() returns to go on */
#define SG_VALIDATE_VALID    0
#define SG_VALIDATE_INVALID  1
#define SG_VALIDATE_FAILED   2
#define SG_VALIDATE_GO_ON    -1

/* the body is read and fed in pieces of this size */
#define SG_VALIDATE_PIECE    65536


typedef struct {
    sg_body_schema_t     schema;
    unsigned             flags;
    unsigned             json:1;
    unsigned             schema_set:1;
    const char          *file;
} sg_validate_args_t;


static int sg_validate_args(int argc, char **argv, sg_validate_args_t *args);
static int sg_validate_read(sg_body_t *v, const char *file);
static int sg_validate_print(sg_body_t *v, unsigned json);
static int sg_validate_usage(FILE *out, const char *error);


static const char  sg_validate_usage_text[] =
    "usage: " SG_VALIDATE_NAME " --operation create|update [--strict] "
    "[--json] [FILE|-]\n"
    "\n"
    "Checks a request body of the SendGrid Integrations API as the gateway\n"
    "does: create is POST /v3/marketing/integrations, update is PATCH\n"
    "/v3/marketing/integrations/ID.  The body is read from FILE, or from\n"
    "the standard input.\n"
    "\n"
    "  --operation create|update  the request the body is for\n"
    "  --strict                   as sendgrid_strict on: unknown members\n"
    "                             are failures\n"
    "  --json                     print the gateway's whole JSON answer\n"
    "\n"
    "Exits 0 and prints nothing when the body is valid; prints the\n"
    "gateway's message on one line and exits 1 when it is not; exits 2 on\n"
    "a usage error or when the body cannot be read.\n";


int
main(int argc, char **argv)
{
    int                  rc;
    sg_body_t           *v;
    sg_validate_args_t   args;

    rc = sg_validate_args(argc, argv, &args);
    if (rc != SG_VALIDATE_GO_ON) {
        return rc;
    }

    if (sg_body_init() != 0) {
        fprintf(stderr, SG_VALIDATE_NAME ": no random bytes: %s\n",
                strerror(errno));
        return SG_VALIDATE_FAILED;
    }

    v = sg_body_create(args.schema, args.flags);
    if (v == NULL) {
        fprintf(stderr, SG_VALIDATE_NAME ": out of memory\n");
        return SG_VALIDATE_FAILED;
    }

    if (sg_validate_read(v, args.file) != 0) {
        sg_body_destroy(v);
        return SG_VALIDATE_FAILED;
    }

    switch (sg_body_finish(v)) {

    case SG_BODY_OK:
        rc = SG_VALIDATE_VALID;
        break;

    case SG_BODY_INVALID:
        rc = sg_validate_print(v, args.json);
        break;

    default: /* SG_BODY_NOMEM */
        fprintf(stderr, SG_VALIDATE_NAME ": out of memory\n");
        rc = SG_VALIDATE_FAILED;
    }

    sg_body_destroy(v);

    return rc;
}


/* Reads the command line: SG_VALIDATE_GO_ON, or the exit code. */
static int
sg_validate_args(int argc, char **argv, sg_validate_args_t *args)
{
    int          i, options;
    const char  *arg, *op;

    memset(args, 0, sizeof(sg_validate_args_t));
    options = 1;

    for (i = 1; i < argc; i++) {
        arg = argv[i];

        if (!options || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (args->file != NULL) {
                return sg_validate_usage(stderr, "one body at a time");
            }

            args->file = arg;
            continue;
        }

        if (strcmp(arg, "--") == 0) {
            options = 0;

        } else if (strcmp(arg, "--strict") == 0) {
            args->flags |= SG_BODY_STRICT;

        } else if (strcmp(arg, "--json") == 0) {
            args->json = 1;

        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            return sg_validate_usage(stdout, NULL);

        } else if (strcmp(arg, "--operation") == 0
                   || strncmp(arg, "--operation=", 12) == 0)
        {
            if (arg[11] == '=') {
                op = arg + 12;

            } else if (i + 1 < argc) {
                op = argv[++i];

            } else {
                return sg_validate_usage(stderr, "--operation needs a value");
            }

            if (strcmp(op, "create") == 0) {
                args->schema = SG_BODY_CREATE;

            } else if (strcmp(op, "update") == 0) {
                args->schema = SG_BODY_UPDATE;

            } else {
                return sg_validate_usage(stderr,
                                         "--operation is create or update");
            }

            args->schema_set = 1;

        } else {
            fprintf(stderr, SG_VALIDATE_NAME ": unknown option %s\n", arg);
            return sg_validate_usage(stderr, NULL);
        }
    }

    if (!args->schema_set) {
        return sg_validate_usage(stderr, "--operation is required");
    }

    return SG_VALIDATE_GO_ON;
}


/*
 * Feeds the whole body from file ("-" or NULL: the standard input) to the
 * validator, which ignores what comes after its verdict (the input is
 * read to its end all the same, so that a writer into a pipe does not
 * see it closed early); -1 when it cannot be read.
 */
static int
sg_validate_read(sg_body_t *v, const char *file)
{
    int             rc;
    FILE           *f;
    size_t          n;
    unsigned char  *buf;

    if (file == NULL || strcmp(file, "-") == 0) {
        f = stdin;
        file = "the standard input";

    } else {
        f = fopen(file, "rb");
        if (f == NULL) {
            fprintf(stderr, SG_VALIDATE_NAME ": %s: %s\n", file,
                    strerror(errno));
            return SG_VALIDATE_FAILED;
        }
    }

    rc = -1;

    buf = malloc(SG_VALIDATE_PIECE);
    if (buf == NULL) {
        fprintf(stderr, SG_VALIDATE_NAME ": out of memory\n");
        goto done;
    }

    while ((n = fread(buf, 1, SG_VALIDATE_PIECE, f)) != 0) {
        (void) sg_body_feed(v, buf, n);
    }

    if (ferror(f)) {
        fprintf(stderr, SG_VALIDATE_NAME ": %s: %s\n", file,
                strerror(errno));

    } else {
        rc = 0;
    }

    free(buf);

done:

    if (f != stdin) {
        fclose(f);
    }

    return rc;
}


/* Prints the message of an invalid body, or the gateway's whole answer. */
static int
sg_validate_print(sg_body_t *v, unsigned json)
{
    size_t          len;
    sg_error_t      err;
    const char     *message;
    unsigned char  *out, *end;

    message = sg_body_message(v, &len);

    err.status = 400;
    err.message = message;
    err.message_len = len;
    err.member = "field";
    err.name = (const unsigned char *) "request";
    err.name_len = sizeof("request") - 1;

    len = json ? sg_error_body_len(&err)
               : sg_json_escaped_len((const unsigned char *) message, len);

    out = malloc(len + 1);
    if (out == NULL) {
        fprintf(stderr, SG_VALIDATE_NAME ": out of memory\n");
        return SG_VALIDATE_FAILED;
    }

    end = json ? sg_error_body(out, &err)
               : sg_json_escape(out, (const unsigned char *) message,
                                err.message_len);
    *end++ = '\n';

    if (fwrite(out, 1, end - out, stdout) != (size_t) (end - out)
        || fflush(stdout) != 0)
    {
        fprintf(stderr, SG_VALIDATE_NAME ": the standard output: %s\n",
                strerror(errno));
        free(out);
        return SG_VALIDATE_FAILED;
    }

    free(out);

    return SG_VALIDATE_INVALID;
}


static int
sg_validate_usage(FILE *out, const char *error)
{
    if (error != NULL) {
        fprintf(out, SG_VALIDATE_NAME ": %s\n", error);
    }

    fputs(sg_validate_usage_text, out);

    return (out == stdout) ? SG_VALIDATE_VALID : SG_VALIDATE_FAILED;
}
