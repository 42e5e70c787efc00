/*
 * An independent statement of the route allowlist, written for clarity
 * rather than speed: is this request canonical, so that it must be
 * forwarded?  Shared by the unit test and the fuzz target of sg_route.c.
 */

#ifndef SG_ROUTE_ORACLE_H
#define SG_ROUTE_ORACLE_H

#include <stdlib.h>
#include <string.h>

#include "../../ngx_sendgrid_integrations_module/sg_route.h"


#define COLL      "/v3/marketing/integrations"
#define ID_CHARS  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"     \
                  "0123456789_-"


static int
ids_are_canonical(char *query)
{
    char    *component, *id, *next, *sep;
    size_t   n;

    for (component = query; component != NULL; component = next) {
        next = strchr(component, '&');

        if (next != NULL) {
            *next++ = '\0';
        }

        if (strncmp(component, "ids=", 4) != 0) {
            return 0;
        }

        id = component + 4;

        while ((sep = strstr(id, "%2C")) != NULL
               || (sep = strstr(id, "%2c")) != NULL)
        {
            *sep = ',';
            memmove(sep + 1, sep + 3, strlen(sep + 3) + 1);
        }

        for ( /* void */ ; id != NULL; id = sep) {
            sep = strchr(id, ',');

            if (sep != NULL) {
                *sep++ = '\0';
            }

            n = strlen(id);

            if (n == 0 || n > SG_ID_MAX_LEN || strspn(id, ID_CHARS) != n) {
                return 0;
            }
        }
    }

    return 1;
}


static int
is_canonical(const char *method, size_t method_len,
    const unsigned char *target, size_t len)
{
    int      canonical;
    char    *s, *query, *id;
    size_t   n;

    if (memchr(method, '\0', method_len) != NULL
        || memchr(target, '\0', len) != NULL)
    {
        return 0;
    }

    s = malloc(len + 1);

    if (s == NULL) {
        abort();
    }

    memcpy(s, target, len);
    s[len] = '\0';

    query = strchr(s, '?');

    if (query != NULL) {
        *query++ = '\0';
    }

    canonical = 0;

    if (strcmp(s, COLL) == 0) {
        if (strcmp(method, "DELETE") == 0) {
            canonical = query != NULL && ids_are_canonical(query);

        } else {
            canonical = query == NULL
                        && (strcmp(method, "GET") == 0
                            || strcmp(method, "POST") == 0);
        }

    } else if (strncmp(s, COLL "/", sizeof(COLL)) == 0) {
        id = s + sizeof(COLL);
        n = strlen(id);

        canonical = n >= 1 && n <= SG_ID_MAX_LEN
                    && strspn(id, ID_CHARS) == n
                    && query == NULL
                    && (strcmp(method, "GET") == 0
                        || strcmp(method, "PATCH") == 0);
    }

    free(s);

    return canonical;
}

#endif /* SG_ROUTE_ORACLE_H */
