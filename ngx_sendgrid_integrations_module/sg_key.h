/*
 * API key file contents.  No nginx headers.
 */

#ifndef SG_KEY_H
#define SG_KEY_H

#include <stddef.h>


/*
 * Trims spaces, tabs, CR and LF at both ends of data and checks that what
 * is left is a non-empty run of printable ASCII (0x21-0x7e).  On success
 * returns NULL and sets *key and *key_len to the trimmed key inside data; on
 * failure returns a short reason ("is empty", "contains whitespace or
 * control bytes").
 */
const char *sg_key_parse(const unsigned char *data, size_t len,
    const unsigned char **key, size_t *key_len);

#endif /* SG_KEY_H */
