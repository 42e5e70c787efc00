/*
 * A minimal TAP producer for the C unit tests, so that prove runs them
 * beside the .t files.
 */

#ifndef SG_TAP_H
#define SG_TAP_H

#include <stdio.h>
#include <stdarg.h>
#include <string.h>

static int  tap_count __attribute__((unused));
static int  tap_failed __attribute__((unused));

#define ok(cond, ...)                                                         \
    tap_ok((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

#define is_str(got, want, ...)                                                \
    tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                                \
    tap_is_int((long long) (got), (long long) (want), __FILE__, __LINE__,     \
               __VA_ARGS__)

static inline void
tap_vreport(int pass, const char *file, int line, const char *fmt,
    va_list ap)
{
    tap_count++;

    if (!pass) {
        tap_failed++;
    }

    printf("%sok %d - ", pass ? "" : "not ", tap_count);
    vprintf(fmt, ap);
    printf("\n");

    if (!pass) {
        printf("#   failed at %s line %d\n", file, line);
    }
}

static inline int
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    tap_vreport(pass, file, line, fmt, ap);
    va_end(ap);

    return pass;
}

static inline int
tap_is_str(const char *got, const char *want, const char *file, int line,
    const char *fmt, ...)
{
    int      pass;
    va_list  ap;

    pass = (got == NULL && want == NULL)
           || (got != NULL && want != NULL && strcmp(got, want) == 0);

    va_start(ap, fmt);
    tap_vreport(pass, file, line, fmt, ap);
    va_end(ap);

    if (!pass) {
        printf("#          got: %s\n#     expected: %s\n",
               got ? got : "(null)", want ? want : "(null)");
    }

    return pass;
}

static inline int
tap_is_int(long long got, long long want, const char *file, int line,
    const char *fmt, ...)
{
    int      pass;
    va_list  ap;

    pass = (got == want);

    va_start(ap, fmt);
    tap_vreport(pass, file, line, fmt, ap);
    va_end(ap);

    if (!pass) {
        printf("#          got: %lld\n#     expected: %lld\n", got, want);
    }

    return pass;
}

static inline int
done_testing(void)
{
    printf("1..%d\n", tap_count);
    return tap_failed ? 1 : 0;
}

#endif /* SG_TAP_H */
