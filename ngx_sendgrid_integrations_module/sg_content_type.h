/*
 * The Content-Type rule of request bodies.  No nginx headers.
 */

#ifndef SG_CONTENT_TYPE_H
#define SG_CONTENT_TYPE_H

#include <stddef.h>


/*
 * Returns 1 when value is "application/json", in any letter case, alone or
 * with the single parameter charset=utf-8 (the value optionally quoted, in
 * any letter case), with optional spaces and tabs around the parts; else 0.
 */
int sg_content_type_is_json(const unsigned char *value, size_t len);

#endif /* SG_CONTENT_TYPE_H */
